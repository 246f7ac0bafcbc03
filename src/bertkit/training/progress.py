"""Progress of a training run: the log window, the progress bar, `train_log.csv`, the loss curve."""
from __future__ import annotations

import csv
import time
from pathlib import Path

import torch


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

    def __init__(self, run_dir: Path, write: bool, progress: bool, total: int, initial: int):
        self.write = write
        self.path = run_dir / "train_log.csv"
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
            self.bar.set_postfix(loss=f"{row['loss']:.4f}", tok_s=f"{row['tokens_per_s']:.0f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


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
