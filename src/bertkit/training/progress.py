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

    def tokens_per_s(self) -> float:
        return self.tokens / max(time.perf_counter() - self.start, 1e-9)


class Logger:
    """Progress bar (tqdm) + CSV log `train_log.csv` in the run directory."""

    def __init__(self, run_dir: Path, show: bool, total: int, initial: int):
        self.show = show
        self.path = run_dir / "train_log.csv"
        self.bar = None
        if show:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)
        self.last_step = initial
        if self.show and self.path.exists():
            self._drop_rows_after(initial)

    def _drop_rows_after(self, step: int) -> None:
        """On resume, forget log rows written after the checkpoint we resumed from."""
        with open(self.path) as fh:
            rows = list(csv.DictReader(fh))
        kept = [r for r in rows if int(r["step"]) <= step]
        with open(self.path, "w", newline="") as fh:
            if kept:
                writer = csv.DictWriter(fh, fieldnames=list(kept[0]))
                writer.writeheader()
                writer.writerows(kept)

    def log(self, row: dict) -> None:
        if not self.show:
            return
        new = not self.path.exists()
        with open(self.path, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
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
