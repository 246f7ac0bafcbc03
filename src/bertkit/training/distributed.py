"""Several processes, one training run: what `torchrun` needs from bertkit.

    torchrun --nproc_per_node 4 -m bertkit.cli pretrain corpus.txt --out runs/ddp

`torchrun` starts one process per GPU and tells each its place through the environment
(`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, and where to meet: `MASTER_ADDR` / `MASTER_PORT`
or a rendezvous).  The processes then form a *process group* and from there on:

* **prepare once** (`run_once`): vocab, shards and plans are built by one process per
  file system — rank 0, plus local rank 0 of every node that cannot see rank 0's files
  (found by a probe file, `sees_rank0_files`) — while the others wait, with a timeout and
  a message that says what to do.  If the preparer fails, every process stops, and
  only the preparer speaks;
* **one model, many data shards**: every process holds the same weights
  (DistributedDataParallel copies rank 0's at the start); each takes its own slice of
  every global batch, and the gradients are averaged across processes in backward;
* **one voice**: only rank 0 prints, logs, evaluates and writes checkpoints and models.

NCCL is the backend on GPUs, gloo on CPUs; nothing else differs between them.
"""
from __future__ import annotations

import atexit
import inspect
import itertools
import json
import os
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist

from bertkit.common.devices import resolve_device
from bertkit.common.errors import BertkitError

# How long a collective may wait before it fails.  Generous: rank 0 evaluates and writes
# checkpoints while the others wait at their next gradient all-reduce.  A process that dies
# is noticed by torchrun at once, whatever this is.
COLLECTIVE_TIMEOUT = timedelta(minutes=60)
# DistributedDataParallel all-reduces gradients in buckets of this many MB while backward
# still runs; BERT-Base's 440 MB of fp32 gradients make ~18 buckets: overlap without tiny messages.
DDP_BUCKET_MB = 25
# At exit a process waits this long for the others to reach their exit before it leaves the group
# (a process that failed leaves after this wait when the others are still busy).
LEAVE_SECONDS = 10


class PeerFailed(BertkitError):
    """Another process of this torchrun job failed; it reports its own error (this one stays quiet)."""


@dataclass
class DistInfo:
    """This process's place in the job (rank 0 of 1 when not launched by torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    shared_files: bool = True        # every process sees rank 0's output folder (set by `run_once`)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def process_info() -> DistInfo:
    """This process's place as the launcher set it in the environment (no process group needed)."""
    if not launched_by_torchrun():
        return DistInfo()
    return DistInfo(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))


_INFO: DistInfo | None = None
ERROR_EXCHANGE_SECONDS = 15
_EXCHANGES = itertools.count()     # every rank numbers its store exchanges the same way (see `_exchange_key`)


def init_distributed(device: torch.device | str | None = None) -> DistInfo:
    """Join the process group when launched by `torchrun` (NCCL for CUDA devices, gloo otherwise).

    `device` is the device training runs on (default: the GPU when there is one).  Idempotent:
    later calls return the same `DistInfo`.
    """
    global _INFO
    if not launched_by_torchrun():
        return DistInfo()
    if _INFO is not None and dist.is_initialized():
        return _INFO
    info = process_info()
    if not dist.is_initialized():
        cuda = torch.device(device).type == "cuda" if device else torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(info.local_rank)       # LOCAL_RANK picks the GPU
        dist.init_process_group("nccl" if cuda else "gloo", timeout=COLLECTIVE_TIMEOUT, **_attempt_store(info))
        atexit.register(_leave)
    _INFO = DistInfo(dist.get_rank(), dist.get_world_size(), info.local_rank)
    return _INFO


def _leave() -> None:
    """At exit, leave the process group together: a process that exits with the group's threads still
    running may abort ("terminate called without an active exception"), and torchrun reports a failed
    job; and a process that tears down its connections while a peer still uses them can make that peer
    abort.  So every rank first waits (at most LEAVE_SECONDS, through the store: no collective) until
    every rank has reached its exit, then destroys the group."""
    if not dist.is_initialized():
        return
    try:
        store, world = dist.distributed_c10d._get_default_store(), dist.get_world_size()
        key = f"{_attempt_prefix()}leaving"
        store.set(f"{key}/{dist.get_rank()}", "1")
        _store_wait(store, [f"{key}/{r}" for r in range(world)], LEAVE_SECONDS)
    except Exception:  # noqa: BLE001 — the store may be gone with the job: leave anyway
        pass
    dist.destroy_process_group()


def _attempt_store(info: DistInfo) -> dict:
    """The key-value store of this attempt of the job, when torchrun's agent hosts the store.

    After `torchrun --max-restarts` restarts the processes, the agent's store still holds the keys
    of the attempt that failed; processes that meet through them may read a dead peer's address
    ("Gloo connectFullMesh failed ... Connection refused", pytorch/pytorch#167288).  Giving every
    attempt its own key prefix (TORCHELASTIC_RESTART_COUNT) keeps the attempts apart."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True" or "MASTER_ADDR" not in os.environ:
        return {}
    client = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), info.world, is_master=False,
                           timeout=COLLECTIVE_TIMEOUT)
    return {"store": dist.PrefixStore(_attempt_prefix(), client), "rank": info.rank, "world_size": info.world}


def _attempt_prefix() -> str:
    """The key prefix of this attempt of the job (torchrun --max-restarts counts the attempts)."""
    return f"bertkit/attempt-{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/"


def _exchange_key(what: str) -> str:
    """A fresh key prefix in the job's key-value store (the one torchrun's rendezvous set up), the same
    on every rank as long as every rank makes the same exchanges in the same order."""
    return f"{_attempt_prefix()}{next(_EXCHANGES)}-{what}"


def _store_wait(store, keys: list[str], seconds: float) -> bool:
    """Whether every key was set within `seconds`."""
    try:
        store.wait(keys, timedelta(seconds=seconds))
        return True
    except Exception:  # noqa: BLE001 — the store says "timeout" as a RuntimeError / DistStoreError
        return False


def gather_errors(message: str | None) -> list | None:
    """Every rank's error message (None: this rank only stopped because another failed), when every
    rank of the job has failed and calls this within ERROR_EXCHANGE_SECONDS; else None.

    This is how an error that every process meets alike is shown once, not once per process.  It goes
    through the job's key-value store, not a collective: the processes may be out of step."""
    if not dist.is_initialized():
        return None
    store, key, world = dist.distributed_c10d._get_default_store(), _exchange_key("errors"), dist.get_world_size()
    store.set(f"{key}/{dist.get_rank()}", json.dumps(message))
    keys = [f"{key}/{r}" for r in range(world)]
    if not _store_wait(store, keys, ERROR_EXCHANGE_SECONDS):
        return None
    return [json.loads(store.get(k)) for k in keys]


def process_device(device: torch.device | str | None, info: DistInfo) -> torch.device:
    """The device of this process: `device` as given (a bare 'cuda' means this process's GPU,
    cuda:LOCAL_RANK), else the GPU of this local rank when there is one, else the CPU."""
    if device is None:
        return torch.device("cuda", info.local_rank) if torch.cuda.is_available() else torch.device("cpu")
    device = resolve_device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", info.local_rank)
    return device


# ----------------------------------------------------------------------------- prepare once

def sees_rank0_files(out_dir: Path, store, key: str, info: DistInfo, seconds: float) -> list[tuple[bool, int]]:
    """For every rank: (whether it sees a file that rank 0 just wrote into `out_dir`, its local rank).

    All True on a shared file system; False on the ranks of a node whose `out_dir` is a
    local disk of its own.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    if info.rank == 0:
        probe = out_dir / f".bertkit-probe-{uuid.uuid4().hex}"
        probe.write_text("written by rank 0 to find which processes share this folder\n")
        store.set(f"{key}/probe", probe.name)
    if not _store_wait(store, [f"{key}/probe"], seconds):
        raise BertkitError(f"rank {info.rank} waited {seconds / 60:.0f} min for rank 0 to start preparing {out_dir}; "
                           "is rank 0 running? (or allow more time with --prepare-timeout MINUTES)")
    probe = out_dir / store.get(f"{key}/probe").decode()
    store.set(f"{key}/sees/{info.rank}", json.dumps([probe.exists(), info.local_rank]))
    keys = [f"{key}/sees/{r}" for r in range(info.world)]
    _store_wait(store, keys, seconds)
    seen = [tuple(json.loads(store.get(k))) for k in keys]
    if info.rank == 0:
        probe.unlink(missing_ok=True)
    return seen


def run_once(work: Callable[[], None], info: DistInfo, out_dir: Path, what: str, timeout_minutes: float) -> None:
    """Run `work` (e.g. building the data in `out_dir`) once per file system; the others wait.

    Rank 0 works, and so does local rank 0 of every node that does not see rank 0's files.
    The preparers then post a status in the job's key-value store: an error on a preparer is
    raised there (and shown), the others raise `PeerFailed` (quiet).  A wait longer than
    `timeout_minutes` ends with a message that says how to prepare beforehand.  With one
    process, just `work()`.
    """
    if info.world == 1:
        work()
        return
    store, key, seconds = dist.distributed_c10d._get_default_store(), _exchange_key("prepare"), timeout_minutes * 60
    seen = sees_rank0_files(out_dir, store, key, info, seconds)
    info.shared_files = all(sees for sees, _ in seen)
    preparers = [r for r, (sees, local) in enumerate(seen) if r == 0 or (local == 0 and not sees)]
    error = None
    if info.rank in preparers:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 — posted for the others first, raised below
            error = exc
        store.set(f"{key}/done/{info.rank}", "" if error is None else f"{type(error).__name__}: {error}")
    if error is not None:
        raise error
    done = [f"{key}/done/{r}" for r in preparers]
    if not _store_wait(store, done, seconds):
        raise BertkitError(
            f"rank {info.rank} waited {timeout_minutes:.0f} min for {what} in {out_dir} and gave up. Prepare it "
            "beforehand with one process (the same command without torchrun, plus --prepare-only), or allow more "
            "time with --prepare-timeout MINUTES.")
    failed = [(r, store.get(k).decode()) for r, k in zip(preparers, done) if store.get(k)]
    if failed:
        raise PeerFailed(f"rank {failed[0][0]} failed while preparing {what}: {failed[0][1]}")


def broadcast_from_main(value, info: DistInfo):
    """`value` as rank 0 has it, on every rank (any picklable object)."""
    if info.world == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_to_main(value, info: DistInfo) -> list | None:
    """[value of rank 0, value of rank 1, ...] on rank 0; None on the others."""
    if info.world == 1:
        return [value]
    out = [None] * info.world if info.is_main else None
    dist.gather_object(value, out, dst=0)
    return out


def any_rank(flags: list[bool], info: DistInfo, device: torch.device) -> list[bool]:
    """Element-wise OR of `flags` over all ranks (one tiny all-reduce)."""
    return [bool(x) for x in max_over_ranks([float(f) for f in flags], info, device)]


def max_over_ranks(values: list[float], info: DistInfo, device: torch.device) -> list[float]:
    """Element-wise largest of host numbers over all ranks (one tiny all-reduce; the same on every rank)."""
    if info.world == 1:
        return values
    device = device if device.type == "cuda" else torch.device("cpu")
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor.tolist()


def mean_over_ranks(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The mean of a (scalar) tensor over all ranks."""
    if info.world == 1:
        return value
    value = value.detach().float().clone()
    dist.all_reduce(value)
    return value / info.world


def sum_over_ranks(value: int, info: DistInfo, device: torch.device) -> float | torch.Tensor:
    """The sum of a host integer over all ranks: the integer itself with one process, else a tensor
    on `device` (copied from pinned memory and all-reduced there: the host never waits for a GPU)."""
    if info.world == 1:
        return float(value)
    tensor = torch.tensor([float(value)])
    if device.type == "cuda":
        tensor = tensor.pin_memory().to(device, non_blocking=True)
    dist.all_reduce(tensor)
    return tensor


# ----------------------------------------------------------------------------- gradients

def all_reduce_mean_fp32(tensors: list[torch.Tensor], info: DistInfo) -> None:
    """Average fp32 tensors (e.g. the gradients of the fp32 master weights) over all ranks, in place,
    with one all-reduce of one flat buffer.

    With `--bf16-weights` the model's gradients are bf16.  Summed across processes in bf16 (8 bits
    of mantissa) small gradients would be lost on 8 or 64 processes; so under bf16 weights DDP does
    not exchange gradients during backward (`no_sync` on every micro-batch): they are widened to
    the fp32 masters first (`Bf16Weights.grads_to_masters`) and summed here in fp32.  The price: the
    exchange no longer overlaps backward.
    """
    if info.world == 1 or not tensors:
        return
    flat = torch._utils._flatten_dense_tensors(tensors)
    dist.all_reduce(flat)
    flat /= info.world
    for tensor, reduced in zip(tensors, torch._utils._unflatten_dense_tensors(flat, tensors)):
        tensor.copy_(reduced)


def wrap_ddp(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DistributedDataParallel with bertkit's settings (see DDP_BUCKET_MB).

    `gradient_as_bucket_view`: gradients live inside DDP's buckets (no extra copy of every
    gradient); buffers are not re-sent before every forward: BERT's buffers are constants
    (position ids), not running statistics.
    """
    parameters = inspect.signature(torch.nn.parallel.DistributedDataParallel).parameters
    buffers = {"forward_sync_buffers": False} if "forward_sync_buffers" in parameters else {"broadcast_buffers": False}
    ddp = torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None, bucket_cap_mb=DDP_BUCKET_MB,
        gradient_as_bucket_view=True, **buffers)
    return ddp
