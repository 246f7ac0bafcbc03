"""How inference cost scales — with sequence length, batch size and model size — bertkit vs reference.

Three sweeps of `BertModel` forward (inference mode, eval, fp32, CPU, fixed-length
batches of random token ids, no padding), each point timed with bertkit and the
reference (transformers, attn_implementation="sdpa") interleaved, on the same weights:

  seqlen  T = 64, 128, 256, 512 at B = 8            (--model: minilm or a preset name)
  batch   B = 1, 4, 16, 64 at T = 128                (same model)
  model   tiny, mini, small, medium, base at B = 8, T = 128
          (BertConfig.preset sizes, random init, saved once and loaded by both)

For every point: real tokens/s of both and their ratio (> 1 means bertkit is faster),
the model FLOPs per token (see `flops_per_token`), the share of those FLOPs spent in
attention scores (grows with T), achieved GFLOP/s and MFU (model FLOPs utilization:
achieved / this machine's fp32 matmul peak, `_common.matmul_peak_gflops`).

    python bench/bench_scaling.py                       # all three sweeps, ~10 min on 2 cores
    python bench/bench_scaling.py --quick --out none    # smoke run: fewer points, 1-2 repeats
    python bench/bench_scaling.py --sweeps model --sizes tiny,base

Writes (unless --out none) DIR/scaling.md with the three tables and DIR/scaling_seqlen.png,
scaling_batch.png, scaling_model.png (DIR defaults to bench/results).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fail_if_different, interleaved, markdown_table, matmul_peak_gflops, pyplot, set_threads  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
#: max |bertkit - reference| of the last hidden state allowed at every point: the outputs are identical
TOLERANCE = 0.0
SWEEPS = ("seqlen", "batch", "model")
HEADERS = ["model", "B", "T", "matmul params (M)", "MFLOP/token", "attn share", "bertkit tok/s",
           "reference tok/s", "ratio", "bertkit GFLOP/s", "reference GFLOP/s", "bertkit MFU",
           "reference MFU", "max diff"]


# ----------------------------------------------------------------------------- FLOPs model
def matmul_params(config) -> int:
    """Weights of the encoder's matrix multiplies: L · (4·H² + 2·H·F).

    Per layer: query, key, value and attention-output projections (4 matrices H×H) and the
    feed-forward pair (H×F up, F×H down).  Biases, LayerNorm and embeddings are left out:
    biases and LayerNorm are O(H) per token, embeddings are table lookups (no multiplies).
    """
    h, f = config.hidden_size, config.intermediate_size
    return config.num_hidden_layers * (4 * h * h + 2 * h * f)


def flops_per_token(config, seq_len: int) -> dict[str, float]:
    """Forward FLOPs per token of the encoder, split into projections and attention.

    One multiply-add = 2 FLOPs, so an [M, K] @ [K, N] matmul costs 2·M·K·N.

    Projections (per token, per layer) — the token's row goes through every weight matrix once:
        Q, K, V        3 × 2·H·H = 6·H²
        attn output        2·H·H = 2·H²
        FFN up/down    2·H·F + 2·F·H = 4·H·F   (= 16·H² for BERT's F = 4H)
        total          2 · (4·H² + 2·H·F) = 2 · (matmul params per layer)  = 24·H²
    Attention (per token, per layer), with A heads of D = H/A dims and T tokens per sequence:
        scores  q·kᵀ against all T keys:      A · 2·T·D = 2·T·H
        weighted sum of the T value rows:     A · 2·T·D = 2·T·H
        total                                 4·T·H
    So per token: L · (24·H² + 4·T·H), and per sequence T times that: the projections grow
    as T·H² (linear in T) and the attention as T²·H (quadratic in T).  The attention share
    is 4·T·H / (24·H² + 4·T·H) = T / (6·H + T): for H = 384 it is 5 % at T = 128, 18 % at 512.

    Left out (small, and not matmuls): softmax, GELU, LayerNorm, biases, the pooler
    (2·H² per *sequence*, i.e. 2·H²/T per token, < 0.1 % here).
    """
    h, layers = config.hidden_size, config.num_hidden_layers
    projections = 2.0 * matmul_params(config)
    attention = layers * 4.0 * seq_len * h
    return {"projections": projections, "attention": attention, "total": projections + attention}


def forward_flops(config, tokens: int, seq_len: int) -> float:
    """Forward FLOPs of the encoder for `tokens` real tokens in sequences of length seq_len."""
    return tokens * flops_per_token(config, seq_len)["total"]


def attention_share(config, seq_len: int) -> float:
    """Fraction of the forward FLOPs spent in attention scores + weighted sum: T / (6H + T)."""
    f = flops_per_token(config, seq_len)
    return f["attention"] / f["total"]


# ----------------------------------------------------------------------------- models and batches
def load_pair(name: str, workdir: Path):
    """(bertkit model, reference model) with identical weights, eval mode.

    "minilm" loads the real all-MiniLM-L6-v2; any BertConfig.preset name is initialised
    randomly (seed 0), saved once under workdir and loaded by both implementations.
    """
    import transformers
    from bertkit.modeling.checkpoint import find_minilm
    from bertkit.modeling.config import BertConfig
    from bertkit.modeling import BertModel
    if name == "minilm":
        path = find_minilm()
    else:
        path = workdir / name
        if not path.exists():
            torch.manual_seed(0)
            BertModel(BertConfig.preset(name)).save_pretrained(path)
    ours = BertModel.from_pretrained(path).eval()
    ref = transformers.BertModel.from_pretrained(path, attn_implementation="sdpa").eval()
    return ours, ref


def fixed_batch(config, batch: int, seq_len: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """B × T random token ids, every position real (no padding)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, config.vocab_size, (batch, seq_len), generator=g)   # [B, T]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}


def capped_batch(config, batch: int, seq_len: int, max_gflop: float) -> int:
    """B, lowered (to at least 1) so that one forward call stays under max_gflop GFLOP.

    Keeps the expensive corners (Base at T = 512) from eating the time budget; tokens/s
    is measured per real token, so a smaller B at long T changes little once B·T is large.
    """
    per_sequence = forward_flops(config, seq_len, seq_len) / 1e9
    return max(1, min(batch, int(max_gflop // per_sequence)))


# ----------------------------------------------------------------------------- timing
def time_pair(ours, ref, batch: dict, args) -> tuple[dict[str, float], float]:
    """Median seconds per call of each implementation, and max |difference| of their outputs.

    First one warm-up call each, not counted in the result: it gives the outputs to compare
    and an estimate of the call time.  Then as many interleaved rounds (bertkit, reference)
    as fit in args.seconds, at least args.min_repeats and at most args.max_repeats.
    """
    with torch.inference_mode():
        t0 = time.perf_counter()
        a = ours(**batch).last_hidden_state
        b = ref(**batch).last_hidden_state
        one_round = time.perf_counter() - t0
        diff = (a - b).abs().max().item()
        repeats = int(min(args.max_repeats, max(args.min_repeats, args.seconds // max(one_round, 1e-6))))
        times = interleaved({"bertkit": lambda: ours(**batch), "reference": lambda: ref(**batch)},
                            warmup=0, repeats=repeats)
    return {k: v["median"] for k, v in times.items()}, diff


def measure_point(name: str, ours, ref, batch_size: int, seq_len: int, args) -> dict:
    """Time one (model, B, T) point; tokens/s and GFLOP/s of both (MFU is computed at the end)."""
    config = ours.config
    batch_size = capped_batch(config, batch_size, seq_len, args.max_gflop)
    batch = fixed_batch(config, batch_size, seq_len)
    seconds, diff = time_pair(ours, ref, batch, args)
    tokens = batch_size * seq_len
    flops = forward_flops(config, tokens, seq_len)
    point = {"model": name, "B": batch_size, "T": seq_len, "params": matmul_params(config),
             "flops_per_token": flops / tokens, "attn_share": attention_share(config, seq_len), "diff": diff}
    for impl, s in seconds.items():
        point[f"{impl}_tps"] = tokens / s
        point[f"{impl}_gflops"] = flops / s / 1e9
    print(f"  {name} B={batch_size} T={seq_len}: {point['bertkit_tps']:,.0f} vs {point['reference_tps']:,.0f} tok/s",
          file=sys.stderr, flush=True)
    return point


def table_row(p: dict, peak: float) -> list:
    """One table line; MFU = achieved GFLOP/s / peak."""
    ours, ref = p["bertkit_gflops"], p["reference_gflops"]
    return [p["model"], p["B"], p["T"], p["params"] / 1e6, p["flops_per_token"] / 1e6, f"{p['attn_share']:.1%}",
            f"{p['bertkit_tps']:,.0f}", f"{p['reference_tps']:,.0f}", f"{p['bertkit_tps'] / p['reference_tps']:.2f}x",
            ours, ref, f"{ours / peak:.0%}", f"{ref / peak:.0%}", f"{p['diff']:.1e}"]


# ----------------------------------------------------------------------------- sweeps
def run_sweeps(args, workdir: Path) -> dict[str, list[dict]]:
    """{sweep: [point, ...]} for the sweeps in args.sweeps; models are loaded one at a time."""
    results: dict[str, list[dict]] = {}
    if "seqlen" in args.sweeps or "batch" in args.sweeps:
        ours, ref = load_pair(args.model, workdir)
        if "seqlen" in args.sweeps:
            print(f"sweep seqlen ({args.model}, B={args.batch})", file=sys.stderr)
            results["seqlen"] = [measure_point(args.model, ours, ref, args.batch, t, args) for t in args.lengths]
        if "batch" in args.sweeps:
            print(f"sweep batch ({args.model}, T={args.seq})", file=sys.stderr)
            results["batch"] = [measure_point(args.model, ours, ref, b, args.seq, args) for b in args.batches]
        del ours, ref
    if "model" in args.sweeps:
        print(f"sweep model (B={args.batch}, T={args.seq})", file=sys.stderr)
        results["model"] = []
        for name in args.sizes:
            ours, ref = load_pair(name, workdir)
            results["model"].append(measure_point(name, ours, ref, args.batch, args.seq, args))
            del ours, ref
    return results


TITLES = {"seqlen": "Sequence length (fixed B, no padding)", "batch": "Batch size (fixed T)",
          "model": "Model size (fixed B and T)"}


def report(results: dict, args, peak: float) -> str:
    """The markdown for all sweeps: a header line with the settings, then one table per sweep."""
    import transformers
    lines = [f"# bertkit scaling: BertModel forward, fp32, CPU, {args.threads} thread(s)",
             "", f"torch {torch.__version__}, transformers {transformers.__version__} (sdpa); "
             f"fp32 matmul peak {peak:,.1f} GFLOP/s ({args.threads} thread(s)).  Fixed-length batches "
             "(no padding); tok/s = tokens per second; ratio = bertkit / reference (> 1: bertkit faster); "
             "MFLOP/token = forward FLOPs per token, L·(24·H² + 4·T·H); attn share = T/(6H+T); "
             "MFU = achieved GFLOP/s / matmul peak; max diff = max |bertkit - reference| of the last hidden state."]
    for sweep, points in results.items():
        lines += ["", f"## {TITLES[sweep]}", "", markdown_table(HEADERS, [table_row(p, peak) for p in points])]
    return "\n".join(lines) + "\n"


def plot(results: dict, args, out: Path, peak: float) -> list[Path]:
    """One PNG per sweep: tokens/s (left) and MFU (right) of both implementations."""
    plt = pyplot()
    if plt is None:
        return []
    axes_spec = {"seqlen": ("T", "sequence length T (tokens)", 2), "batch": ("B", "batch size B", 2),
                 "model": ("params", "matmul parameters (millions)", 10)}
    written = []
    for sweep, points in results.items():
        key, xlabel, base = axes_spec[sweep]
        xs = [p[key] / 1e6 if sweep == "model" else p[key] for p in points]
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        for impl, marker in (("bertkit", "o"), ("reference", "s")):
            left.plot(xs, [p[f"{impl}_tps"] for p in points], marker=marker, label=impl)
            right.plot(xs, [100 * p[f"{impl}_gflops"] / peak for p in points], marker=marker, label=impl)
        for ax in (left, right):
            ax.set_xscale("log", base=base)
            if sweep != "model":                          # label the measured T or B themselves
                ax.set_xticks(xs, [str(x) for x in xs])
                ax.xaxis.set_minor_formatter(plt.NullFormatter())
            ax.set_xlabel(xlabel)
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=8)
        mfu_top = max(100 * p[f"{impl}_gflops"] / peak for p in points for impl in ("bertkit", "reference"))
        right.set_ylim(0, 1.1 * mfu_top)
        if sweep != "model":
            left.set_ylim(bottom=0)                       # so that a fall in tokens/s is seen at its true size
        else:
            left.set_yscale("log")
            for x, p in zip(xs, points):
                left.annotate(p["model"], (x, p["bertkit_tps"]), fontsize=8,
                              textcoords="offset points", xytext=(4, 4))
        left.set_ylabel("tokens / s")
        right.set_ylabel("MFU (% of matmul peak)")
        fixed = {"seqlen": f"{args.model}, B={args.batch}", "batch": f"{args.model}, T={args.seq}",
                 "model": f"B={args.batch}, T={args.seq}"}[sweep]
        fig.suptitle(f"{TITLES[sweep]}: {fixed}, fp32, {args.threads} CPU thread(s)")
        fig.tight_layout()
        path = out / f"scaling_{sweep}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


# ----------------------------------------------------------------------------- command line
def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sweeps", default="seqlen,batch,model", help="comma list of seqlen, batch, model")
    p.add_argument("--model", default="minilm", help="model of the seqlen and batch sweeps: minilm or a preset name")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lengths", type=ints, default=[64, 128, 256, 512], help="T of the seqlen sweep")
    p.add_argument("--batches", type=ints, default=[1, 4, 16, 64], help="B of the batch sweep")
    p.add_argument("--sizes", default="tiny,mini,small,medium,base", help="presets of the model sweep")
    p.add_argument("--batch", type=int, default=8, help="B of the seqlen and model sweeps")
    p.add_argument("--seq", type=int, default=128, help="T of the batch and model sweeps")
    p.add_argument("--seconds", type=float, default=15.0, help="timing budget per point (both implementations)")
    p.add_argument("--min-repeats", type=int, default=3)
    p.add_argument("--max-repeats", type=int, default=30)
    p.add_argument("--max-gflop", type=float, default=200.0,
                   help="lower B where one forward call would exceed this many GFLOP (Base at T=512)")
    p.add_argument("--out", default=str(RESULTS), help="folder for scaling.md and the PNGs; 'none' to only print")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: T 64,128; B 1,4; tiny,mini; 1-2 repeats, 1 s per point")
    args = p.parse_args(argv)
    if args.quick:
        args.lengths, args.batches = args.lengths[:2], args.batches[:2]
        args.sizes = ",".join(args.sizes.split(",")[:2])
        args.seconds, args.min_repeats, args.max_repeats = 1.0, 1, 2
    args.sweeps = [s for s in args.sweeps.split(",") if s]
    unknown = set(args.sweeps) - set(SWEEPS)
    if unknown:
        p.error(f"unknown sweep(s) {sorted(unknown)}; choose from {', '.join(SWEEPS)}")
    args.sizes = [s for s in args.sizes.split(",") if s]
    return args


def main(argv=None) -> dict[str, list[dict]]:
    args = parse_args(argv)
    set_threads(args.threads)
    peak_before = matmul_peak_gflops(repeats=20)
    with tempfile.TemporaryDirectory() as tmp:
        results = run_sweeps(args, Path(tmp))
    peak_after = matmul_peak_gflops(repeats=20)
    peak = max(peak_before, peak_after)          # the best the machine showed: the MFU ceiling
    if peak > 1.25 * min(peak_before, peak_after):
        print(f"warning: the matmul peak moved from {peak_before:,.1f} to {peak_after:,.1f} GFLOP/s during "
              "the run (machine busy?); MFU figures use the higher", file=sys.stderr)
    text = report(results, args, peak)
    print("\n" + text)
    fail_if_different((f"{p['model']} B={p['B']} T={p['T']}", p["diff"], TOLERANCE)
                      for points in results.values() for p in points)
    if args.out.lower() != "none":
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "scaling.md").write_text(text, encoding="utf-8")
        for path in [out / "scaling.md", *plot(results, args, out, peak)]:
            print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
