"""ONNX export: onnxruntime vs bertkit (eager) vs the reference (transformers, sdpa), MiniLM.

    python bench/bench_onnx.py               # full run (the figures to report)
    python bench/bench_onnx.py --quick       # smoke run: fewer repeats, smaller batches

Does the optional `[onnx]` extra pay?  The real all-MiniLM-L6-v2 weights are exported
once with `bertkit.modeling.onnx_export.export_onnx` (the padded graph, dynamic batch and
sequence axes) and run with onnxruntime's CPUExecutionProvider.
Workloads (inference, fp32, CPU; the same encodings for every contestant)
  fixed   B x T random token ids, no padding (default 32 x 128)
  mixed   real sentences (SST-2 + NSMC, shuffled) in batches of B padded to the longest
          (truncated at T) -- the padding a real service sees
  batch1  one real sentence of median length, alone: latency
For each thread count, onnxruntime (intra_op_num_threads = threads, no spinning), bertkit and the
reference (torch.set_num_threads(threads)) are timed interleaved (A B C A B C ...), so
that other load on the machine hits all alike; the median is reported.  Max diff = max
|x - reference| of the last hidden state at real-token positions, in the same run.
Note: the ONNX graph always computes the pad positions (a graph cannot gather a
data-dependent number of tokens); bertkit's eager encoder skips them.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved, markdown_table, ratio, set_threads  # noqa: E402
from bench_inference import add_workload_args, load_pair, make_workloads, max_real_diff, run_all  # noqa: E402


def run_onnx(runner, encodings) -> list[np.ndarray]:
    return [runner.run(enc)["last_hidden_state"] for enc in encodings]


def bench(args, workdir: Path) -> tuple[list[list], dict]:
    from bertkit.modeling.checkpoint import find_minilm
    from bertkit.modeling.onnx_export import OnnxBert, export_onnx
    ours, ref, tokenizer = load_pair("minilm", workdir)
    started = time.perf_counter()
    summary = export_onnx(find_minilm(), workdir / "minilm.onnx", opset=args.opset, exporter=args.exporter)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    # spin=False: onnxruntime's idle workers would otherwise busy-wait after each run and
    # steal the cores from the torch contestants timed right after it
    runners = {t: OnnxBert(workdir / "minilm.onnx", threads=t, spin=False) for t in args.threads}
    workloads = make_workloads(tokenizer, args.batch, args.seq, args.mixed_batches)
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for workload, encodings in workloads.items():
            arrays = [{k: v.numpy() for k, v in enc.items()} for enc in encodings]
            contestants = {"onnxruntime": lambda: run_onnx(runners[threads], arrays),
                           "bertkit": lambda: run_all(ours, encodings), "ref": lambda: run_all(ref, encodings)}
            with torch.inference_mode():
                expected = run_all(ref, encodings)
                diffs = {"onnxruntime": max_real_diff([torch.from_numpy(x) for x in run_onnx(runners[threads], arrays)],
                                                      expected, encodings),
                         "bertkit": max_real_diff(run_all(ours, encodings), expected, encodings), "ref": 0.0}
                repeats = args.repeats * (5 if workload == "batch1" else 1)
                times = interleaved(contestants, warmup=args.warmup, repeats=repeats)
            for who in contestants:
                rows.append(row(workload, who, threads, encodings, times[who]["median"], times["ref"]["median"],
                                diffs[who]))
                print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    return rows, summary


def row(workload, who, threads, encodings, seconds, ref_seconds, diff) -> list:
    sentences = sum(enc["input_ids"].shape[0] for enc in encodings)
    tokens = sum(int(enc["attention_mask"].sum()) for enc in encodings)
    padded = sum(enc["input_ids"].numel() for enc in encodings)
    if workload == "mixed":
        longest = max(e["input_ids"].shape[1] for e in encodings)
        shape = f"{len(encodings)}x[{encodings[0]['input_ids'].shape[0]},<={longest}]"
    else:
        shape = "x".join(map(str, encodings[0]["input_ids"].shape))
    return [workload, shape, f"{1 - tokens / padded:.0%}", threads, who, 1000 * seconds / len(encodings),
            sentences / seconds, ratio(1 / seconds, 1 / ref_seconds), f"{diff:.1e}"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_workload_args(p)
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--exporter", choices=["torchscript", "dynamo"], default="torchscript")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.batch, args.seq, args.mixed_batches = 2, 8, 64, 2
    args.threads = [int(t) for t in args.threads.split(",")]
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        import onnxruntime
    except ImportError:
        sys.exit("bench_onnx needs the optional extra: pip install 'bertkit[onnx]'")
    import transformers
    set_threads(args.threads[0])
    with tempfile.TemporaryDirectory() as tmp:
        print("benchmarking minilm: onnxruntime vs bertkit vs reference ...", file=sys.stderr, flush=True)
        rows, summary = bench(args, Path(tmp))
    print(f"\n## MiniLM inference: onnxruntime {onnxruntime.__version__} vs bertkit vs transformers "
          f"{transformers.__version__} (sdpa), torch {torch.__version__}\n")
    print(f"export: {summary['exporter']} exporter, opset {summary['opset']}, {summary['megabytes']} MB, "
          f"{summary['seconds']} s\n")
    headers = ["workload", "shape", "padding", "threads", "engine", "ms/batch", "sent/s", "speed-up vs ref",
               "max diff vs ref"]
    print(markdown_table(headers, rows))
    print("\nspeed-up = throughput / reference throughput (same workload, same threads); max diff = max "
          "|x - reference| of the last hidden state at real tokens.")


if __name__ == "__main__":
    main()
