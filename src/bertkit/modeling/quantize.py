"""int8 dynamic quantization: faster CPU inference for a small, measured loss of accuracy.

Almost all of BERT's inference time is in its Linear layers (Q, K, V, attention output,
the two FFN matrices).  A CPU with int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI,
AMX) multiplies int8 matrices several times faster than fp32 ones.  "Dynamic" quantization
uses that without any calibration data:

* each weight matrix is rounded once to int8 with **one scale per output row**
  (W ~ W_int8 * s_w, s_w = max|W[row]| / 127);
* each input is rounded at run time with **one scale per token**
  (x ~ x_int8 * s_x, s_x = max|x[token]| / 127) -- per token, not per tensor, so one token
  with large activations does not wash out the precision of all the others;
* the int8 product is accumulated exactly in int32 (`torch._int_mm`) and scaled back:
  y = (x_int8 @ W_int8^T) * s_x * s_w + b.

Embeddings, LayerNorm, softmax and the task heads stay fp32.  The model becomes
inference-only (no gradients through int8 weights) and cannot be saved: keep the fp32
checkpoint and quantize after loading.  `bench/bench_quantize.py` measures the speed-up
and the accuracy change on a real task; the error is reported, never assumed away.

    from bertkit.modeling.quantize import quantize_dynamic_int8
    model = quantize_dynamic_int8(BertModel.from_pretrained("ckpt").eval())
"""
from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from bertkit.common.errors import InputError

INT8_MAX = 127  # symmetric range [-127, 127]: -128 is never used, so the scale is exact both ways


class Int8DynamicLinear(nn.Module):
    """A frozen nn.Linear whose matrix product runs in int8 (see the module docstring)."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        weight = linear.weight.detach().float()                            # [out, in]
        scale = weight.abs().amax(dim=1).clamp_min(1e-12) / INT8_MAX       # [out]
        int8 = torch.round(weight / scale[:, None]).clamp_(-INT8_MAX, INT8_MAX).to(torch.int8)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight_int8", int8)                          # [out, in] int8
        self.register_buffer("weight_scale", scale)                        # [out]
        bias = None if linear.bias is None else linear.bias.detach().float().clone()
        self.register_buffer("bias", bias)                                 # [out] or None

    def forward(self, x: Tensor) -> Tensor:
        rows = x.reshape(-1, self.in_features)                            # [M, in]
        x_scale = torch.maximum(rows.amax(dim=1), rows.amin(dim=1).neg_())   # [M] max |x| per token,
        x_scale = x_scale.clamp_min_(1e-12).div_(INT8_MAX).unsqueeze(1)   # no [M, in] temporary
        x_int8 = rows.mul(x_scale.reciprocal()).round_().to(torch.int8)  # [M, in], |value| <= 127
        acc = torch._int_mm(x_int8, self.weight_int8.t())                 # [M, out] int32, exact
        y = acc.mul(x_scale).mul_(self.weight_scale)                      # -> fp32, back to real units
        if self.bias is not None:
            y.add_(self.bias)
        return y.view(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 dynamic"


def quantize_dynamic_int8(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Replace the nn.Linear layers of the encoder layers by Int8DynamicLinear.

    Works on BertModel and on every head (the heads' own small layers stay fp32; the MLM
    decoder shares its matrix with the embeddings and is left alone).  Returns the
    quantized model in eval mode; the original is untouched unless `inplace=True`.
    """
    encoder = _encoder_of(model)
    if is_quantized(encoder):
        raise InputError("this model is already int8-quantized; quantize the fp32 model once.")
    if not inplace:
        model = copy.deepcopy(model)
        encoder = _encoder_of(model)
    for parent in list(encoder.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, name, Int8DynamicLinear(child))
    return model.eval()


def is_quantized(model: nn.Module) -> bool:
    return any(isinstance(m, Int8DynamicLinear) for m in model.modules())


def _encoder_of(model: nn.Module) -> nn.Module:
    """The stack of encoder layers of a BertModel or of a head (`.bert.encoder`)."""
    bert = getattr(model, "bert", model)
    encoder = getattr(bert, "encoder", None)
    if encoder is None:
        raise TypeError(f"quantize_dynamic_int8 expects a bertkit BertModel or head, got {type(model).__name__}.")
    return encoder
