"""ONNX Runtime side by side, MiniLM on the CPU: bertkit torch vs bertkit onnx vs plain ORT vs the reference.

    python bench/bench_onnx.py               # full run (the figures to report; a quiet machine)
    python bench/bench_onnx.py --quick       # smoke run: fewer repeats, smaller batches

Contestants (the real all-MiniLM-L6-v2 weights, inference, fp32, CPU, the same encodings):
  bertkit torch  bertkit's eager BertModel (unpadded: pad positions are skipped)
  bertkit onnx   what `pipeline(..., backend="onnx")` runs: the file built by
                 bertkit.modeling.onnx_runtime (export + onnxruntime's BERT fusions), each
                 batch cut to its longest sequence, rows sorted by length before batching and
                 put back in input order (Pipeline.length_batches does this by characters)
  plain ORT      as a user sets it up: the file `bertkit export-onnx` writes, a default
                 onnxruntime.InferenceSession, padded batches in input order
  ref            transformers' BertModel (sdpa attention)
Workloads
  fixed   B x T random token ids, no padding (default 32 x 128)
  mixed   real sentences (bench_inference.real_sentences: SST-2 + NSMC, shuffled, not sorted) in
          batches of B padded to the longest (truncated at T) -- the padding a real service sees
  batch1  one real sentence of median length, alone: latency
Both ORT sessions get intra_op_num_threads = threads and no spinning (idle workers would
otherwise busy-wait and steal the cores of the contestant timed next); torch gets
torch.set_num_threads(threads).  Contestants are timed interleaved (A B C D A B C D ...);
the median is reported.  Max diff = max |x - reference| of the last hidden state at real
tokens, in the same run; the script exits with status 1 if any exceeds 1e-4.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved, markdown_table, ratio, set_threads  # noqa: E402
from bench_inference import add_workload_args, load_pair, make_workloads, run_all  # noqa: E402

TOLERANCE = 1e-4
CONTESTANTS = ("bertkit torch", "bertkit onnx", "plain ORT", "ref")


def rows_of(encodings) -> list[dict]:
    """Every sequence of the workload, in input order, cut to its real tokens: {name: [t]}."""
    out = []
    for enc in encodings:
        lengths = enc["attention_mask"].sum(1).tolist()
        out += [{k: v[i, :n].numpy() for k, v in enc.items()} for i, n in enumerate(lengths)]
    return out


def run_bucketed(model, rows: list[dict], batch: int) -> list[np.ndarray]:
    """bertkit onnx: longest first in batches of `batch`, padded to each batch's longest, order restored."""
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]["input_ids"]))
    out: list = [None] * len(rows)
    for start in range(0, len(order), batch):
        chosen = order[start:start + batch]
        T = len(rows[chosen[0]]["input_ids"])
        padded = {k: np.zeros((len(chosen), T), np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
        for j, i in enumerate(chosen):
            for k in padded:
                padded[k][j, :len(rows[i][k])] = rows[i][k]
        hidden = model.runner.run(padded)["last_hidden_state"]                   # [b, T, H]
        for j, i in enumerate(chosen):
            out[i] = hidden[j, :len(rows[i]["input_ids"])]
    return out


def run_plain(session, arrays: list[dict]) -> list[np.ndarray]:
    return [session.run(["last_hidden_state"], enc)[0] for enc in arrays]


def per_row(outputs, encodings) -> list[np.ndarray]:
    """[B, T, H] outputs per batch -> one [t, H] array per sequence (real tokens), input order."""
    rows = []
    for out, enc in zip(outputs, encodings):
        out = out.numpy() if torch.is_tensor(out) else out
        rows += [out[i, :n] for i, n in enumerate(enc["attention_mask"].sum(1).tolist())]
    return rows


def sessions(workdir: Path, threads: int):
    """(bertkit onnx model, plain onnxruntime session), both with `threads` and no spinning."""
    import onnxruntime as ort
    from bertkit.modeling.onnx_export import OnnxBert, export_onnx
    from bertkit.modeling.pretrained import open_checkpoint
    from bertkit.modeling.onnx_runtime import onnx_model
    from bertkit.modeling import BertModel
    os.environ["BERTKIT_CACHE"] = str(workdir / "cache")
    ours = onnx_model(open_checkpoint("minilm"), BertModel)
    ours.runner = OnnxBert(ours.path, threads=threads, spin=False)
    plain_file = workdir / "plain.onnx"
    if not plain_file.exists():
        export_onnx(open_checkpoint("minilm").directory, plain_file)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ours, ort.InferenceSession(str(plain_file), options, providers=["CPUExecutionProvider"])


def bench(args, workdir: Path) -> tuple[list[list], float]:
    torch_model, ref, tokenizer = load_pair("minilm", workdir)
    workloads = make_workloads(tokenizer, args.batch, args.seq, args.mixed_batches)
    table, worst = [], 0.0
    for threads in args.threads:
        torch.set_num_threads(threads)
        ours, plain = sessions(workdir, threads)
        for workload in ("fixed", "mixed", "batch1"):
            encodings = workloads[workload]
            arrays = [{k: v.numpy() for k, v in enc.items()} for enc in encodings]
            rows = rows_of(encodings)
            run = {"bertkit torch": lambda: run_all(torch_model, encodings),
                   "bertkit onnx": lambda: run_bucketed(ours, rows, args.batch),
                   "plain ORT": lambda: run_plain(plain, arrays), "ref": lambda: run_all(ref, encodings)}
            with torch.inference_mode():
                expected = per_row(run_all(ref, encodings), encodings)
                outs = {"bertkit torch": per_row(run["bertkit torch"](), encodings),
                        "bertkit onnx": run["bertkit onnx"](), "plain ORT": per_row(run["plain ORT"](), encodings)}
                diffs = {who: max(float(np.abs(a - b).max()) for a, b in zip(out, expected)) for who, out in outs.items()}
                diffs["ref"] = 0.0
                times = interleaved(run, warmup=args.warmup, repeats=args.repeats * (5 if workload == "batch1" else 1))
            worst = max(worst, *diffs.values())
            for who in CONTESTANTS:
                table.append(row(workload, who, threads, encodings, times, diffs[who]))
                print(f"  {table[-1]}", file=sys.stderr, flush=True)
    return table, worst


def row(workload, who, threads, encodings, times, diff) -> list:
    seconds = times[who]["median"]
    sentences = sum(enc["input_ids"].shape[0] for enc in encodings)
    tokens = sum(int(enc["attention_mask"].sum()) for enc in encodings)
    padded = sum(enc["input_ids"].numel() for enc in encodings)
    if workload == "mixed":
        longest = max(e["input_ids"].shape[1] for e in encodings)
        shape = f"{len(encodings)}x[{encodings[0]['input_ids'].shape[0]},<={longest}]"
    else:
        shape = "x".join(map(str, encodings[0]["input_ids"].shape))
    return [workload, shape, f"{1 - tokens / padded:.0%}", threads, who, 1000 * seconds / len(encodings),
            sentences / seconds, ratio(times["ref"]["median"], seconds), ratio(times["plain ORT"]["median"], seconds),
            f"{diff:.1e}"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_workload_args(p)
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
        print("benchmarking minilm: bertkit torch / bertkit onnx / plain ORT / reference ...", file=sys.stderr,
              flush=True)
        started = time.perf_counter()
        table, worst = bench(args, Path(tmp))
    print(f"\n## MiniLM inference on the CPU: bertkit (torch {torch.__version__}; onnxruntime "
          f"{onnxruntime.__version__}) vs plain ORT vs transformers {transformers.__version__} (sdpa)\n")
    headers = ["workload", "shape", "padding", "threads", "engine", "ms/batch", "sent/s", "speed-up vs ref",
               "vs plain ORT", "max diff vs ref"]
    print(markdown_table(headers, table))
    print(f"\nspeed-up = throughput / reference throughput, vs plain ORT = throughput / plain ORT's (same workload, "
          f"same threads); max diff = max |x - reference| of the last hidden state at real tokens "
          f"({time.perf_counter() - started:.0f} s).")
    if worst > TOLERANCE:
        sys.exit(f"outputs differ from the reference by {worst:.1e} > {TOLERANCE:.0e}")


if __name__ == "__main__":
    main()
