"""What a training run is and how it ends: its state (saved in every checkpoint), the best model
kept by evaluation (`KeepBest`), and Ctrl-C (finish the step, save, raise `TrainingInterrupted`)."""
from __future__ import annotations

import dataclasses
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from torch import nn


@dataclass
class KeepBest:
    """What the Trainer keeps of a run's evaluations: the best so far by `score(row)` (higher is
    better) is handed to `save(model, row)`; `TrainingSettings.patience` evaluations without gain
    end the run.  Judged on rank 0 (the one that evaluates); the stop is agreed by all ranks."""

    score: Callable[[dict], float]
    save: Callable[[nn.Module, dict], None]


@dataclass
class TrainState:
    """Where training stands; saved in every checkpoint."""

    step: int = 0             # optimizer steps done
    epoch: int = 0
    examples_in_epoch: int = 0  # examples of this epoch consumed, by all processes together
    tokens_seen: int = 0
    world: int = 1            # processes of the run that wrote this state
    history: list = field(default_factory=list)
    best: dict | None = None  # the best evaluation row so far (with KeepBest)
    evals_without_gain: int = 0
    seconds: float = 0.0      # of the time budget spent (runs with --time-budget)

    @classmethod
    def from_saved(cls, saved: dict, batch_size: int) -> TrainState:
        """A saved state.  Checkpoints written before positions were global counted the micro-batches
        (of `batch_size` examples) of one process."""
        saved = dict(saved)
        if "batch_in_epoch" in saved:
            saved["examples_in_epoch"] = saved.pop("batch_in_epoch") * batch_size
        return cls(**{k: v for k, v in saved.items() if k in {f.name for f in dataclasses.fields(cls)}})


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C ended training after a complete step; `checkpoint` holds it (None on ranks > 0)."""

    def __init__(self, step: int, checkpoint: Path | None):
        super().__init__(f"training interrupted at step {step}; checkpoint: {checkpoint}")
        self.step, self.checkpoint = step, checkpoint


class CtrlC:
    """While active (main thread only), the first SIGINT only sets `requested`; a second one
    interrupts at once, as usual.  The loop checks `requested` between steps."""

    def __init__(self):
        self.requested = False
        self.previous = None

    def __enter__(self) -> CtrlC:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nbertkit: Ctrl-C: finishing this step and saving a checkpoint (Ctrl-C again to quit at once)",
              file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
