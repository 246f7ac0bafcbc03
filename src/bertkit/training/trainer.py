"""The one training loop: pretraining and fine-tuning both run through `Trainer`.

What it does, in the order a step happens:

1. The epoch's example order is a permutation drawn from `(seed, epoch)`, so the
   order never depends on how often the run was interrupted, nor on how many
   processes share it: with `torchrun`, rank r takes the r-th slice of every global
   batch (`training.feed`), and a checkpoint records the global example reached.
2. A batch is collated with a `torch.Generator` seeded from `(seed, step)`:
   dynamic masking draws the same masks before and after a resume.  On a GPU the
   CPU collates the next batch while the device still runs this step (`training.feed`).
3. Forward (bf16 autocast where asked and supported), loss, backward; after `grad_accum`
   micro-batches: clip, AdamW step, LR schedule step.  The loss of a step is the mean
   over all its labelled tokens (MLM, tagging) or rows, whatever their split over
   micro-batches and processes.  With several processes DDP averages the gradients;
   the micro-batches before the last of a step skip that exchange (`no_sync`).
   Nothing in a step waits for the GPU: the loss is summed on the device and read
   when a log line is written.
4. Every `save_every` optimizer steps a checkpoint is written *atomically*
   (`training.checkpoints`): model weights, optimizer, scheduler, every RNG state,
   of every process, and the data position.  A run killed at any moment resumes from the
   last complete checkpoint and ends bit-identical to an uninterrupted run on CPU.  Ctrl-C ends the
   current step, saves a checkpoint, and raises `TrainingInterrupted`.

AdamW follows BERT (`training.precision`): no weight decay on biases and LayerNorm weights;
the learning rate warms up linearly, then decays linearly to zero — over the steps, or with
`time_budget` over the seconds of the budget (`training.budget`: the run uses the whole budget
whatever the machine's speed).

5. After each evaluation (rank 0) a `KeepBest` hands a better model to its `save` and counts
   evaluations without gain; `patience` of them stop the run (all ranks agree on the step).

The settings are one `TrainingSettings` (`training.settings`), passed whole.  Switches for
speed on a GPU, each exact or off by default: `prefetch` (collate ahead in a thread;
exact), `collate_workers` (in processes; exact), `fused_adam` (one AdamW kernel; on by
default on CUDA), `unpad_multiple` (the unpadded layout built on the host, rows rounded up
to a multiple: no host sync, static shapes), `bf16_weights` (bf16 weights + fp32 masters),
`fused_blocks` (bias+GELU and dropout+residual+LayerNorm as fused kernels),
`per_sequence_attention` (attention on real tokens only: one varlen call per layer on a GPU),
`async_checkpoints` (written by a thread while training goes on; exact), `compile`.
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from bertkit.modeling.checkpoint import load_state_dict
from bertkit.modeling.encoder import BertPreTrainedModel
from bertkit.modeling.fused import use_fused_blocks
from bertkit.modeling.triton_ops import make_fused_ops
from bertkit.training.budget import TimeBudget, budget_factor, parse_duration
from bertkit.training.checkpoints import (CheckpointWriter, check_same_model, latest_checkpoint, read_trainer_state,
                                          remove_checkpoints, rng_states, set_rng_states, take_snapshot, unwrap,
                                          write_checkpoint)
from bertkit.training.distributed import (all_reduce_mean_fp32, any_rank, broadcast_from_main, gather_to_main,
                                          init_distributed, max_over_ranks, mean_over_ranks, process_device,
                                          sum_over_ranks, wrap_ddp)
from bertkit.training.feed import (BatchFeed, FeedPlan, MicroBatch, accepts_generator, batch_generator,  # noqa: F401
                                   batches_per_epoch, count_tokens, epoch_order, takes_argument)
from bertkit.training.precision import (Bf16Weights, autocast, bf16_supported, linear_warmup_decay,  # noqa: F401
                                        make_adamw, param_groups)
from bertkit.training.progress import Logger, Window, plot_loss_curve  # noqa: F401  (re-exported)
from bertkit.training.settings import TrainingSettings
from bertkit.training.state import CtrlC, KeepBest, TrainingInterrupted, TrainState  # noqa: F401  (re-exported)
from bertkit.training.throughput import flops_per_token, peak_flops

# On a GPU every new tensor shape costs once: cuBLAS / cuDNN pick (and cuDNN builds) a kernel plan
# for it, and the caching allocator grows.  Measured on an H200 (bench/bench_gpu.py, BERT-Base,
# Korean reviews): the first pass over 60 batches of new shapes ran at 0.29 of the bare step, a
# second pass over the same batches at 0.79.  So on CUDA the real tokens of a batch are rounded
# up to a multiple of this (and pretraining pads rows to a multiple of 32): few distinct shapes.
GPU_ROWS_MULTIPLE = 64


# ----------------------------------------------------------------------------- trainer

class Trainer:
    """Runs optimisation of `model` over a map-style `dataset`.

    `collate(samples[, generator])` turns a list of dataset items into a dict of
    tensors that `model(**batch)` accepts and whose output has `.loss`.
    `evaluate(model) -> dict` (optional) is called every `eval_every` steps (below 1: that share
    of the run's steps) and at
    the end, on rank 0 only; it may call `request_stop()` (early stopping).

    Under `torchrun` every process builds the same Trainer; the model is wrapped in
    DistributedDataParallel (`training.distributed`) and only rank 0 logs, evaluates
    and writes checkpoints.  Dropout draws differ between processes (torch's generator
    is seeded from (seed, rank)); masks belong to the examples (their `mask_seed`).
    """

    def __init__(self, model: nn.Module, dataset, collate: Callable, settings: TrainingSettings,
                 run_dir: str | Path, evaluate: Callable | None = None, eval_every: float = 0,
                 on_log: Callable | None = None, keep_best: KeepBest | None = None):
        self.cfg = config = settings
        self.dist = init_distributed(config.device)
        self.device = process_device(config.device, self.dist)
        self.model = model.to(self.device)
        self.flops_per_token = flops_per_token(model)          # for the log's MFU (`training.throughput`)
        self.dataset, self.collate = dataset, collate
        self.evaluate, self.eval_every, self.on_log, self.keep_best = evaluate, eval_every, on_log, keep_best
        self.run_dir = Path(run_dir)
        self.state = TrainState(world=self.dist.world)
        self.stop_requested = False
        self.budget = TimeBudget(parse_duration(config.time_budget)) if config.time_budget else None
        self.total_steps = self._total_steps()
        self.log_every = self._log_interval()
        self.use_bf16 = config.bf16 and bf16_supported(self.device)
        if config.fused_blocks:
            use_fused_blocks(model, make_fused_ops(config.fused_blocks))
        for module in model.modules():                 # the encoder's attention mode (see modeling.encoder)
            if hasattr(module, "per_sequence_attention"):
                module.per_sequence_attention = module.per_sequence_attention or config.per_sequence_attention
        self.bf16_weights = Bf16Weights(model) if self.use_bf16 and config.bf16_weights else None
        self.optimizer = self._make_optimizer(model)
        self.scheduler = self._make_scheduler()
        self.writer = CheckpointWriter() if config.async_checkpoints and self.dist.is_main else None
        if self.dist.world > 1:
            torch.manual_seed(rank_seed(config.seed, self.dist.rank, 0))      # dropout: a stream per process
            self.model = wrap_ddp(self.model, self.device)
        if config.compile:
            self.model = torch.compile(self.model)

    def _make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        groups = param_groups(model, self.cfg.weight_decay)
        if self.bf16_weights is not None:
            groups = self.bf16_weights.master_groups(groups)
        return make_adamw(groups, self.cfg.learning_rate, self.cfg.adam_betas, self.cfg.adam_eps,
                          self.device, self.cfg.fused_adam)

    def _make_scheduler(self) -> torch.optim.lr_scheduler.LambdaLR:
        """Linear warm-up and decay over the steps, or over the time budget's seconds (`training.budget`)."""
        cfg = self.cfg
        if self.budget is not None:      # the LR of the next step, from the clock extrapolated to after it
            return torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda _: budget_factor(
                self.budget.fraction(self.state.step + 1), cfg.warmup_ratio))
        warmup = cfg.warmup_steps if cfg.warmup_steps is not None else int(cfg.warmup_ratio * self.total_steps)
        return linear_warmup_decay(self.optimizer, warmup, self.total_steps)

    # -- sizes
    def _feed_plan(self) -> FeedPlan:
        cfg = self.cfg
        return FeedPlan(batch_size=cfg.batch_size, grad_accum=cfg.grad_accum, seed=cfg.seed,
                        collate_seed=cfg.seed + 1000 * self.dist.rank, rank=self.dist.rank, world=self.dist.world,
                        start_step=self.state.step, start_epoch=self.state.epoch,
                        start_example=self.state.examples_in_epoch, unpad_multiple=self._unpad_multiple(),
                        masked_positions=takes_argument(unwrap(self.model), "masked_positions"))

    def micro_batches_per_epoch(self) -> int:
        """Global micro-batches (one per process at a time) in one pass over the data."""
        return batches_per_epoch(self.dataset, self._feed_plan())

    def _total_steps(self) -> int:
        """The steps of the run: --steps, or --epochs' worth; with a time budget, the steps that fit
        what is left of it at the agreed pace (re-estimated as training goes, at most --steps)."""
        if self.budget is not None:
            return self.budget.total_steps(self.state.step, self.cfg.steps)
        if self.cfg.steps:
            return self.cfg.steps
        steps = self.cfg.epochs * self.micro_batches_per_epoch() / self.cfg.grad_accum
        return max(1, math.ceil(steps))

    def _log_interval(self) -> int:
        """Steps between log rows: about 20 over the run, at most 50 apart."""
        return self.cfg.log_every or max(1, min(50, self.total_steps // 20))

    def _eval_interval(self) -> int:
        """`eval_every` steps; a value below 1 is a share of the run (0.1: ten evaluations)."""
        every = self.eval_every
        return int(every) if every >= 1 else max(1, int(every * self.total_steps + 1e-9))

    # -- resume
    def resume(self, checkpoint: Path | None = None) -> bool:
        """Load the latest (or given) checkpoint of this run. Returns False if there is none.

        Every process loads it (rank 0 names it).  The data continue at the global example
        the checkpoint reached, whatever the number of processes then and now; each process
        gets back its own random state when that number is the same, else a fresh stream.
        """
        found = checkpoint or (latest_checkpoint(self.run_dir) if self.dist.is_main else None)
        checkpoint = broadcast_from_main(str(found) if found else None, self.dist)
        if checkpoint is None:
            return False
        saved = self._read_checkpoint(Path(checkpoint))
        with self._full_precision():                   # bf16 weights: the fp32 masters are what is loaded
            unwrap(self.model).load_state_dict(saved["model"], strict=False)
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.state = TrainState.from_saved(saved["state"], self.cfg.batch_size)
        per_rank = saved["rng"] if isinstance(saved["rng"], list) else [saved["rng"]]
        if len(per_rank) == self.dist.world:
            set_rng_states(per_rank[self.dist.rank])
        else:
            torch.manual_seed(rank_seed(self.cfg.seed, self.dist.rank, self.state.step))
        self.state.world = self.dist.world
        if self.budget is not None:                  # go on with what is left of the budget
            self.budget = TimeBudget(self.budget.seconds, self.state.seconds, self.state.step)
            self.total_steps, self.log_every = self._total_steps(), self._log_interval()
        return True

    def _read_checkpoint(self, checkpoint: Path) -> dict:
        """Weights and trainer state of `checkpoint`: from disk where this process sees the run folder,
        else sent by rank 0 (nodes whose output folder is a local disk)."""
        shared = self.dist.shared_files or self.dist.world == 1
        saved = None
        if shared or self.dist.is_main:
            check_same_model(checkpoint, self.model)
            saved = {"model": load_state_dict(checkpoint), **read_trainer_state(checkpoint)}
        return saved if shared else broadcast_from_main(saved, self.dist)

    # -- the loop
    def feed(self) -> BatchFeed:
        """The micro-batches of this process from the current data position on (see `training.feed`)."""
        return BatchFeed(self.dataset, self.collate, self._feed_plan(), self.device, prefetch=self.cfg.prefetch or 0,
                         workers=self.cfg.collate_workers)

    def _unpad_multiple(self) -> int:
        """Rows multiple of host-built unpadding plans; 0 when off or when the model has no use for them."""
        model = unwrap(self.model)
        bert = getattr(model, "bert", model)
        if not isinstance(model, BertPreTrainedModel) or not getattr(bert, "unpad", False):
            return 0
        if self.cfg.unpad_multiple is not None:
            return self.cfg.unpad_multiple
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
            (self.run_dir / "train_config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
        self.model.train()
        logger = Logger(self.run_dir, self.dist.is_main, cfg.progress, self.total_steps, self.state.step,
                        report_to=cfg.report_to)
        if self.state.step == 0 and self.evaluate and self.eval_every and cfg.eval_at_start:
            self._log_initial_evaluation(logger)
        self.stop_requested = False
        feed = self.feed()
        try:
            with CtrlC() as ctrl_c:
                self._loop(feed, logger, ctrl_c)
            self.save()
        finally:
            feed.close()
            logger.close()
            if self.writer is not None:
                self.writer.wait()                   # the last checkpoint is complete when train() returns
            if self.bf16_weights is not None:
                self.bf16_weights.release()          # the model holds fp32 weights again
        return self.state

    def _loop(self, feed: BatchFeed, logger: Logger, ctrl_c: CtrlC) -> None:
        cfg = self.cfg
        window = Window()
        while self.state.step < self.total_steps and not self.stop_requested:
            window.add(*self._optimizer_step(feed))
            if self.budget is not None:
                self._follow_the_clock()
            log_due = self.state.step % self.log_every == 0 or self._evaluation_due()
            if log_due:
                self._log(window, logger)
                window = Window()
            interrupted = self._agree_to_stop(ctrl_c.requested, log_due)
            if interrupted:
                self._save_interrupted()
            if cfg.save_every and self.state.step % cfg.save_every == 0 and self.state.step < self.total_steps:
                self.save()

    def _follow_the_clock(self) -> None:
        """Time budget: agree on the clock (every step with one process; with several, one tiny
        all-reduce at steps 1, 2, 4, ... 64 and at log steps) and re-plan the steps that fit."""
        step = self.state.step
        early = step <= 64 and step & (step - 1) == 0
        if self.dist.world > 1 and not (early or step % self.log_every == 0):
            return
        self.budget.agree(step, max_over_ranks([self.budget.read()], self.dist, self.device)[0])
        self.total_steps, self.log_every = self._total_steps(), self._log_interval()

    def _log(self, window: Window, logger: Logger) -> None:
        """A log row (loss averaged over the processes), evaluated and written by rank 0."""
        loss = mean_over_ranks(window.loss_sum(), self.dist)
        if not self.dist.is_main:
            return
        tokens_per_s = window.tokens_per_s() * self.dist.world
        row = {"step": self.state.step, "loss": float(loss) / max(1, window.steps),
               "lr": self.scheduler.get_last_lr()[0], "tokens_per_s": tokens_per_s,
               "mfu": tokens_per_s * self.flops_per_token / (peak_flops(self.device, self.use_bf16) * self.dist.world)}
        self._maybe_evaluate(row)
        self.state.history.append(row)
        logger.set_total(self.total_steps)
        logger.log(row)
        if self.on_log:
            self.on_log(row)

    def _agree_to_stop(self, ctrl_c: bool, log_due: bool) -> bool:
        """Whether Ctrl-C asks to stop now; also settles early stopping.  With several processes they
        must stop at the same step, so they agree (one tiny all-reduce) at log steps only: rank 0's
        evaluation may have asked to stop, and a Ctrl-C may have reached only some processes."""
        if self.dist.world == 1:
            return ctrl_c
        if not log_due:
            return False
        ctrl_c, self.stop_requested = any_rank([ctrl_c, self.stop_requested], self.dist, self.device)
        return ctrl_c

    def _save_interrupted(self) -> None:
        checkpoint = self.save()
        if self.writer is not None:
            self.writer.wait()
        if self.dist.is_main:
            print(f"bertkit: interrupted at step {self.state.step}/{self.total_steps}; checkpoint saved to "
                  f"{checkpoint}. Run the same command again to resume from it.", file=sys.stderr, flush=True)
        raise TrainingInterrupted(self.state.step, checkpoint)

    def request_stop(self) -> None:
        """Ask the loop to end after the current step (early stopping); a final checkpoint is saved."""
        self.stop_requested = True

    def _optimizer_step(self, feed: BatchFeed) -> tuple[torch.Tensor, int]:
        """grad_accum micro-batches, clip, AdamW, LR step.  Returns (loss as a device tensor, tokens)."""
        cfg = self.cfg
        items = [next(feed) for _ in range(cfg.grad_accum)]
        labelled = sum_over_ranks(sum(i.loss_items or 0 for i in items), self.dist, self.device)
        total_loss, tokens = 0.0, 0
        for k, item in enumerate(items):
            exchange = k == len(items) - 1 and self.bf16_weights is None     # bf16 weights: fp32, after backward
            with self.model.no_sync() if self.dist.world > 1 and not exchange else nullcontext():
                loss = self._micro_loss(self._forward(item.batch), item, labelled)
                loss.backward()
            total_loss = total_loss + loss.detach().float()
            tokens += item.tokens
            self.state.epoch, self.state.examples_in_epoch = item.epoch, item.position
        self._apply_gradients()
        self.state.step += 1
        self.state.tokens_seen += tokens * self.dist.world
        return total_loss, tokens

    def _micro_loss(self, out, item: MicroBatch, labelled: float | torch.Tensor) -> torch.Tensor:
        """This micro-batch's share of the step's loss.

        A per-token loss (MLM, tagging) is a mean over this micro-batch's labelled tokens; it
        is weighed by its share of all the step's labelled tokens (`labelled`, summed over
        micro-batches and processes; × world because DDP averages over processes), so the
        step's loss is the mean over every labelled token, as one big batch would have it.
        Per-row losses (NSP, classification, QA) have the same rows everywhere: 1/grad_accum.
        """
        if item.loss_items is None:
            return out.loss / self.cfg.grad_accum
        weight = item.loss_items * self.dist.world / (max(labelled, 1.0) if isinstance(labelled, float)
                                                      else labelled.clamp(min=1))
        mlm = getattr(out, "mlm_loss", None)
        if mlm is None:                                  # the whole loss is per token (MLM head, tagging)
            return out.loss * weight
        nsp = getattr(out, "nsp_loss", None)             # pretraining: per-token MLM + per-row NSP
        return mlm * weight + (nsp / self.cfg.grad_accum if nsp is not None else 0.0)

    def _apply_gradients(self) -> None:
        """Clip, AdamW step, LR step (on the fp32 masters under bf16 weights)."""
        cfg = self.cfg
        if self.bf16_weights is not None:
            self.bf16_weights.grads_to_masters()
            all_reduce_mean_fp32([m.grad for m in self.bf16_weights.masters if m.grad is not None], self.dist)
        params = self.bf16_weights.masters if self.bf16_weights is not None else self.model.parameters()
        if cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.bf16_weights is not None:
            self.bf16_weights.masters_to_weights()
            self.bf16_weights.zero_grad()

    def _log_initial_evaluation(self, logger) -> None:
        """Evaluate the untrained model once, so curves start at step 0 (rank 0)."""
        if not self.dist.is_main:
            return
        row = {"step": 0, "loss": float("nan"), "lr": 0.0, "tokens_per_s": 0.0, "mfu": 0.0}
        self._run_evaluation(row)
        self.state.history.append(row)
        logger.log(row)
        if self.on_log:
            self.on_log(row)

    def _evaluation_due(self) -> bool:
        """Evaluate every `eval_every` steps and at the last step (a log row is written then too)."""
        last = self.state.step == self.total_steps
        return last or bool(self.evaluate and self.eval_every and self.state.step % self._eval_interval() == 0)

    def _maybe_evaluate(self, row: dict) -> None:
        if self.evaluate and self.eval_every and self._evaluation_due():
            self._run_evaluation(row)

    def _run_evaluation(self, row: dict) -> None:
        self.model.eval()
        with torch.no_grad(), self._full_precision():
            row.update(self.evaluate(unwrap(self.model)))
            self._judge(row)
        self.model.train()

    def _judge(self, row: dict) -> None:
        """With `keep_best`: save a better model, count evaluations without gain, ask to stop after
        `patience` of them (rank 0; `_agree_to_stop` makes every process stop at the same step)."""
        if self.keep_best is None:
            return
        score = self.keep_best.score
        if self.state.best is None or score(row) > score(self.state.best):
            self.state.best, self.state.evals_without_gain = dict(row), 0
            self.keep_best.save(unwrap(self.model), row)
            return
        self.state.evals_without_gain += 1
        if self.cfg.patience and self.state.evals_without_gain >= self.cfg.patience:
            self.request_stop()

    def _full_precision(self):
        """Inside: the model holds fp32 weights (a no-op unless `bf16_weights`)."""
        return self.bf16_weights.full_precision() if self.bf16_weights is not None else nullcontext()

    def save(self) -> Path | None:
        """Write a checkpoint of the current step: rank 0 writes it, with every process's random state."""
        if self.budget is not None:
            self.state.seconds = self.budget.spent(self.state.step)
        every_rng = gather_to_main(rng_states(), self.dist)
        if not self.dist.is_main:
            return None
        with self._full_precision():
            if self.writer is None:
                return write_checkpoint(self.run_dir, self.model, self.optimizer, self.scheduler,
                                        self.state, self.cfg.max_checkpoints, every_rng)
            snapshot = take_snapshot(self.model, self.optimizer, self.scheduler, self.state, every_rng)
        return self.writer.submit(self.run_dir, snapshot, self.cfg.max_checkpoints)

    def remove_checkpoints(self) -> list[Path]:
        """Delete this run's resume checkpoints (step-N/, latest) — when `keep_checkpoints` is False.

        Call it after the final model is safely written: the run cannot be resumed afterwards.
        Returns the directories removed (none when keep_checkpoints is True, or on ranks > 0).
        """
        if self.cfg.keep_checkpoints or not self.dist.is_main:
            return []
        return remove_checkpoints(self.run_dir)


def rank_seed(seed: int, rank: int, step: int) -> int:
    """torch's seed for process `rank` (dropout draws), from (seed, rank, step)."""
    return (seed * 1_000_003 + (rank + 1) * 7919 + step) % (2**63 - 1)
