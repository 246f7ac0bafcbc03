"""Triton kernels for the fused layer tails (see `bertkit.modeling.fused`); GPU + `triton` only.

Two autograd functions, each a forward kernel and a backward kernel:

* `bias_gelu(h, b)`: GELU(h + b).  The backward recomputes h + b instead of storing it.
* `bias_dropout_residual_layer_norm(h, b, r, w, beta, eps, p, training)`: one program per
  row (H <= 8192 values fit one block): y = dropout(h + b) + r, then LayerNorm(y).  The
  dropout mask is not stored: it is re-drawn in the backward from the same seed and
  offsets (Philox counter-based random numbers), so the backward needs y's row
  statistics only.  The seed is drawn from torch's CPU generator, so runs are
  reproducible and resume exactly like the plain path (other numbers, same distribution).

Everything is computed in fp32; outputs are stored in the dtype the plain path gives.
The weight gradients (column sums over the rows) are left to torch.
With TRITON_INTERPRET=1 the kernels run on CPU tensors (slowly): that is how they are tested
without a GPU.
"""
from __future__ import annotations

import torch
from torch import Tensor

from bertkit.common.errors import missing_dependency
from bertkit.modeling.fused import FusedOps, fused_ops

try:                                   # optional: only the "triton" kind needs it
    import triton
    import triton.language as tl
except ImportError:
    triton = tl = None


def require_triton() -> None:
    if triton is None:
        raise missing_dependency("triton", "gpu", "fused_blocks='triton'")


def make_fused_ops(kind: str, backend: str = "inductor") -> FusedOps:
    """FusedOps for `use_fused_blocks`: "triton" (these kernels), or any kind of `fused.fused_ops`."""
    if kind != "triton":
        return fused_ops(kind, backend)
    require_triton()
    return FusedOps("triton", bias_gelu, bias_dropout_residual_layer_norm)


if triton is not None:
    @triton.jit
    def _gelu_parts(z, TANH: tl.constexpr):
        """(gelu(z), gelu'(z)) in fp32."""
        if TANH:
            k = 0.7978845608028654                                   # sqrt(2 / pi)
            u = k * (z + 0.044715 * z * z * z)
            t = 2.0 / (1.0 + tl.exp(-2.0 * u)) - 1.0                 # tanh(u)
            return 0.5 * z * (1.0 + t), 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * z * z)
        cdf = 0.5 * (1.0 + tl.math.erf(z * 0.7071067811865476))
        return z * cdf, cdf + z * 0.3989422804014327 * tl.exp(-0.5 * z * z)

    @triton.jit
    def bias_gelu_fwd(h_ptr, b_ptr, out_ptr, n, F, TANH: tl.constexpr, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        ok = offs < n
        z = tl.load(h_ptr + offs, mask=ok).to(tl.float32) + tl.load(b_ptr + offs % F, mask=ok).to(tl.float32)
        y, _ = _gelu_parts(z, TANH)
        tl.store(out_ptr + offs, y.to(out_ptr.dtype.element_ty), mask=ok)

    @triton.jit
    def bias_gelu_bwd(g_ptr, h_ptr, b_ptr, dz_ptr, n, F, TANH: tl.constexpr, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        ok = offs < n
        z = tl.load(h_ptr + offs, mask=ok).to(tl.float32) + tl.load(b_ptr + offs % F, mask=ok).to(tl.float32)
        _, slope = _gelu_parts(z, TANH)
        g = tl.load(g_ptr + offs, mask=ok).to(tl.float32)
        tl.store(dz_ptr + offs, g * slope, mask=ok)

    @triton.jit
    def ln_fwd(h_ptr, b_ptr, r_ptr, w_ptr, beta_ptr, out_ptr, y_ptr, stats_ptr, H, eps, p, seed,
               TRAINING: tl.constexpr, BLOCK: tl.constexpr):
        row = tl.program_id(0)
        cols = tl.arange(0, BLOCK)
        ok = cols < H
        z = tl.load(h_ptr + row * H + cols, mask=ok, other=0.0).to(tl.float32)
        z += tl.load(b_ptr + cols, mask=ok, other=0.0).to(tl.float32)
        if TRAINING:
            keep = tl.rand(seed, row * H + cols) >= p
            z = tl.where(keep, z / (1.0 - p), 0.0)
        y = z + tl.load(r_ptr + row * H + cols, mask=ok, other=0.0).to(tl.float32)
        mean = tl.sum(y, axis=0) / H
        centred = tl.where(ok, y - mean, 0.0)
        rstd = 1.0 / tl.sqrt(tl.sum(centred * centred, axis=0) / H + eps)
        w = tl.load(w_ptr + cols, mask=ok, other=0.0).to(tl.float32)
        beta = tl.load(beta_ptr + cols, mask=ok, other=0.0).to(tl.float32)
        tl.store(out_ptr + row * H + cols, (centred * rstd * w + beta).to(out_ptr.dtype.element_ty), mask=ok)
        tl.store(y_ptr + row * H + cols, y, mask=ok)
        tl.store(stats_ptr + row * 2, mean)
        tl.store(stats_ptr + row * 2 + 1, rstd)

    @triton.jit
    def ln_bwd(g_ptr, y_ptr, stats_ptr, w_ptr, dy_ptr, dz_ptr, xhat_ptr, H, p, seed,
               TRAINING: tl.constexpr, BLOCK: tl.constexpr):
        row = tl.program_id(0)
        cols = tl.arange(0, BLOCK)
        ok = cols < H
        mean = tl.load(stats_ptr + row * 2)
        rstd = tl.load(stats_ptr + row * 2 + 1)
        xhat = tl.where(ok, (tl.load(y_ptr + row * H + cols, mask=ok, other=0.0) - mean) * rstd, 0.0)
        g = tl.load(g_ptr + row * H + cols, mask=ok, other=0.0).to(tl.float32)
        wg = g * tl.load(w_ptr + cols, mask=ok, other=0.0).to(tl.float32)
        c1 = tl.sum(xhat * wg, axis=0) / H
        c2 = tl.sum(wg, axis=0) / H
        dy = tl.where(ok, (wg - (xhat * c1 + c2)) * rstd, 0.0)
        dz = dy
        if TRAINING:
            keep = tl.rand(seed, row * H + cols) >= p
            dz = tl.where(keep, dy / (1.0 - p), 0.0)
        tl.store(dy_ptr + row * H + cols, dy, mask=ok)
        tl.store(dz_ptr + row * H + cols, dz, mask=ok)
        tl.store(xhat_ptr + row * H + cols, xhat, mask=ok)



ELEMENTWISE_BLOCK = 1024


class _BiasGelu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h: Tensor, bias: Tensor, tanh: bool) -> Tensor:
        h = h.contiguous()
        out = torch.empty_like(h)
        n = h.numel()
        grid = (triton_cdiv(n, ELEMENTWISE_BLOCK),)
        bias_gelu_fwd[grid](h, bias, out, n, bias.numel(), TANH=tanh, BLOCK=ELEMENTWISE_BLOCK)
        ctx.save_for_backward(h, bias)
        ctx.tanh = tanh
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        h, bias = ctx.saved_tensors
        dz = torch.empty(h.shape, dtype=torch.float32, device=h.device)
        n = h.numel()
        grid = (triton_cdiv(n, ELEMENTWISE_BLOCK),)
        bias_gelu_bwd[grid](grad.contiguous(), h, bias, dz, n, bias.numel(), TANH=ctx.tanh,
                                         BLOCK=ELEMENTWISE_BLOCK)
        dbias = dz.reshape(-1, bias.numel()).sum(0).to(bias.dtype)
        return dz.to(h.dtype), dbias, None


class _ResidualLayerNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, bias, residual, weight, beta, eps, p, training, seed):
        H = h.shape[-1]
        h2, r2 = h.reshape(-1, H).contiguous(), residual.reshape(-1, H).contiguous()
        rows = h2.shape[0]
        out = torch.empty(r2.shape, dtype=residual.dtype, device=h.device)
        y = torch.empty(r2.shape, dtype=torch.float32, device=h.device)
        stats = torch.empty(rows, 2, dtype=torch.float32, device=h.device)
        block = max(16, 1 << (H - 1).bit_length())
        ln_fwd[(rows,)](h2, bias, r2, weight, beta, out, y, stats, H, eps, p, seed,
                                     TRAINING=training, BLOCK=block)
        ctx.save_for_backward(y, stats, weight)
        ctx.meta = (p, seed, training, block, h.dtype, bias.dtype, beta.dtype)
        return out.view(residual.shape)

    @staticmethod
    def backward(ctx, grad):
        y, stats, weight = ctx.saved_tensors
        p, seed, training, block, h_dtype, bias_dtype, beta_dtype = ctx.meta
        rows, H = y.shape
        g = grad.reshape(rows, H).contiguous()
        dy, dz, xhat = (torch.empty_like(y) for _ in range(3))
        ln_bwd[(rows,)](g, y, stats, weight, dy, dz, xhat, H, p, seed, TRAINING=training, BLOCK=block)
        g32 = g.float()
        dweight = (g32 * xhat).sum(0).to(weight.dtype)
        dbeta = g32.sum(0).to(beta_dtype)
        shape = grad.shape
        return (dz.to(h_dtype).view(shape), dz.sum(0).to(bias_dtype), dy.to(grad.dtype).view(shape),
                dweight, dbeta, None, None, None, None)


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)


def bias_gelu(h: Tensor, bias: Tensor, approximate: str = "none") -> Tensor:
    """GELU(h + bias) by a Triton kernel (same contract as `fused.bias_gelu`)."""
    return _BiasGelu.apply(h, bias, approximate == "tanh")


def bias_dropout_residual_layer_norm(h: Tensor, bias: Tensor, residual: Tensor, weight: Tensor, ln_bias: Tensor,
                                     eps: float, p: float, training: bool) -> Tensor:
    """LayerNorm(dropout(h + bias) + residual) by one Triton kernel per row (same contract as in `fused`)."""
    training = bool(training and p > 0)
    seed = int(torch.randint(0, 2**31 - 1, (1,)).item()) if training else 0   # CPU generator: no GPU sync
    return _ResidualLayerNorm.apply(h, bias, residual, weight, ln_bias, float(eps), float(p), training, seed)

