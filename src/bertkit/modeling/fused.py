"""Fused kernels for the two elementwise tails of every BERT layer (opt-in, for GPUs).

A BERT layer ends its feed-forward input with `GELU(x W1 + b1)` and each of its two
sub-layers with `LayerNorm(dropout(h W + b) + residual)`.  Run op by op, each of those
elementwise steps reads and writes the whole [N, F] or [N, H] activation once more
(and once more in the backward): on a GPU that memory traffic, not arithmetic, is
their cost.  Fused, the matrix product runs without its bias, and one kernel adds the
bias and applies GELU (resp. adds the bias, drops out, adds the residual and
normalizes), reading each input once.

    use_fused_blocks(model, "compile")   # torch.compile (Inductor) generates the fused kernels
    use_fused_blocks(model, make_fused_ops("triton"))   # hand-written Triton kernels
    use_fused_blocks(model, None)        # back to the plain modules

(`make_fused_ops` lives in `bertkit.modeling.triton_ops`, which imports triton when it is
installed; this module does not, so importing bertkit stays light.)

The switch changes no parameter and no checkpoint name.  The arithmetic is the same
up to float rounding: the fused functions compute in fp32 and store in the dtype the
plain path would produce (bf16 GELU output under autocast, fp32 LayerNorm output).
Dropout draws its mask from another random stream (Inductor's / the kernel's own), so
with dropout the results are equal in distribution, not bit for bit.
Quantized or otherwise replaced `dense` layers and the ReLU activation keep the plain path.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bertkit.common.errors import InputError

APPROXIMATE = {"gelu": "none", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh"}   # hidden_act -> F.gelu mode


def bias_gelu(h: Tensor, bias: Tensor, approximate: str = "none") -> Tensor:
    """GELU(h + bias), computed in fp32, stored in h's dtype.  h: [N, F] (no bias yet); bias: [F]."""
    return F.gelu(h.float() + bias.float(), approximate=approximate).to(h.dtype)


def bias_dropout_residual_layer_norm(h: Tensor, bias: Tensor, residual: Tensor, weight: Tensor, ln_bias: Tensor,
                                     eps: float, p: float, training: bool) -> Tensor:
    """LayerNorm(dropout(h + bias) + residual), computed in fp32, stored in residual's dtype.

    h: [N, H] projection without its bias; bias, weight, ln_bias: [H]; residual: [N, H].
    """
    x = F.dropout(h.float() + bias.float(), p, training) + residual.float()
    return F.layer_norm(x, (x.shape[-1],), weight.float(), ln_bias.float(), eps).to(residual.dtype)


@dataclass
class FusedOps:
    """The two fused functions a layer calls (plain, compiled, or Triton)."""
    kind: str
    bias_gelu: Callable[..., Tensor]
    residual_layer_norm: Callable[..., Tensor]


def fused_ops(kind: str, backend: str = "inductor") -> FusedOps:
    """"compile": the two functions above through torch.compile (`backend` "inductor", or
    "aot_eager" to check the traced graphs without generating code); "eager": the functions
    as they are (a reference for tests).  Triton kernels: `triton_ops.make_fused_ops("triton")`."""
    if kind == "compile":
        compile_ = (lambda fn: torch.compile(fn, backend=backend, fullgraph=True))
        return FusedOps(kind, compile_(bias_gelu), compile_(bias_dropout_residual_layer_norm))
    if kind == "eager":
        return FusedOps(kind, bias_gelu, bias_dropout_residual_layer_norm)
    hint = " (Triton kernels: bertkit.modeling.triton_ops.make_fused_ops('triton'))" if kind == "triton" else ""
    raise InputError(f"fused blocks {kind!r} unknown here; use 'compile', 'eager' or None{hint}.")


def use_fused_blocks(model: nn.Module, kind: str | FusedOps | None, backend: str = "inductor") -> int:
    """Switch every encoder layer of `model` to fused tails (`kind`: a name or FusedOps) or back (None).

    Returns the number of modules switched.  Modules with a replaced (e.g. quantized)
    `dense` layer, or a ReLU activation, keep the plain path.  (The encoder's modules
    mark themselves with a `fusable_tail` class attribute: "gelu" or "layer_norm".)
    """
    ops = fused_ops(kind, backend) if isinstance(kind, str) else kind
    switched = 0
    for module in model.modules():
        tail = getattr(module, "fusable_tail", None)
        fusable = tail is not None and type(getattr(module, "dense", None)) is nn.Linear
        if tail == "gelu" and module.hidden_act not in APPROXIMATE:
            fusable = False
        if fusable:
            module.fused = ops
            switched += 1
    return switched


def fused_intermediate(module, x: Tensor) -> Tensor:
    """BertIntermediate through the fused ops: GELU(x W1^T + b1)."""
    return module.fused.bias_gelu(F.linear(x, module.dense.weight), module.dense.bias,
                                  APPROXIMATE[module.hidden_act])


def fused_residual_layer_norm(module, h: Tensor, residual: Tensor) -> Tensor:
    """ResidualLayerNorm through the fused ops: LN(dropout(h W^T + b) + residual)."""
    ln = module.LayerNorm
    return module.fused.residual_layer_norm(F.linear(h, module.dense.weight), module.dense.bias, residual,
                                            ln.weight, ln.bias, ln.eps, module.dropout.p, module.training)
