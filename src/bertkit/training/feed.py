"""Feeding the device: the micro-batches of a run, in order, collated ahead of the step.

The order of a run is fixed before it starts and does not depend on how many processes
run it: the examples of epoch e are the permutation `epoch_order(len(dataset), seed, e)`,
cut into *global* micro-batches of `world × batch_size` examples; rank r of a `torchrun`
job takes the r-th slice of each (so 2 processes × batch b see exactly the examples of
1 process × batch 2b).  The position saved in a checkpoint is the number of examples of
the epoch consumed, so a run resumed with another number of processes continues at the
same global example.  Micro-batch k from the start position belongs to optimizer
step `start_step + k // grad_accum`.  Its random numbers (dynamic masking of examples
without their own `mask_seed`) come from a generator seeded with (seed, step, micro).
So every batch is a pure function of its position: it may be collated early, in another
thread, and the run still sees exactly the batches — and masks — of a run that collated
each batch just in time, and of a run that was interrupted and resumed.

Each micro-batch also carries `loss_items`, the number of labelled tokens it holds (masked
tokens for MLM, tagged tokens for NER), counted on the host: the trainer weighs each
micro-batch's mean loss by it, so that the loss of a step is the mean over all its
labelled tokens, however they are spread over processes and accumulation steps.

On CUDA, batches are copied with `non_blocking=True` (from pinned, page-locked memory when
a prefetch thread pinned them), and nothing in a step waits for the GPU (the unpadding plan
and the MLM positions are found on the host, the number of real tokens is counted on the
CPU tensors): the CPU collates step s+1 while the GPU still computes step s.  That overlap
needs no thread.
`prefetch > 0` collates that many micro-batches ahead in a background thread; it is off by
default, because measured on an H200 (`bench/bench_gpu.py`, BERT-Base) the thread competes
with the training loop for Python's GIL: the step, which launches hundreds of kernels from
Python, slowed down 1.2x (English corpus) to 3.4x (Korean reviews) with it.
`collate_workers > 0` collates in worker processes instead (`worker_batches`): a batch is a pure
function of its `Slot` (examples, step, micro-batch), so the processes give exactly the batches
of collating in place, and the training process keeps its GIL.
"""
from __future__ import annotations

import inspect
import queue
import threading
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from bertkit.common.defaults import IGNORE_INDEX
from bertkit.common.errors import InputError
from bertkit.modeling.heads import masked_token_positions
from bertkit.modeling.layout import Unpadding, plan_unpadding


def epoch_order(num_examples: int, seed: int, epoch: int) -> np.ndarray:
    """The example order of one epoch: a permutation drawn from (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


def batch_generator(seed: int, step: int, micro: int) -> torch.Generator:
    """A generator for one micro-batch's randomness (e.g. masking), from (seed, step, micro)."""
    mixed = (seed * 1_000_003 + step * 7919 + micro) % (2**63 - 1)
    return torch.Generator().manual_seed(mixed)


def accepts_generator(fn: Callable) -> bool:
    """Whether a collate function takes a `generator=` keyword."""
    return takes_argument(fn, "generator")


def takes_argument(fn: Callable, name: str) -> bool:
    """Whether `fn` (a function or a module's forward) names the keyword `name` in its signature."""
    try:
        return name in inspect.signature(getattr(fn, "forward", fn)).parameters
    except (TypeError, ValueError):
        return False


def count_tokens(batch: dict) -> int:
    """Real (non-pad) tokens of a batch; call it on CPU tensors (it reads the values)."""
    mask = batch.get("attention_mask")
    if mask is not None:
        return int(mask.sum())
    return int(batch["input_ids"].numel())


@dataclass
class MicroBatch:
    """One collated micro-batch and where it sits in the run."""
    batch: dict          # tensors (on the host until `to_device`)
    epoch: int           # the epoch it belongs to
    position: int        # examples of that epoch consumed (by all ranks) once this one is done
    tokens: int          # real tokens, counted on the host
    loss_items: int | None = None   # labelled tokens (2-D labels), counted on the host; None: one per row

    def pin_memory(self) -> MicroBatch:
        """Page-locked copies of the tensors (called by the DataLoader's pinning thread)."""
        self.batch = pin(self.batch)
        return self


@dataclass
class FeedPlan:
    """Where the feed starts and how it collates (all from the trainer's config and state)."""
    batch_size: int
    grad_accum: int
    seed: int                  # the run's seed (example order)
    collate_seed: int          # seed of the per-micro-batch generators (differs per rank)
    rank: int = 0
    world: int = 1
    start_step: int = 0
    start_epoch: int = 0
    start_example: int = 0     # examples of start_epoch already consumed, by all ranks together
    unpad_multiple: int = 0    # >0: attach a host-built Unpadding with N rounded up to this multiple (and
                               # round the MLM positions up to it: few distinct shapes)
    masked_positions: bool = False  # attach the [M] flat positions of MLM labels (the model takes them)


def rank_batch_size(dataset, plan: FeedPlan) -> int:
    """Examples per rank and micro-batch: `batch_size`, or fewer when the data set is smaller
    than one global batch (then one global batch per epoch)."""
    size = min(plan.batch_size, len(dataset) // plan.world)
    if size == 0:
        raise InputError(f"the training data has {len(dataset)} example(s), fewer than the {plan.world} processes "
                         "that share it: use more data or fewer processes.")
    return size


def batches_per_epoch(dataset, plan: FeedPlan) -> int:
    """Global micro-batches per epoch (the last partial one is dropped)."""
    return len(dataset) // (plan.world * rank_batch_size(dataset, plan))


def loss_items(batch: dict) -> int | None:
    """Labelled tokens of a batch with per-token labels (MLM, tagging); None for per-row labels."""
    labels = batch.get("labels")
    if isinstance(labels, torch.Tensor) and labels.dim() == 2:
        return int((labels != IGNORE_INDEX).sum())
    return None


@dataclass
class Slot:
    """One micro-batch's place in the run: this rank's examples, and the step it belongs to."""
    epoch: int
    position: int            # examples of the epoch consumed (by all ranks) once this micro-batch is done
    indices: np.ndarray      # this rank's examples
    step: int
    micro: int               # its index within the step (0 .. grad_accum-1)


def slots(dataset, plan: FeedPlan) -> Iterator[Slot]:
    """Every micro-batch slot of this rank from the plan's start position onward, forever (cheap: no
    example is read).  `dataset.set_epoch` is called as an epoch starts: its length may change."""
    epoch, position, k = plan.start_epoch, plan.start_example, 0
    while True:
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)                  # e.g. new NSP pairs each epoch
        order = epoch_order(len(dataset), plan.seed, epoch)
        size = rank_batch_size(dataset, plan)
        global_size = size * plan.world
        while position + global_size <= len(order):
            mine = order[position + plan.rank * size: position + (plan.rank + 1) * size]
            position += global_size
            yield Slot(epoch, position, mine, plan.start_step + k // plan.grad_accum, k % plan.grad_accum)
            k += 1
        epoch, position = epoch + 1, 0


def collate_slot(dataset, collate: Callable, plan: FeedPlan, slot: Slot) -> MicroBatch:
    """Read and collate the examples of `slot` (a pure function of the slot: the same batch in any
    process, at any time), with the host-built unpadding plan and MLM positions when asked."""
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(slot.epoch)                 # a no-op unless this process has another epoch loaded
    extra = {"generator": batch_generator(plan.collate_seed, slot.step, slot.micro)} if accepts_generator(collate) \
        else {}
    batch = collate([dataset[int(i)] for i in slot.indices], **extra)
    if plan.unpad_multiple and "attention_mask" in batch and "unpad" not in batch:
        batch["unpad"] = plan_unpadding(batch["attention_mask"], multiple=plan.unpad_multiple)
    if plan.masked_positions and "labels" in batch and batch["labels"].dim() == 2:
        batch["masked_positions"] = masked_token_positions(batch["labels"], plan.unpad_multiple)  # [M], padded
    return MicroBatch(batch, slot.epoch, slot.position, count_tokens(batch), loss_items(batch))


def host_batches(dataset, collate: Callable, plan: FeedPlan) -> Iterator[MicroBatch]:
    """Every micro-batch of this rank from the plan's start position onward, forever, collated here."""
    return (collate_slot(dataset, collate, plan, slot) for slot in slots(dataset, plan))


class _SlotCollator(torch.utils.data.Dataset):
    """For a DataLoader whose sampler yields slots: item `slot` is its collated micro-batch."""

    def __init__(self, dataset, collate: Callable, plan: FeedPlan):
        self.dataset, self.collate, self.plan = dataset, collate, plan

    def __getitem__(self, slot: Slot) -> MicroBatch:
        return collate_slot(self.dataset, self.collate, self.plan, slot)


def _as_is(item):
    return item


def worker_batches(dataset, collate: Callable, plan: FeedPlan, workers: int, pin: bool):
    """The micro-batches of `host_batches`, collated by `workers` processes (torch's DataLoader: in
    order, two per worker ahead, pinned by its thread when `pin`).  Every batch is a pure function of
    its slot, so the run is the one `host_batches` gives."""
    own_seed = torch.Generator().manual_seed(plan.collate_seed)   # the workers' seeds: not drawn from dropout's RNG
    loader = torch.utils.data.DataLoader(_SlotCollator(dataset, collate, plan), sampler=slots(dataset, plan),
                                         batch_size=None, collate_fn=_as_is, num_workers=workers, pin_memory=pin,
                                         prefetch_factor=2, generator=own_seed)
    return iter(loader)


def to_device(batch: dict, device: torch.device, pinned: bool = False) -> dict:
    """Move a batch's tensors (and Unpadding plans) to `device`; asynchronous from pinned memory."""
    if device.type == "cpu":
        return batch
    return {k: v.to(device, non_blocking=pinned) if isinstance(v, (torch.Tensor, Unpadding)) else v
            for k, v in batch.items()}


def pin(batch: dict) -> dict:
    """Page-locked copies of a batch's tensors (so that the copy to the GPU can be asynchronous)."""
    return {k: v.pin_memory() if isinstance(v, (torch.Tensor, Unpadding)) else v for k, v in batch.items()}


class BatchFeed:
    """Iterator of `MicroBatch`es whose tensors are on `device`.

    prefetch=0: collate each batch when it is asked for (the simplest, CPU default).
    prefetch=n: a daemon thread keeps up to n collated (and, for CUDA, pinned) batches
    ready.  An exception in the thread is raised in the consumer at the batch it hit.
    workers=n: n processes collate (torch's DataLoader, in order, 2n batches ahead; for CUDA
    its thread pins them): collation leaves the training process and its GIL altogether.
    Call `close()` when done (the trainer does, also after an error or Ctrl-C).
    """

    def __init__(self, dataset, collate: Callable, plan: FeedPlan, device: torch.device, prefetch: int = 0,
                 workers: int = 0):
        self.device, self.plan = torch.device(device), plan
        self.pinned = self.device.type == "cuda"
        self.thread = None
        if workers > 0:                        # worker processes collate (and the loader's thread pins)
            self.source = worker_batches(dataset, collate, plan, workers, self.pinned)
            return
        self.source = host_batches(dataset, collate, plan)
        if prefetch > 0:
            self.queue: queue.Queue = queue.Queue(maxsize=prefetch)
            self.stop = threading.Event()
            self.thread = threading.Thread(target=self._produce, name="bertkit-prefetch", daemon=True)
            self.thread.start()

    def _produce(self) -> None:
        try:
            for item in self.source:
                if self.pinned:
                    item.batch = pin(item.batch)
                while not self.stop.is_set():
                    try:
                        self.queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self.stop.is_set():
                    return
        except BaseException as exc:           # handed to the consumer, raised there
            self.queue.put(exc)

    def __iter__(self) -> BatchFeed:
        return self

    def __next__(self) -> MicroBatch:
        if self.thread is None:
            item = next(self.source)
        else:
            item = self.queue.get()
            if isinstance(item, BaseException):
                raise item
        item.batch = to_device(item.batch, self.device, self.pinned)
        return item

    def close(self) -> None:
        if self.thread is not None:
            self.stop.set()
            while self.thread.is_alive():
                try:                            # unblock a producer waiting on a full queue
                    self.queue.get(timeout=0.05)
                except queue.Empty:
                    pass
            self.thread = None
        if hasattr(self.source, "_shutdown_workers"):      # a DataLoader's iterator: stop its processes
            self.source._shutdown_workers()
        else:
            self.source.close()
