"""Fused layer tails (bias+GELU, bias+dropout+residual+LayerNorm): same numbers as the plain
modules, forward and backward; the Triton kernels through Triton's CPU interpreter."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bertkit.common.errors import InputError, MissingDependency
from bertkit.modeling import BertForPreTraining
from bertkit.modeling.config import BertConfig
from bertkit.modeling.fused import bias_dropout_residual_layer_norm, use_fused_blocks
from bertkit.modeling.triton_ops import make_fused_ops, triton

HERE = Path(__file__).resolve().parent


def tiny(act="gelu", dropout=0.0, seed=0):
    torch.manual_seed(seed)
    return BertForPreTraining(BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                         intermediate_size=64, max_position_embeddings=32, hidden_act=act,
                                         hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout))


def batch(B=4, T=12):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 60, (B, T), generator=g)
    mask = (torch.arange(T)[None] < torch.tensor([12, 7, 3, 10])[:, None]).long()
    labels = ids.masked_fill(mask == 0, -100)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels,
            "next_sentence_label": torch.tensor([0, 1, 0, 1])}


def loss_and_grads(model):
    out = model(**batch())
    out.loss.backward()
    return out.loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("act", ["gelu", "gelu_new"])
@pytest.mark.parametrize("kind", ["eager", "compile"])
def test_fused_tails_match_the_plain_modules(kind, act):
    plain = loss_and_grads(tiny(act))
    model = tiny(act)
    assert use_fused_blocks(model, kind, backend="aot_eager") == 6     # 2 layers x (FFN input + 2 tails)
    fused = loss_and_grads(model)
    torch.testing.assert_close(plain[0], fused[0], rtol=0, atol=1e-5)
    for name, grad in plain[1].items():
        torch.testing.assert_close(grad, fused[1][name], rtol=1e-4, atol=1e-5, msg=name)
    use_fused_blocks(model, None)
    assert all(m.fused is None for m in model.modules() if hasattr(m, "fusable_tail"))


def test_relu_and_unknown_kinds():
    model = tiny("relu")
    assert use_fused_blocks(model, "eager") == 4                       # only the LayerNorm tails
    with pytest.raises(InputError):
        use_fused_blocks(model, "cuda-magic")
    if triton is None:
        with pytest.raises(MissingDependency, match="pip install"):
            make_fused_ops("triton")


def test_fused_dropout_drops_at_the_rate_and_only_in_training():
    bias, residual = torch.zeros(64), torch.randn(400, 64)
    weight, ln_bias = torch.ones(64), torch.zeros(64)
    h = torch.randn(400, 64, requires_grad=True)
    out = bias_dropout_residual_layer_norm(h, bias, residual, weight, ln_bias, 1e-12, 0.25, True)
    dropped = torch.autograd.grad(out, h, torch.randn_like(out))[0] == 0      # a dropped input gets no gradient
    assert 0.23 < float(dropped.float().mean()) < 0.27
    assert torch.equal(bias_dropout_residual_layer_norm(h, bias, residual, weight, ln_bias, 1e-12, 0.25, False),
                       bias_dropout_residual_layer_norm(h, bias, residual, weight, ln_bias, 1e-12, 0.0, True))


TRITON_CHECK = r"""
import torch
from bertkit.modeling import fused, triton_ops
torch.manual_seed(0)
worst = 0.0
for approx in ("none", "tanh"):
    h, b = torch.randn(6, 40, requires_grad=True), torch.randn(40, requires_grad=True)
    out, ref = triton_ops.bias_gelu(h, b, approx), fused.bias_gelu(h, b, approx)
    g = torch.randn_like(out)
    pairs = zip((out,) + torch.autograd.grad(out, (h, b), g), (ref,) + torch.autograd.grad(ref, (h, b), g))
    worst = max([worst] + [float((x - y).abs().max()) for x, y in pairs])
args = [torch.randn(10, 48, requires_grad=True), torch.randn(48, requires_grad=True),
        torch.randn(10, 48, requires_grad=True), torch.randn(48, requires_grad=True), torch.randn(48, requires_grad=True)]
out = triton_ops.bias_dropout_residual_layer_norm(*args, 1e-12, 0.1, False)
ref = fused.bias_dropout_residual_layer_norm(*args, 1e-12, 0.1, False)
g = torch.randn_like(out)
pairs = zip((out,) + torch.autograd.grad(out, args, g), (ref,) + torch.autograd.grad(ref, args, g))
worst = max([worst] + [float((x - y).abs().max()) for x, y in pairs])
# dropout: the backward re-draws the forward's mask (same seed): dropped inputs get no gradient,
# and perturbing a dropped input changes nothing
h = args[0]
torch.manual_seed(5)
out = triton_ops.bias_dropout_residual_layer_norm(h, *args[1:], 1e-12, 0.5, True)
dh = torch.autograd.grad(out, h, torch.randn_like(out))[0]
dropped = dh == 0
assert 0.35 < float(dropped.float().mean()) < 0.65, float(dropped.float().mean())
with torch.no_grad():
    h2 = h + dropped * 100.0
torch.manual_seed(5)
again = triton_ops.bias_dropout_residual_layer_norm(h2, *args[1:], 1e-12, 0.5, True)
assert torch.equal(out, again)
print("worst", worst)
assert worst < 1e-5
"""


@pytest.mark.skipif(triton is None, reason="triton is not installed (the kernels need it; CPU check via TRITON_INTERPRET)")
def test_triton_kernels_in_the_cpu_interpreter():
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", TRITON_CHECK], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
