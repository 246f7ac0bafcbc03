"""The one training loop: pretraining and fine-tuning both run through `Trainer`.

What it does, in the order a step happens:

1. The epoch's example order is a permutation drawn from `(seed, epoch)`, so the
   order never depends on how often the run was interrupted.  With several
   processes (`torchrun`), rank r takes every world-th index of that order.
2. A batch is collated with a `torch.Generator` seeded from `(seed, step)`:
   dynamic masking draws the same masks before and after a resume.  On a GPU the
   CPU collates the next batch while the device still runs this step (`training.feed`).
3. Forward (bf16 autocast where asked and supported), loss / accumulation,
   backward; after `grad_accum` micro-batches: clip, AdamW step, LR schedule step.
   Nothing in a step waits for the GPU: the loss is summed on the device and read
   when a log line is written.
4. Every `save_every` optimizer steps a checkpoint is written *atomically*
   (`training.checkpoints`): model weights, optimizer, scheduler, every RNG state,
   and the data position.  A run killed at any moment resumes from the last complete
   checkpoint and ends bit-identical to an uninterrupted run on CPU.  Ctrl-C ends the
   current step, saves a checkpoint, and raises `TrainingInterrupted`.

AdamW follows BERT: no weight decay on biases and LayerNorm weights; the learning
rate warms up linearly, then decays linearly to zero.

Switches for speed on a GPU (`TrainConfig`), each exact or off by default:
`prefetch` (collate ahead; exact), `fused_adam` (one AdamW kernel; on by default on
CUDA), `unpad_plan` (the unpadded layout built on the host, rows rounded up to a
multiple: no host sync, static shapes), `bf16_weights` (bf16 weights + fp32 masters),
`fused_blocks` (bias+GELU and dropout+residual+LayerNorm as fused kernels), `compile`.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import sys
import threading
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from torch import nn

from bertkit.modeling.checkpoint import load_state_dict
from bertkit.modeling.encoder import BertPreTrainedModel
from bertkit.modeling.fused import use_fused_blocks
from bertkit.modeling.triton_ops import make_fused_ops
from bertkit.training.checkpoints import (check_same_model, latest_checkpoint, read_trainer_state,
                                          remove_checkpoints, set_rng_states, unwrap, write_checkpoint)
from bertkit.training.feed import (BatchFeed, FeedPlan, accepts_generator, batch_generator, takes_argument,  # noqa: F401
                                   batches_per_epoch, count_tokens, epoch_order)
from bertkit.training.precision import Bf16Weights, autocast, bf16_supported, make_adamw
from bertkit.training.progress import Logger, Window, plot_loss_curve  # noqa: F401  (re-exported)

# On a GPU every new tensor shape costs once: cuBLAS / cuDNN pick (and cuDNN builds) a kernel plan
# for it, and the caching allocator grows.  Measured on an H200 (bench/bench_gpu.py, BERT-Base,
# Korean reviews): the first pass over 60 batches of new shapes ran at 0.29 of the bare step, a
# second pass over the same batches at 0.79.  So on CUDA the real tokens of a batch are rounded
# up to a multiple of this (and pretraining pads rows to a multiple of 32): few distinct shapes.
GPU_ROWS_MULTIPLE = 64


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
    max_checkpoints: int = 2            # step-N/ directories kept while training (0: all)
    keep_checkpoints: bool = True       # False: the caller may `remove_checkpoints()` once the model is saved
    progress: bool = True
    eval_at_start: bool = True          # evaluate the untrained model once (curves start at step 0)
    # -- speed (see the module docstring); None = chosen by device
    prefetch: int = 0                   # micro-batches collated ahead in a thread (see training.feed)
    fused_adam: bool | None = None      # fused AdamW kernel (None: on CUDA only)
    unpad_plan: int | None = None       # host-built unpadded layout, rows rounded up to this multiple
    #                                     (0: off; None: GPU_ROWS_MULTIPLE on CUDA, off on CPU)
    bf16_weights: bool = False          # with bf16: bf16 weights in the model, fp32 masters in AdamW
    fused_blocks: str | None = None     # "compile" or "triton": fused bias+GELU, dropout+residual+LayerNorm
    compile: bool = False               # torch.compile the model

    def __post_init__(self):
        if not isinstance(self.keep_checkpoints, bool) and isinstance(self.keep_checkpoints, int):
            warnings.warn("TrainConfig(keep_checkpoints=<int>) is deprecated: the number of checkpoints kept "
                          "while training is now `max_checkpoints`; `keep_checkpoints` is a bool (keep the "
                          "resume checkpoints once the run is done).", DeprecationWarning, stacklevel=3)
            self.max_checkpoints, self.keep_checkpoints = self.keep_checkpoints, True

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


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C ended training after a complete step; `checkpoint` holds it (None on ranks > 0)."""

    def __init__(self, step: int, checkpoint: Path | None):
        super().__init__(f"training interrupted at step {step}; checkpoint: {checkpoint}")
        self.step, self.checkpoint = step, checkpoint


# ----------------------------------------------------------------------------- helpers

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


class _CtrlC:
    """While active (main thread only), the first SIGINT only sets `requested`; a second one
    interrupts at once, as usual.  The loop checks `requested` between steps."""

    def __init__(self):
        self.requested = False
        self.previous = None

    def __enter__(self) -> _CtrlC:
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
        self.evaluate = evaluate
        self.eval_every = eval_every
        self.on_log = on_log
        self.run_dir = Path(config.output_dir)
        self.state = TrainState()
        self.stop_requested = False
        self.total_steps = self._total_steps()
        self.use_bf16 = config.bf16 and bf16_supported(self.device)
        if config.fused_blocks:
            use_fused_blocks(model, make_fused_ops(config.fused_blocks))
        self.bf16_weights = Bf16Weights(model) if self.use_bf16 and config.bf16_weights else None
        self.optimizer = self._make_optimizer(model)
        warmup = config.warmup_steps if config.warmup_steps is not None else int(config.warmup_ratio * self.total_steps)
        self.scheduler = linear_warmup_decay(self.optimizer, warmup, self.total_steps)
        if self.dist.world > 1:
            ddp_ids = [self.dist.local_rank] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.model, device_ids=ddp_ids)
        if config.compile:
            self.model = torch.compile(self.model)

    def _make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        groups = param_groups(model, self.cfg.weight_decay)
        if self.bf16_weights is not None:
            groups = self.bf16_weights.master_groups(groups)
        return make_adamw(groups, self.cfg.learning_rate, self.cfg.adam_betas, self.cfg.adam_eps,
                          self.device, self.cfg.fused_adam)

    # -- sizes
    def micro_batches_per_epoch(self) -> int:
        return max(1, len(self.dataset) // self.dist.world // self.cfg.batch_size)

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
        check_same_model(checkpoint, self.model)
        with self._full_precision():                   # bf16 weights: the fp32 masters are what is loaded
            unwrap(self.model).load_state_dict(load_state_dict(checkpoint), strict=False)
        saved = read_trainer_state(checkpoint)
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        set_rng_states(saved["rng"])
        self.state = TrainState(**saved["state"])
        return True

    # -- the loop
    def feed(self) -> BatchFeed:
        """The micro-batches from the current data position on (see `training.feed`)."""
        cfg = self.cfg
        plan = FeedPlan(batch_size=cfg.batch_size, grad_accum=cfg.grad_accum, seed=cfg.seed,
                        collate_seed=cfg.seed + 1000 * self.dist.rank, rank=self.dist.rank, world=self.dist.world,
                        start_step=self.state.step, start_epoch=self.state.epoch,
                        start_batch=self.state.batch_in_epoch, unpad_multiple=self._unpad_multiple(),
                        masked_positions=takes_argument(unwrap(self.model), "masked_positions"))
        return BatchFeed(self.dataset, self.collate, plan, self.device, prefetch=cfg.prefetch or 0)

    def _unpad_multiple(self) -> int:
        """Rows multiple of host-built unpadding plans; 0 when off or when the model has no use for them."""
        model = unwrap(self.model)
        bert = getattr(model, "bert", model)
        if not isinstance(model, BertPreTrainedModel) or not getattr(bert, "unpad", False):
            return 0
        if self.cfg.unpad_plan is not None:
            return self.cfg.unpad_plan
        return GPU_ROWS_MULTIPLE if self.device.type == "cuda" else 0

    def _forward(self, batch: dict):
        """bf16 autocast when asked; pure bf16 (no autocast, no casts) when the weights are all bf16,
        except under torch.compile, where autocast over bf16 weights measured faster (H200: 572k vs
        442k tokens/s, BERT-Base, full 128-token rows, bench/bench_gpu.py)."""
        pure = self.bf16_weights is not None and not self.cfg.compile
        context = (self.bf16_weights.compute_context(self.device) if pure
                   else autocast(self.device, self.use_bf16))
        with context:
            return self.model(**batch)

    def train(self) -> TrainState:
        """Train until `total_steps` optimizer steps; returns the final state.

        Ctrl-C finishes the current step, saves a checkpoint and raises `TrainingInterrupted`
        (a KeyboardInterrupt: the command line exits with status 130).
        """
        cfg = self.cfg
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "train_config.json").write_text(cfg.to_json())
        self.model.train()
        logger = Logger(self.run_dir, self.dist.is_main and cfg.progress, self.total_steps, self.state.step)
        if self.state.step == 0 and self.evaluate and self.eval_every and cfg.eval_at_start:
            self._log_initial_evaluation(logger)
        self.stop_requested = False
        feed = self.feed()
        try:
            with _CtrlC() as ctrl_c:
                self._loop(feed, logger, ctrl_c)
            self.save()
        finally:
            feed.close()
            logger.close()
            if self.bf16_weights is not None:
                self.bf16_weights.release()          # the model holds fp32 weights again
        return self.state

    def _loop(self, feed: BatchFeed, logger: Logger, ctrl_c: _CtrlC) -> None:
        cfg = self.cfg
        window = Window()
        while self.state.step < self.total_steps and not self.stop_requested:
            window.add(*self._optimizer_step(feed))
            log_due = self.state.step % cfg.log_every == 0 or self._evaluation_due()
            if log_due:
                self._log(window, logger)
                window = Window()
            if self._interrupt_agreed(ctrl_c.requested, log_due):
                self._save_interrupted()
            if cfg.save_every and self.state.step % cfg.save_every == 0 and self.state.step < self.total_steps:
                self.save()

    def _log(self, window: Window, logger: Logger) -> None:
        row = {"step": self.state.step, "loss": window.mean_loss(), "lr": self.scheduler.get_last_lr()[0],
               "tokens_per_s": window.tokens_per_s() * self.dist.world}
        self._maybe_evaluate(row)
        self.state.history.append(row)
        logger.log(row)
        if self.on_log:
            self.on_log(row)

    def _interrupt_agreed(self, requested: bool, log_due: bool) -> bool:
        """Whether to stop for Ctrl-C now.  With several processes they must stop at the same
        step, so they agree (one tiny all-reduce) at log steps only, not every step."""
        if self.dist.world == 1:
            return requested
        if not log_due:
            return False
        flag = torch.tensor([float(requested)], device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def _save_interrupted(self) -> None:
        checkpoint = self.save()
        if self.dist.is_main:
            print(f"bertkit: interrupted at step {self.state.step}/{self.total_steps}; checkpoint saved to "
                  f"{checkpoint}. Run the same command again to resume from it.", file=sys.stderr, flush=True)
        raise TrainingInterrupted(self.state.step, checkpoint)

    def request_stop(self) -> None:
        """Ask the loop to end after the current step (early stopping); a final checkpoint is saved."""
        self.stop_requested = True

    def _optimizer_step(self, feed: BatchFeed) -> tuple[torch.Tensor, int]:
        """grad_accum micro-batches, clip, AdamW, LR step.  Returns (mean loss as a device tensor, tokens)."""
        cfg = self.cfg
        total_loss, tokens = 0.0, 0
        for _ in range(cfg.grad_accum):
            item = next(feed)
            out = self._forward(item.batch)
            (out.loss / cfg.grad_accum).backward()
            total_loss = total_loss + out.loss.detach().float() / cfg.grad_accum
            tokens += item.tokens
            self.state.epoch, self.state.batch_in_epoch = item.epoch, item.position
        if self.bf16_weights is not None:
            self.bf16_weights.grads_to_masters()
        params = self.bf16_weights.masters if self.bf16_weights is not None else self.model.parameters()
        if cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.bf16_weights is not None:
            self.bf16_weights.masters_to_weights()
            self.bf16_weights.zero_grad()
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
        with torch.no_grad(), self._full_precision():
            row.update(self.evaluate(unwrap(self.model)))
        self.model.train()

    def _full_precision(self):
        """Inside: the model holds fp32 weights (a no-op unless `bf16_weights`)."""
        return self.bf16_weights.full_precision() if self.bf16_weights is not None else nullcontext()

    def save(self) -> Path | None:
        """Write a checkpoint of the current step (rank 0; every rank waits for it)."""
        if self.dist.world > 1:
            dist.barrier()
        if not self.dist.is_main:
            return None
        with self._full_precision():
            return write_checkpoint(self.run_dir, self.model, self.optimizer, self.scheduler,
                                    self.state, self.cfg.max_checkpoints)

    def remove_checkpoints(self) -> list[Path]:
        """Delete this run's resume checkpoints (step-N/, latest) — when `keep_checkpoints` is False.

        Call it after the final model is safely written: the run cannot be resumed afterwards.
        Returns the directories removed (none when keep_checkpoints is True, or on ranks > 0).
        """
        if self.cfg.keep_checkpoints or not self.dist.is_main:
            return []
        return remove_checkpoints(self.run_dir)

