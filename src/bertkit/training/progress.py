"""Progress of a training run: the log window, the progress bar, `train_log.csv`, the loss curve,
and TensorBoard event files (`report_to="tensorboard"`, in `<run>/tb`)."""
from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import torch

from bertkit.common.errors import InputError, missing_dependency

REPORT_TO = ("none", "tensorboard")
TRAINING_COLUMNS = ("loss", "lr", "tokens_per_s", "mfu")    # of every log row; evaluations add their metrics
TB_FOLDER = "tb"            # <run dir>/tb: `tensorboard --logdir runs/x/run/tb`


class Window:
    """Loss and throughput accumulated between two log lines.

    The loss is summed as a tensor on the training device: reading a GPU value forces the
    CPU to wait for the GPU, so it is read once per log line (`mean_loss`), not per step.
    """

    def __init__(self):
        self.loss, self.steps, self.tokens, self.start = 0.0, 0, 0, time.perf_counter()

    def add(self, loss: torch.Tensor | float, tokens: int) -> None:
        self.loss = self.loss + loss
        self.steps += 1
        self.tokens += tokens

    def mean_loss(self) -> float:
        return float(self.loss) / max(1, self.steps)

    def loss_sum(self) -> torch.Tensor:
        """The summed loss of the window as a tensor (for averaging over processes before it is read)."""
        return self.loss if isinstance(self.loss, torch.Tensor) else torch.tensor(float(self.loss))

    def tokens_per_s(self) -> float:
        return self.tokens / max(time.perf_counter() - self.start, 1e-9)


class Logger:
    """Progress bar (tqdm, when `progress`) + CSV log `train_log.csv` in the run directory (when `write`).

    The CSV is one well-formed table: its header holds every column any row has had (evaluation
    rows add metrics; the file is rewritten with the wider header when a new column appears),
    and a resumed run appends to it after dropping the rows written after its checkpoint.
    """

    def __init__(self, run_dir: Path, write: bool, progress: bool, total: int, initial: int,
                 report_to: str | None = None):
        self.write = write
        self.path = run_dir / "train_log.csv"
        self.tensorboard = TensorBoardLog(run_dir / TB_FOLDER, initial) if write and report_to == "tensorboard" \
            else None
        self.bar = None
        if write and progress:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)
        self.last_step = initial
        self.columns: list[str] = []
        self.rows: list[dict] = []
        if write and self.path.exists():
            with open(self.path, newline="") as fh:
                reader = csv.DictReader(fh)
                self.columns = list(reader.fieldnames or [])
                self.rows = [r for r in reader if r.get("step", "").isdigit() and int(r["step"]) <= initial]
            self._rewrite()

    def _rewrite(self) -> None:
        with open(self.path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.columns, restval="")
            writer.writeheader()
            writer.writerows(self.rows)

    def log(self, row: dict) -> None:
        if not self.write:
            return
        if self.tensorboard is not None:
            self.tensorboard.log(row)
        self.rows.append(row)
        new_columns = [k for k in row if k not in self.columns]
        if new_columns or not self.path.exists():
            self.columns += new_columns
            self._rewrite()
        else:
            with open(self.path, "a", newline="") as fh:
                csv.DictWriter(fh, fieldnames=self.columns, restval="").writerow(row)
        if self.bar is not None:
            self.bar.update(row["step"] - self.last_step)
            self.last_step = row["step"]
            self.bar.set_postfix(loss=f"{row['loss']:.4f}", tok_s=f"{row['tokens_per_s']:.0f}",
                                 **({"mfu": f"{row['mfu']:.1%}"} if "mfu" in row else {}))

    def set_total(self, total: int) -> None:
        """A new estimate of the run's steps (a time budget re-plans them as it goes)."""
        if self.bar is not None and self.bar.total != total:
            self.bar.total = total
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


def tensorboard_writer_class():
    """torch's SummaryWriter, or the one-line error naming the pip command when tensorboard is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # optional: needs the tensorboard package
    except ImportError:
        raise missing_dependency("tensorboard", "tensorboard", "--report-to tensorboard") from None
    return SummaryWriter


def check_report_to(report_to: str | None) -> None:
    """Refuse an unknown --report-to, and tensorboard when it is not installed, before any work is done."""
    if report_to not in (None, *REPORT_TO):
        raise InputError(f"--report-to {report_to!r} is not one of {', '.join(REPORT_TO)}")
    if report_to == "tensorboard":
        tensorboard_writer_class()


class TensorBoardLog:
    """Every log row as TensorBoard scalars, named as the Hugging Face Trainer names them.

    train/loss, train/learning_rate, train/tokens_per_s, train/mfu at each log step; every other number
    of the row (evaluation metrics: accuracy, mlm_accuracy ...) as eval/<name>.  The row of the
    step-0 evaluation (loss NaN: nothing trained yet) gives only eval/ scalars.  A resumed run purges
    the events its previous process wrote after the checkpoint it resumes from.
    """

    NAMES = {"loss": "train/loss", "lr": "train/learning_rate", "tokens_per_s": "train/tokens_per_s",
             "mfu": "train/mfu"}

    def __init__(self, log_dir: Path, initial_step: int):
        writer = tensorboard_writer_class()
        # a resumed run: TensorBoard hides the older events of steps after the checkpoint (>= purge_step)
        self.writer = writer(log_dir=str(log_dir), purge_step=initial_step + 1 if initial_step else None)

    def log(self, row: dict) -> None:
        trained = not math.isnan(row.get("loss", math.nan))      # else: the step-0 evaluation, no training yet
        for key, value in row.items():
            if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                continue
            if key in self.NAMES and not trained:
                continue
            self.writer.add_scalar(self.NAMES.get(key, f"eval/{key}"), value, row["step"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def plot_loss_curve(run_dir: Path, out: Path | None = None) -> Path | None:
    """Draw `train_log.csv` as a PNG (needs matplotlib: `pip install bertkit[viz]`)."""
    log = Path(run_dir) / "train_log.csv"
    if not log.exists():
        return None
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    with open(log) as fh:
        rows = list(csv.DictReader(fh))
    steps = [int(r["step"]) for r in rows]
    losses = [float(r["loss"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, losses, label="training loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    out = out or Path(run_dir) / "loss_curve.png"
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
