"""How much of the machine a training run uses: model FLOPs utilisation (MFU) for the log.

    MFU = 6 · N · (real tokens per second) / peak FLOP/s

N counts the parameters outside the embedding tables (a lookup costs no multiply-adds):
every such weight does one multiply-add per token forward and two backward, 6 FLOPs.
Attention's scores and the MLM head's vocabulary projection are left out, so this
undercounts a little (the convention of the PaLM paper's MFU without the attention term).

The peak: for NVIDIA data-center GPUs the dense bf16 (or TF32) figure of the spec sheet; for
other devices a short matrix-multiply probe measures what this process can reach (once per
process), so a CPU's MFU is "of the measured matmul peak", not of a spec.
"""
from __future__ import annotations

import time

import torch
from torch import nn

# Dense TFLOP/s from NVIDIA's spec sheets: (bf16, tf32).  Matched on the device name.
GPU_PEAKS = {"H200": (989.0, 494.0), "H100": (989.0, 494.0), "A100": (312.0, 156.0), "L40S": (362.0, 183.0),
             "L4": (121.0, 60.0), "A10": (125.0, 62.5), "V100": (125.0, 15.7)}
_MEASURED: dict = {}


def flops_per_token(model: nn.Module) -> float:
    """Training FLOPs per token: 6 × the parameters outside embedding tables."""
    embeddings = {id(p) for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    return 6.0 * sum(p.numel() for p in model.parameters() if id(p) not in embeddings)


def peak_flops(device: torch.device, bf16: bool) -> float:
    """FLOP/s this device can reach: the spec sheet's for known GPUs, else measured once (a matmul probe)."""
    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, (b, t) in GPU_PEAKS.items():
            if key in name:
                return (b if bf16 else t) * 1e12
    key = (str(device), bf16)
    if key not in _MEASURED:
        _MEASURED[key] = _probe(device, torch.bfloat16 if bf16 else torch.float32)
    return _MEASURED[key]


def _probe(device: torch.device, dtype: torch.dtype, size: int = 512, seconds: float = 0.1) -> float:
    """The best FLOP/s of `size`³ matrix multiplies over about `seconds` (after one warm-up)."""
    a = torch.full((size, size), 0.5, device=device, dtype=dtype)     # no random draws: the run's RNG is untouched
    b = torch.full((size, size), 0.25, device=device, dtype=dtype)
    best, start = 0.0, time.perf_counter()
    torch.mm(a, b)
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        for _ in range(4):
            torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = max(best, 4 * 2 * size**3 / (time.perf_counter() - t0))
    return best
