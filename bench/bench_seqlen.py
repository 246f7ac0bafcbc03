"""How inference cost grows with sequence length — bertkit vs reference, with and without padding.

For T in 64…512 (fixed-length batches, no padding) and for real mixed-length
batches truncated at T, measures tokens/s of `BertModel` forward for both
implementations (interleaved), the model FLOPs utilization against this machine's
matmul peak, and draws bench/results/seqlen.png.

    python bench/bench_seqlen.py --model minilm --threads 2
    python bench/bench_seqlen.py --quick          # smoke run: T 64,128, 1024 tokens per batch, 1 repeat

Batch size and model size sweeps (and the FLOPs formula): bench/bench_scaling.py.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (interleaved, markdown_table, matmul_peak_gflops, pyplot, real_sentences,  # noqa: E402
                     set_threads)
from bench_inference import load_pair  # noqa: E402

from bench_scaling import forward_flops  # noqa: E402  (L·(24·H² + 4·T·H) per token; derived there)

RESULTS = Path(__file__).resolve().parent / "results"


def measure(ours, theirs, batch: dict, repeats: int) -> dict:
    with torch.inference_mode():
        times = interleaved({"bertkit": lambda: ours(**batch), "reference": lambda: theirs(**batch)},
                            warmup=1, repeats=repeats)
    return {k: v["median"] for k, v in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="minilm", help="minilm or base")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lengths", default="64,128,256,512")
    p.add_argument("--tokens-per-batch", type=int, default=4096)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="smoke run: T 64,128, 1024 tokens per batch, 1 repeat")
    args = p.parse_args()
    if args.quick:
        args.lengths, args.tokens_per_batch, args.repeats = "64,128", 1024, 1
    set_threads(args.threads)
    peak = matmul_peak_gflops()
    with tempfile.TemporaryDirectory() as tmp:
        ours, theirs, tok = load_pair(args.model, Path(tmp))
        rows, curves = [], {"fixed": {}, "mixed": {}}
        texts = real_sentences(2000)
        for seq in map(int, args.lengths.split(",")):
            bsz = max(1, args.tokens_per_batch // seq)
            ids = torch.randint(1000, ours.config.vocab_size, (bsz, seq), generator=torch.Generator().manual_seed(0))
            fixed = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
            mixed = dict(tok(texts[:bsz * 4:4], padding=True, truncation=True, max_length=seq, return_tensors="pt"))
            for kind, batch in (("fixed", fixed), ("mixed", mixed)):
                t = measure(ours, theirs, batch, args.repeats)
                real = int(batch["attention_mask"].sum())
                flops = forward_flops(ours.config, real, batch["input_ids"].shape[1])
                tps = {k: real / v for k, v in t.items()}
                curves[kind][seq] = tps
                rows.append([kind, seq, bsz, f"{1 - real / batch['attention_mask'].numel():.0%}",
                             f"{tps['bertkit']:,.0f}", f"{tps['reference']:,.0f}",
                             f"{tps['bertkit'] / tps['reference']:.2f}x",
                             f"{flops / t['bertkit'] / 1e9 / peak:.0%}", f"{flops / t['reference'] / 1e9 / peak:.0%}"])
    print(f"\n{args.model}, {args.threads} threads, fp32, matmul peak {peak:,.1f} GFLOP/s")
    print(markdown_table(["batch", "T", "B", "padding", "bertkit tok/s", "reference tok/s", "ratio",
                          "bertkit MFU", "reference MFU"], rows))
    if args.quick:
        print("(--quick: smoke run, bench/results/seqlen.png left as it was)")
    else:
        plot(curves, args)


def plot(curves: dict, args) -> None:
    plt = pyplot()
    if plt is None:
        return
    RESULTS.mkdir(exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for kind, style in (("fixed", "-"), ("mixed", "--")):
        lengths = sorted(curves[kind])
        for impl, marker in (("bertkit", "o"), ("reference", "s")):
            ax.plot(lengths, [curves[kind][t][impl] for t in lengths], style, marker=marker,
                    label=f"{impl}, {kind}-length")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("sequence length T (tokens)")
    ax.set_ylabel("real tokens / s")
    ax.set_title(f"{args.model} forward, {args.threads} CPU threads")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(RESULTS / "seqlen.png", dpi=100)
    print(f"plot: {RESULTS / 'seqlen.png'}")


if __name__ == "__main__":
    main()
