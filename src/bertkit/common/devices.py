"""Which device runs the model: `--device` (cpu, cuda, cuda:N, mps) checked against this machine.

`resolve_device(None)` is the default everywhere: the GPU when there is one, else the CPU.
A name this machine does not have is a `DeviceError` that lists what it has, raised when
the command line is read, not after the data has loaded:

    >>> resolve_device("cuda")            # on a laptop without CUDA
    DeviceError: --device cuda: there is no CUDA GPU here (this torch 2.5.1+cpu is built without CUDA);
    the devices here: cpu
"""
from __future__ import annotations

import re

import torch

from bertkit.common.errors import DeviceError


def available_devices() -> list[str]:
    """The device names this machine can run on: cpu, then cuda:0 ... and mps when present."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _has_mps():
        names.append("mps")
    return names


def resolve_device(name: str | int | torch.device | None) -> torch.device:
    """The torch.device for `name`, checked: None → the GPU when there is one, else the CPU.

    Names: "cpu", "cuda" (the current GPU), "cuda:N", "mps"; an int N means cuda:N (a
    negative one the CPU, as in the reference pipelines).  A device this machine lacks, or
    a name torch does not know, raises `DeviceError` naming the devices that exist.
    """
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(name, int):
        name = "cpu" if name < 0 else f"cuda:{name}"
    text = str(name).strip().lower()
    match = re.fullmatch(r"(cpu|cuda|mps)(?::(\d+))?", text)
    if not match or (match.group(1) != "cuda" and match.group(2) not in (None, "0")):
        raise DeviceError(f"--device {name}: not a device name; use cpu, cuda, cuda:N or mps "
                          f"(the devices here: {', '.join(available_devices())})")
    kind, index = match.group(1), match.group(2)
    if kind == "cuda":
        _check_cuda(name, None if index is None else int(index))
    elif kind == "mps" and not _has_mps():
        raise DeviceError(f"--device {name}: there is no Apple GPU (MPS) here; the devices here: "
                          f"{', '.join(available_devices())}")
    return torch.device(text)


def _check_cuda(name, index: int | None) -> None:
    if not torch.cuda.is_available():
        why = (f"this torch {torch.__version__} is built without CUDA" if torch.version.cuda is None
               else "torch finds no GPU: check the driver and CUDA_VISIBLE_DEVICES")
        raise DeviceError(f"--device {name}: there is no CUDA GPU here ({why}); the devices here: "
                          f"{', '.join(available_devices())}")
    count = torch.cuda.device_count()
    if index is not None and index >= count:
        raise DeviceError(f"--device {name}: this machine has {count} CUDA GPU{'s' if count != 1 else ''}; "
                          f"the devices here: {', '.join(available_devices())}")


def _has_mps() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())
