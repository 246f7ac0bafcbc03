"""Run checkpoints: everything needed to continue a training run exactly where it stopped.

A run directory holds:

    step-N/              one complete checkpoint per saved step (the newest `max_checkpoints`)
      config.json, model.safetensors   the model, in the standard layout (fp32 weights)
      trainer_state.pt                 optimizer, LR scheduler, the RNG states of every process,
                                       data position (plain tensors and numbers: read with
                                       torch.load(weights_only=True), never a general unpickler)
    latest               the name of the newest complete checkpoint ("step-N")

With `async_checkpoints` the content is copied to CPU memory at the step (`take_snapshot`) and
written by a `CheckpointWriter` thread while training goes on; `latest` moves only once it is
complete.  Each checkpoint is written as `.tmp-step-N/`, fsynced, and renamed into place: a crash
(or SIGKILL) at any moment leaves either the previous checkpoint or the new one, never a
half-written directory that resume would pick up.  Old checkpoints are renamed out of the
`step-N` names before they are deleted, so a kill mid-deletion leaves no half-deleted one
either.  `latest` is replaced atomically too, and is only followed to a `step-N` folder
inside the run folder.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pickle
import random
import re
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bertkit.common.errors import InputError
from bertkit.common.files import atomic_write_text
from bertkit.modeling.checkpoint import saved_config, state_for_saving, write_model_files

CHECKPOINT_PREFIX = "step-"
LATEST_FILE = "latest"
STATE_FILE = "trainer_state.pt"
DISCARDED = ".tmp-discarded-"          # a checkpoint being deleted (never a `step-N` name meanwhile)


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel (or torch.compile) wrapper, else the model."""
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = getattr(model, "module", None) or model._orig_mod
    return model


def rng_states() -> dict:
    """Every random generator a training step may draw from (python, numpy, torch, CUDA), as plain
    numbers and tensors (so that a checkpoint loads with torch.load(weights_only=True))."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states = {"python": random.getstate(), "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
              "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    random.setstate(_as_tuples(states["python"]))
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _as_tuples(value):
    """random.setstate wants the tuples that a round trip through a checkpoint may have made lists."""
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def write_checkpoint(run_dir: Path, model: nn.Module, optimizer, scheduler, state, keep: int,
                     rng: list[dict] | None = None) -> Path:
    """Write `run_dir/step-N/` atomically, point `run_dir/latest` at it, keep the newest `keep`.

    `state` is the trainer's TrainState (a dataclass); `rng` the random states of every
    process, rank by rank (default: this process's); `keep=0` keeps every checkpoint.
    """
    return write_snapshot(run_dir, take_snapshot(model, optimizer, scheduler, state, rng), keep)


@dataclasses.dataclass
class Snapshot:
    """A checkpoint's content, copied off the tensors training goes on changing: it can be written
    later, in another thread, and is the checkpoint of the step it was taken at."""
    step: int
    config: object                 # the BertConfig written as config.json
    weights: dict                  # name -> CPU tensor (model.safetensors)
    trainer_state: dict            # optimizer, scheduler, rng, state (trainer_state.pt)


def take_snapshot(model: nn.Module, optimizer, scheduler, state, rng: list[dict] | None = None) -> Snapshot:
    """Copies, on the CPU, of everything a checkpoint of this step holds."""
    model = unwrap(model)
    weights = state_for_saving(model)                  # CPU tensors: copies of a GPU model's, a CPU model's own
    if all(p.device.type == "cpu" for p in model.parameters()):
        weights = {k: v.clone() for k, v in weights.items()}
    trainer_state = {"optimizer": _on_cpu(optimizer.state_dict()), "scheduler": scheduler.state_dict(),
                     "rng": rng if rng is not None else [rng_states()], "state": dataclasses.asdict(state)}
    return Snapshot(state.step, saved_config(model), weights, trainer_state)


def _on_cpu(value):
    """A copy of a (nested) state dict whose tensors are on the CPU and share nothing with training."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _on_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_on_cpu(v) for v in value)
    return value


def write_snapshot(run_dir: Path, snapshot: Snapshot, keep: int) -> Path:
    """The disk part of a checkpoint: `.tmp-step-N/`, fsynced, renamed to `step-N/`, then `latest`."""
    final = run_dir / f"{CHECKPOINT_PREFIX}{snapshot.step}"
    tmp = run_dir / f".tmp-{CHECKPOINT_PREFIX}{snapshot.step}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    write_model_files(tmp, snapshot.config, snapshot.weights)
    with open(tmp / STATE_FILE, "wb") as fh:
        torch.save(snapshot.trainer_state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    if final.exists():
        discard(final)
    os.replace(tmp, final)
    atomic_write_text(run_dir / LATEST_FILE, final.name)
    prune_checkpoints(run_dir, keep)
    return final


class CheckpointWriter:
    """Writes snapshots in one background thread while training goes on, one at a time: a new
    checkpoint first waits for the previous write (so at most one snapshot is held in memory), and
    `wait()` raises here any error the write met."""

    def __init__(self):
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bertkit-checkpoint")
        self.pending: Future | None = None

    def submit(self, run_dir: Path, snapshot: Snapshot, keep: int) -> Path:
        self.wait()
        self.pending = self.pool.submit(write_snapshot, run_dir, snapshot, keep)
        return run_dir / f"{CHECKPOINT_PREFIX}{snapshot.step}"

    def wait(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """The step-N directories of a run (complete or not), oldest first."""
    found = [p for p in Path(run_dir).glob(f"{CHECKPOINT_PREFIX}*") if p.name[len(CHECKPOINT_PREFIX):].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]))


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints (keep <= 0: delete none), and what an earlier
    deletion killed mid-way left behind."""
    for path in checkpoint_dirs(run_dir)[:-keep] if keep > 0 else []:
        discard(path)
    for path in Path(run_dir).glob(f"{DISCARDED}*"):
        shutil.rmtree(path, ignore_errors=True)


def discard(path: Path) -> None:
    """Delete a checkpoint directory so that no half-deleted `step-N/` is ever visible: it is first
    renamed (atomically) out of the `step-N` names, then deleted."""
    hidden = path.with_name(f"{DISCARDED}{path.name}-{os.getpid()}")
    try:
        os.replace(path, hidden)
    except FileNotFoundError:
        return
    shutil.rmtree(hidden, ignore_errors=True)


def remove_checkpoints(run_dir: Path) -> list[Path]:
    """Delete every resume checkpoint of a run (step-N/, unfinished .tmp-step-N/, `latest`).

    The logs (train_log.csv, train_config.json) stay.  Call it only once the final model
    is safely written elsewhere: afterwards the run can no longer be resumed.
    """
    run_dir = Path(run_dir)
    doomed = checkpoint_dirs(run_dir) + sorted(run_dir.glob(f".tmp-{CHECKPOINT_PREFIX}*")) \
        + sorted(run_dir.glob(f"{DISCARDED}*"))
    (run_dir / LATEST_FILE).unlink(missing_ok=True)     # first: a crash below leaves no pointer to a ghost
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return doomed


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint in `run_dir`, or None."""
    run_dir = Path(run_dir)
    pointer = run_dir / LATEST_FILE
    if pointer.exists():
        name = pointer.read_text().strip()
        if re.fullmatch(rf"{CHECKPOINT_PREFIX}\d+", name) and (run_dir / name / STATE_FILE).exists():
            return run_dir / name                  # never a path outside the run folder
    complete = [p for p in checkpoint_dirs(run_dir) if (p / STATE_FILE).exists()]
    return complete[-1] if complete else None


def read_trainer_state(checkpoint: Path) -> dict:
    """The optimizer / scheduler / RNG / position record of a checkpoint (on the CPU).

    Read with torch's weights-only unpickler: tensors, numbers, strings and containers only,
    so a tampered checkpoint cannot run code."""
    try:
        return torch.load(Path(checkpoint) / STATE_FILE, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        raise InputError(f"{checkpoint}/{STATE_FILE} holds more than plain tensors and numbers (written by an "
                         "older bertkit, or not by bertkit): start the run over with --no-resume or another "
                         f"output folder. ({str(exc).splitlines()[0]})") from exc


def check_same_model(checkpoint: Path, model: nn.Module) -> None:
    """Refuse to resume a run whose checkpoint has another model shape than `model`."""
    saved = json.loads((Path(checkpoint) / "config.json").read_text())
    current = unwrap(model).config.to_dict()
    keys = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
    diff = {k: (saved.get(k), current.get(k)) for k in keys if saved.get(k) != current.get(k)}
    if diff:
        raise InputError(
            f"cannot resume from {checkpoint}: it was trained with a different model config "
            f"({', '.join(f'{k}: saved {a} vs now {b}' for k, (a, b) in diff.items())}). "
            "Write the new run to another output directory (`--out` on the command line), "
            "or use the same model settings as that run.")
