"""The one training loop: pretraining and fine-tuning both run through `Trainer`.

What it does, in the order a step happens:

1. The epoch's example order is a permutation drawn from `(seed, epoch)`, so the
   order never depends on how often the run was interrupted.  With several
   processes (`torchrun`), rank r takes every world-th index of that order.
2. A batch is collated with a `torch.Generator` seeded from `(seed, step)`:
   dynamic masking draws the same masks before and after a resume.
3. Forward (bf16 autocast where asked and supported), loss / accumulation,
   backward; after `grad_accum` micro-batches: clip, AdamW step, LR schedule step.
4. Every `save_every` optimizer steps a checkpoint is written *atomically*
   (a temporary directory renamed into place): model weights, optimizer,
   scheduler, every RNG state, and the data position.  A run killed at any
   moment resumes from the last complete checkpoint and ends bit-identical to
   an uninterrupted run on CPU.

AdamW follows BERT: no weight decay on biases and LayerNorm weights; the learning
rate warms up linearly, then decays linearly to zero.
"""
from __future__ import annotations

import csv
import dataclasses
import inspect
import json
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

CHECKPOINT_PREFIX = "step-"
LATEST_FILE = "latest"


@dataclass
class TrainConfig:
    """Settings of one training run (saved as `train_config.json` in the output dir)."""

    output_dir: str = "runs/bert"
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-6
    warmup_steps: int | None = None     # default: warmup_ratio * max_steps
    warmup_ratio: float = 0.1
    max_steps: int | None = None        # optimizer steps; default from num_epochs
    num_epochs: float = 1.0
    batch_size: int = 32                # per process, per micro-batch
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    bf16: bool = False                  # autocast to bfloat16 (CUDA, or CPU when asked)
    seed: int = 42
    log_every: int = 10
    save_every: int = 0                 # 0: only at the end
    keep_checkpoints: int = 2
    progress: bool = True
    eval_at_start: bool = True          # evaluate the untrained model once (curves start at step 0)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)


@dataclass
class TrainState:
    """Where training stands; saved in every checkpoint."""

    step: int = 0           # optimizer steps done
    epoch: int = 0
    batch_in_epoch: int = 0  # micro-batches of this epoch already consumed
    tokens_seen: int = 0
    history: list = field(default_factory=list)


# ----------------------------------------------------------------------------- helpers

def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Split parameters as BERT does: no decay on biases and LayerNorm weights."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        skip = name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name
        (no_decay if skip else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def linear_warmup_decay(optimizer, warmup_steps: int, total_steps: int):
    """LR multiplier: 0 → 1 over `warmup_steps`, then 1 → 0 at `total_steps`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        remaining = total_steps - step
        return max(0.0, remaining / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def batch_generator(seed: int, step: int, micro: int) -> torch.Generator:
    """A generator for one micro-batch's randomness (e.g. masking), from (seed, step, micro)."""
    mixed = (seed * 1_000_003 + step * 7919 + micro) % (2**63 - 1)
    return torch.Generator().manual_seed(mixed)


def epoch_order(num_examples: int, seed: int, epoch: int) -> np.ndarray:
    """The example order of one epoch: a permutation drawn from (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


def count_tokens(batch: dict) -> int:
    mask = batch.get("attention_mask")
    if mask is not None:
        return int(mask.sum())
    return int(batch["input_ids"].numel())


def _accepts_generator(fn: Callable) -> bool:
    try:
        return "generator" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu"


# ----------------------------------------------------------------------------- distributed

@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed() -> DistInfo:
    """Join the process group when launched by `torchrun` (NCCL on GPUs, gloo on CPU)."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    info = DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    if torch.cuda.is_available():
        torch.cuda.set_device(info.local_rank)
    return info


def default_device(info: DistInfo) -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", info.local_rank)
    return torch.device("cpu")


# ----------------------------------------------------------------------------- checkpoints

def _rng_states() -> dict:
    states = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def write_checkpoint(run_dir: Path, model: nn.Module, optimizer, scheduler,
                     state: TrainState, keep: int) -> Path:
    """Write `run_dir/step-N/` atomically, then point `run_dir/latest` at it.

    The directory is first written as `.tmp-step-N`, fsynced, and renamed: a crash
    at any moment leaves either the previous checkpoint or the new one, never a
    half-written directory that resume would pick up.
    """
    final = run_dir / f"{CHECKPOINT_PREFIX}{state.step}"
    tmp = run_dir / f".tmp-{CHECKPOINT_PREFIX}{state.step}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    unwrap(model).save_pretrained(tmp)
    trainer_state = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": _rng_states(),
        "state": dataclasses.asdict(state),
    }
    with open(tmp / "trainer_state.pt", "wb") as fh:
        torch.save(trainer_state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _write_atomic(run_dir / LATEST_FILE, final.name)
    _prune_checkpoints(run_dir, keep)
    return final


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _prune_checkpoints(run_dir: Path, keep: int) -> None:
    steps = sorted(
        (int(p.name[len(CHECKPOINT_PREFIX):]), p)
        for p in run_dir.glob(f"{CHECKPOINT_PREFIX}*") if p.name[len(CHECKPOINT_PREFIX):].isdigit()
    )
    for _, path in steps[:-keep] if keep > 0 else []:
        shutil.rmtree(path, ignore_errors=True)


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint in `run_dir`, or None."""
    pointer = run_dir / LATEST_FILE
    if pointer.exists():
        candidate = run_dir / pointer.read_text().strip()
        if (candidate / "trainer_state.pt").exists():
            return candidate
    complete = [p for p in run_dir.glob(f"{CHECKPOINT_PREFIX}*") if (p / "trainer_state.pt").exists()]
    if not complete:
        return None
    return max(complete, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]))


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


# ----------------------------------------------------------------------------- trainer

class Trainer:
    """Runs optimisation of `model` over a map-style `dataset`.

    `collate(samples[, generator])` turns a list of dataset items into a dict of
    tensors that `model(**batch)` accepts and whose output has `.loss`.
    `evaluate(model) -> dict` (optional) is called every `eval_every` steps and at
    the end; its `metric` key (or the first one) drives best-checkpoint keeping.
    """

    def __init__(self, model: nn.Module, dataset, collate: Callable, config: TrainConfig,
                 evaluate: Callable | None = None, eval_every: int = 0,
                 device: torch.device | str | None = None, on_log: Callable | None = None):
        self.cfg = config
        self.dist = init_distributed()
        self.device = torch.device(device) if device else default_device(self.dist)
        self.model = model.to(self.device)
        self.dataset = dataset
        self.collate = collate
        self.collate_takes_generator = _accepts_generator(collate)
        self.evaluate = evaluate
        self.eval_every = eval_every
        self.on_log = on_log
        self.run_dir = Path(config.output_dir)
        self.state = TrainState()
        self.total_steps = self._total_steps()
        warmup = config.warmup_steps if config.warmup_steps is not None else int(config.warmup_ratio * self.total_steps)
        self.optimizer = torch.optim.AdamW(
            param_groups(model, config.weight_decay), lr=config.learning_rate,
            betas=config.adam_betas, eps=config.adam_eps)
        self.scheduler = linear_warmup_decay(self.optimizer, warmup, self.total_steps)
        self.use_bf16 = config.bf16 and _bf16_supported(self.device)
        if self.dist.world > 1:
            ddp_ids = [self.dist.local_rank] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.model, device_ids=ddp_ids)

    # -- sizes
    def micro_batches_per_epoch(self) -> int:
        per_rank = len(self.dataset) // self.dist.world
        return max(1, per_rank // self.cfg.batch_size)

    def _total_steps(self) -> int:
        if self.cfg.max_steps:
            return self.cfg.max_steps
        steps = self.cfg.num_epochs * self.micro_batches_per_epoch() / self.cfg.grad_accum
        return max(1, math.ceil(steps))

    # -- resume
    def resume(self, checkpoint: Path | None = None) -> bool:
        """Load the latest (or given) checkpoint of this run. Returns False if there is none."""
        checkpoint = checkpoint or latest_checkpoint(self.run_dir)
        if checkpoint is None:
            return False
        from bertkit.modeling.checkpoint import load_state_dict  # local import: avoids a cycle
        self._check_same_config(checkpoint)
        unwrap(self.model).load_state_dict(load_state_dict(checkpoint), strict=False)
        saved = torch.load(checkpoint / "trainer_state.pt", weights_only=False, map_location="cpu")
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        _set_rng_states(saved["rng"])
        self.state = TrainState(**saved["state"])
        return True

    def _check_same_config(self, checkpoint: Path) -> None:
        saved = json.loads((checkpoint / "config.json").read_text())
        current = unwrap(self.model).config.to_dict()
        keys = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
        diff = {k: (saved.get(k), current.get(k)) for k in keys if saved.get(k) != current.get(k)}
        if diff:
            raise ValueError(
                f"cannot resume from {checkpoint}: it was trained with a different model config "
                f"({', '.join(f'{k}: saved {a} vs now {b}' for k, (a, b) in diff.items())}). "
                "Use a new --output-dir, or the same model settings as that run.")

    # -- the loop
    def micro_batches(self) -> Iterable[tuple[int, list]]:
        """Yield (batch_in_epoch, samples) from the current data position onward, forever."""
        bs, world, rank = self.cfg.batch_size, self.dist.world, self.dist.rank
        while True:
            if hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(self.state.epoch)   # e.g. new NSP pairs each epoch
            order = epoch_order(len(self.dataset), self.cfg.seed, self.state.epoch)[rank::world]
            for b in range(self.state.batch_in_epoch, self.micro_batches_per_epoch()):
                yield b, [self.dataset[int(i)] for i in order[b * bs:(b + 1) * bs]]
            self.state.epoch += 1
            self.state.batch_in_epoch = 0

    def _collate(self, samples: list, micro: int) -> dict:
        if self.collate_takes_generator:
            gen = batch_generator(self.cfg.seed + 1000 * self.dist.rank, self.state.step, micro)
            batch = self.collate(samples, generator=gen)
        else:
            batch = self.collate(samples)
        return {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}

    def _forward(self, batch: dict):
        if self.use_bf16:
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                return self.model(**batch)
        return self.model(**batch)

    def train(self) -> TrainState:
        """Train until `total_steps` optimizer steps; returns the final state."""
        cfg = self.cfg
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "train_config.json").write_text(cfg.to_json())
        self.model.train()
        logger = _Logger(self.run_dir, self.dist.is_main and cfg.progress, self.total_steps, self.state.step)
        if self.state.step == 0 and self.evaluate and self.eval_every and cfg.eval_at_start:
            self._log_initial_evaluation(logger)
        batches = self.micro_batches()
        window = _Window()
        self.stop_requested = False
        while self.state.step < self.total_steps and not self.stop_requested:
            window.add(*self._optimizer_step(batches))
            if self.state.step % cfg.log_every == 0 or self._evaluation_due():
                row = {"step": self.state.step, "loss": window.mean_loss(),
                       "lr": self.scheduler.get_last_lr()[0],
                       "tokens_per_s": window.tokens_per_s() * self.dist.world}
                self._maybe_evaluate(row)
                self.state.history.append(row)
                logger.log(row)
                if self.on_log:
                    self.on_log(row)
                window = _Window()
            if cfg.save_every and self.state.step % cfg.save_every == 0 and self.state.step < self.total_steps:
                self.save()
        self.save()
        logger.close()
        return self.state

    def request_stop(self) -> None:
        """Ask the loop to end after the current step (early stopping); a final checkpoint is saved."""
        self.stop_requested = True

    def _optimizer_step(self, batches) -> tuple[float, int]:
        cfg = self.cfg
        total_loss, tokens = 0.0, 0
        for micro in range(cfg.grad_accum):
            b, samples = next(batches)
            batch = self._collate(samples, micro)
            out = self._forward(batch)
            (out.loss / cfg.grad_accum).backward()
            total_loss += float(out.loss.detach()) / cfg.grad_accum
            tokens += count_tokens(batch)
            self.state.batch_in_epoch = b + 1
        if cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.state.step += 1
        self.state.tokens_seen += tokens * self.dist.world
        return total_loss, tokens

    def _log_initial_evaluation(self, logger) -> None:
        """Evaluate the untrained model once, so curves start at step 0."""
        row = {"step": 0, "loss": float("nan"), "lr": 0.0, "tokens_per_s": 0.0}
        self._run_evaluation(row)
        self.state.history.append(row)
        logger.log(row)
        if self.on_log:
            self.on_log(row)

    def _evaluation_due(self) -> bool:
        """Evaluate every `eval_every` steps and at the last step (a log row is written then too)."""
        last = self.state.step == self.total_steps
        return last or bool(self.evaluate and self.eval_every and self.state.step % self.eval_every == 0)

    def _maybe_evaluate(self, row: dict) -> None:
        if self.evaluate and self.eval_every and self._evaluation_due():
            self._run_evaluation(row)

    def _run_evaluation(self, row: dict) -> None:
        self.model.eval()
        with torch.no_grad():
            row.update(self.evaluate(unwrap(self.model)))
        self.model.train()

    def save(self) -> Path | None:
        if self.dist.world > 1:
            dist.barrier()
        if not self.dist.is_main:
            return None
        return write_checkpoint(self.run_dir, self.model, self.optimizer, self.scheduler,
                                self.state, self.cfg.keep_checkpoints)


# ----------------------------------------------------------------------------- logging

class _Window:
    """Loss and throughput accumulated between two log lines."""

    def __init__(self):
        self.loss, self.steps, self.tokens, self.start = 0.0, 0, 0, time.perf_counter()

    def add(self, loss: float, tokens: int) -> None:
        self.loss += loss
        self.steps += 1
        self.tokens += tokens

    def mean_loss(self) -> float:
        return self.loss / max(1, self.steps)

    def tokens_per_s(self) -> float:
        return self.tokens / max(time.perf_counter() - self.start, 1e-9)


class _Logger:
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
