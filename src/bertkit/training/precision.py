"""Number formats and the optimizer of a training step: bf16 autocast, bf16 weights with fp32
masters, AdamW with BERT's weight-decay groups and learning-rate schedule.

bf16 autocast (`TrainingSettings.bf16`) runs matrix products in bfloat16 while the weights
stay fp32: every forward casts every weight matrix to bf16 again (on a GPU that cast is
a sizeable share of a BERT-Base step), and the backward casts the gradients back.

`Bf16Weights` (`TrainingSettings.bf16_weights`) keeps the *model's* weights in bf16 between
steps and fp32 "master" copies for the optimizer: the update is computed and accumulated
in fp32 (small updates are not lost to bf16's 8-bit mantissa), then rounded into the bf16
weights.  When every weight of the model is bf16 (`covers_model`), the forward runs in
bf16 without autocast ("pure bf16", `compute_context`): no cast kernels at all, which on a
GPU also means far fewer kernel launches per step.  LayerNorm, softmax and the losses
still accumulate in fp32 (inside their kernels; the heads cast logits to fp32), but
activations between layers are stored in bf16 -- so it is not the same arithmetic as
autocast, and it is a switch, off by default.
Checkpoints and the model left after training hold the fp32 masters.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Iterator

import torch
from torch import nn


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu"


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on `device` when enabled, else a no-op context."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if enabled else nullcontext()


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


def make_adamw(groups: list[dict], lr: float, betas, eps: float, device: torch.device,
               fused: bool | None = None) -> torch.optim.AdamW:
    """AdamW; fused (one kernel for all parameters) on CUDA unless `fused=False`.

    The fused and the default ("foreach") implementations compute the same update up to
    float rounding; the CPU keeps the default unless asked (`fused=True`).
    """
    use_fused = (device.type == "cuda") if fused is None else fused
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, **({"fused": True} if use_fused else {}))


class Bf16Weights:
    """bf16 weights in the model, fp32 master weights for the optimizer.

        weights = Bf16Weights(model)                      # the model's trainable weights become bf16
        optimizer = AdamW(weights.master_groups(groups))   # the optimizer updates the fp32 masters
        loss.backward(); weights.grads_to_masters(); clip(weights.masters); optimizer.step()
        weights.masters_to_weights()                       # round the new masters into the model
        with weights.full_precision(): model.save_pretrained(...)   # fp32 weights, for saving / eval

    Call it before wrapping the model in DistributedDataParallel (DDP must see the bf16
    parameters it will reduce).
    """

    def __init__(self, model: nn.Module):
        self.params = [p for p in model.parameters() if p.requires_grad and p.is_floating_point()]
        self.masters = [nn.Parameter(p.detach().clone().float()) for p in self.params]
        self._master_of = {id(p): m for p, m in zip(self.params, self.masters)}
        self._grads: list[torch.Tensor] | None = None      # fp32 gradient buffers, reused every step
        self.working = None
        with torch.no_grad():
            for p in self.params:
                p.data = p.data.to(torch.bfloat16)
        floating = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
        self.covers_model = all(t.dtype == torch.bfloat16 for t in floating)   # e.g. not with a frozen encoder

    def compute_context(self, device: torch.device):
        """The forward's context: none when the whole model is bf16 (pure bf16), else bf16 autocast."""
        return nullcontext() if self.covers_model else autocast(device, True)

    def master_groups(self, groups: list[dict]) -> list[dict]:
        """Optimizer parameter groups over the masters, in the same order as `groups`."""
        return [{**g, "params": [self._master_of[id(p)] for p in g["params"]]} for g in groups]

    @torch.no_grad()
    def grads_to_masters(self) -> None:
        """fp32 copies of the (bf16) gradients, as the masters' gradients (one multi-tensor copy)."""
        if self._grads is None:
            self._grads = [torch.empty_like(m) for m in self.masters]
        have = [k for k, p in enumerate(self.params) if p.grad is not None]
        torch._foreach_copy_([self._grads[k] for k in have], [self.params[k].grad for k in have])
        for k, m in enumerate(self.masters):
            m.grad = self._grads[k] if self.params[k].grad is not None else None

    @torch.no_grad()
    def masters_to_weights(self) -> None:
        """Round the masters into the model's bf16 weights (after each optimizer step)."""
        torch._foreach_copy_([p.data for p in self.params], [m.data for m in self.masters])

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @contextmanager
    def full_precision(self) -> Iterator[None]:
        """The model holds the fp32 masters inside the block (for saving, evaluating, loading).

        Loading a state dict inside the block loads the masters; the bf16 weights are
        re-rounded from them on the way out.
        """
        if self.working is not None:               # already inside (re-entrant)
            yield
            return
        self.working = [p.data for p in self.params]
        for p, m in zip(self.params, self.masters):
            p.data = m.data
        try:
            yield
        finally:
            for p, w in zip(self.params, self.working):
                p.data = w
            self.working = None
            self.masters_to_weights()

    def release(self) -> None:
        """End of training: the model keeps the fp32 masters for good (its weights are fp32 again)."""
        for p, m in zip(self.params, self.masters):
            p.data = m.data
