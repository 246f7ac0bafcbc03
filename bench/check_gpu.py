"""Correctness on a real GPU, before the timings of bench_gpu.py mean anything (< 1 minute).

    python bench/check_gpu.py            # prints one line per check and exits 1 if one fails

1. the Triton kernels of the fused tails vs the same arithmetic in torch, forward and
   backward, at BERT-Base widths, fp32 and bf16 inputs (relative error);
2. bertkit's BERT-Base forward vs the reference's, fp32, padded batch (max abs diff);
3. the training step with every GPU switch (bf16 weights + fp32 masters, host MLM positions,
   unpadding plan, fused tails by torch.compile and by Triton) vs the plain bf16 step, dropout 0:
   the losses of 4 steps from the same init (relative difference, bf16 rounding allowed).
"""
from __future__ import annotations

import copy
import sys
import tempfile
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
try:
    import bertkit  # noqa: F401
except ImportError:                                   # a bare checkout: use its src/
    sys.path.insert(0, str(HERE.parent / "src"))

import torch  # noqa: E402

from bench_gpu import Contestant, make_batches, profile, shared_ops  # noqa: E402
from bertkit.modeling import BertForPreTraining, BertModel, fused, triton_ops  # noqa: E402
from bertkit.modeling.config import BertConfig  # noqa: E402

FAILED = []


def report(name: str, value: float, limit: float) -> None:
    ok = value <= limit
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {value:.3g} (limit {limit:g})", flush=True)
    if not ok:
        FAILED.append(name)


def rel(x: torch.Tensor, y: torch.Tensor) -> float:
    return float((x.float() - y.float()).norm() / y.float().norm().clamp_min(1e-30))


def check_triton(device) -> None:
    for dtype, limit in ((torch.float32, 1e-5), (torch.bfloat16, 1e-2)):
        for approx in ("none", "tanh"):
            h = torch.randn(4096, 3072, device=device, dtype=dtype, requires_grad=True)
            b = torch.randn(3072, device=device, requires_grad=True)
            out, ref = triton_ops.bias_gelu(h, b, approx), fused.bias_gelu(h, b, approx)
            g = torch.randn_like(out)
            worst = max(rel(x, y) for x, y in zip((out,) + torch.autograd.grad(out, (h, b), g),
                                                   (ref,) + torch.autograd.grad(ref, (h, b), g)))
            report(f"triton bias+GELU ({approx}) {dtype}", worst, limit)
        args = [torch.randn(4096, 768, device=device, dtype=dtype, requires_grad=True),
                torch.randn(768, device=device, requires_grad=True),
                torch.randn(4096, 768, device=device, requires_grad=True),
                torch.randn(768, device=device, requires_grad=True), torch.randn(768, device=device, requires_grad=True)]
        out = triton_ops.bias_dropout_residual_layer_norm(*args, 1e-12, 0.1, False)
        ref = fused.bias_dropout_residual_layer_norm(*args, 1e-12, 0.1, False)
        g = torch.randn_like(out)
        worst = max(rel(x, y) for x, y in zip((out,) + torch.autograd.grad(out, args, g),
                                               (ref,) + torch.autograd.grad(ref, args, g)))
        report(f"triton bias+dropout+residual+LayerNorm {dtype}", worst, limit)
        torch.manual_seed(1)
        out = triton_ops.bias_dropout_residual_layer_norm(*args, 1e-12, 0.1, True)
        dh = torch.autograd.grad(out, args[0], torch.randn_like(out))[0]
        report("triton dropout rate off 0.1", abs(float((dh == 0).float().mean()) - 0.1), 0.01)


def check_parity(device) -> None:
    from transformers import BertModel as Reference
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    ours = BertModel(BertConfig.preset("base", vocab_size=30522)).to(device).eval()
    with tempfile.TemporaryDirectory() as tmp:
        ours.save_pretrained(tmp)
        theirs = Reference.from_pretrained(tmp, attn_implementation="sdpa").to(device).eval()
    b = make_batches(1, 16, 128, 0.65, 30522, seed=3)[0]
    with torch.no_grad():
        x = ours(b["input_ids"].to(device), b["attention_mask"].to(device), b["token_type_ids"].to(device))
        y = theirs(input_ids=b["input_ids"].to(device), attention_mask=b["attention_mask"].to(device),
                   token_type_ids=b["token_type_ids"].to(device))
    real = b["attention_mask"].to(device).bool()
    report("BERT-Base fp32 forward vs reference (real tokens, max abs diff)",
           float((x.last_hidden_state - y.last_hidden_state)[real].abs().max()), 1e-4)


def check_switches(device) -> None:
    prof = profile(False)
    torch.manual_seed(0)
    config = BertConfig.preset("base", vocab_size=30522, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                               num_hidden_layers=4)
    model = BertForPreTraining(config)
    batches = make_batches(4, 32, 128, 0.65, 30522, seed=4)
    variants = {"plain": {}, "all switches, compiled tails": dict(plan=1, bf16_weights=True, masked=True,
                                                                   fused=shared_ops("compile", prof))}
    variants["all switches, triton tails"] = dict(variants["all switches, compiled tails"],
                                                  fused=shared_ops("triton", prof))
    losses = {}
    for name, opts in variants.items():
        c = Contestant(name, copy.deepcopy(model), device, **opts)
        losses[name] = [float(c.step(c.prepare(b))) for b in batches]
        print(f"     {name}: losses {[round(x, 4) for x in losses[name]]}", flush=True)
    for name in list(variants)[1:]:
        report(f"step losses, {name} vs plain (max relative)",
               max(abs(a - b) / abs(b) for a, b in zip(losses[name], losses["plain"])), 2e-2)


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check (the CPU tests cover the same paths)")
        return 0
    device = torch.device("cuda")
    print(f"check_gpu on {torch.cuda.get_device_name(device)}, torch {torch.__version__}", flush=True)
    for check in (check_triton, check_parity, check_switches):
        try:
            check(device)
        except Exception as exc:                      # noqa: BLE001 - one broken check must not hide the others
            traceback.print_exc()
            report(f"{check.__name__} raised {type(exc).__name__}", 1.0, 0.0)
    print("check_gpu:", "FAILED " + ", ".join(FAILED) if FAILED else "all passed", flush=True)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
