"""Shared helpers for the benchmarks in bench/: threads, timing, memory, tables, data.

Every benchmark compares bertkit with the reference implementation (Hugging Face
transformers) on the same inputs and prints a markdown table with ratios.
"""
from __future__ import annotations

import gc
import os
import random
import resource
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Sequence

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BERTKIT_DATA", REPO.parent / "shared" / "data"))


def set_threads(n: int) -> None:
    """Use n intra-op threads (and 1 inter-op thread) for torch."""
    import torch
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # can only be set once per process, before any parallel work


@contextmanager
def threads(n: int):
    """Temporarily run torch with n threads."""
    import torch
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def timeit(fn: Callable[[], object], warmup: int = 1, repeats: int = 5, min_time: float = 0.0) -> dict:
    """Run fn `warmup` times untimed, then at least `repeats` times (and at least min_time seconds).

    Returns seconds per call: {"median", "min", "mean", "n"}.  The median is the figure to report;
    min shows what the machine can do when no other process interferes.
    """
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_time:
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median": statistics.median(times), "min": min(times), "mean": statistics.fmean(times), "n": len(times)}


def interleaved(fns: dict[str, Callable[[], object]], warmup: int = 1, repeats: int = 5) -> dict[str, dict]:
    """Time several functions in alternation (A B A B ...), so that load from other processes
    on a shared machine hits every contestant alike.  Returns {name: timeit-style dict}."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            gc.collect()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: {"median": statistics.median(t), "min": min(t), "mean": statistics.fmean(t), "n": len(t)}
            for name, t in times.items()}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB.

    On Linux this reads VmHWM from /proc/self/status: getrusage's ru_maxrss survives
    exec, so a fresh subprocess would report its parent's peak.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-markdown table; floats get 3 significant decimals."""
    def fmt(x: object) -> str:
        if isinstance(x, float):
            return f"{x:,.3f}" if abs(x) < 100 else f"{x:,.1f}"
        return str(x)
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def ratio(ours: float, theirs: float) -> str:
    """'1.23x' — how many times faster (throughput ratio; > 1 means bertkit wins)."""
    return f"{ours / theirs:.2f}x" if theirs else "n/a"


def real_sentences(n: int, seed: int = 0) -> list[str]:
    """n real sentences: SST-2 and NSMC train texts mixed, shuffled with a fixed seed.

    Falls back to a built-in handful when ../shared/data is absent (then lengths are not real).
    """
    texts: list[str] = []
    sst2 = DATA / "glue" / "SST-2" / "train.tsv"
    nsmc = DATA / "nsmc" / "ratings_train.txt"
    if sst2.exists():
        lines = sst2.read_text(encoding="utf-8").splitlines()[1:]
        texts += [line.split("\t")[0] for line in lines[: 4 * n]]
    if nsmc.exists():
        lines = nsmc.read_text(encoding="utf-8").splitlines()[1:]
        texts += [line.split("\t")[1] for line in lines[: 4 * n] if line.count("\t") >= 2 and line.split("\t")[1]]
    if not texts:
        print("warning: ../shared/data not found; using a tiny built-in sample", file=sys.stderr)
        texts = ["the movie was great", "a long and winding review of a film that nobody saw, really",
                 "bad", "I would watch it again with friends and family on a rainy sunday afternoon"]
    rng = random.Random(seed)
    rng.shuffle(texts)
    return [texts[i % len(texts)] for i in range(n)]


def matmul_peak_gflops(size: int = 1024, dtype=None, repeats: int = 10) -> float:
    """The machine's practical matmul peak (GFLOP/s) with the current torch thread setting:
    the best of `repeats` square fp32 (or `dtype`) matmuls — the ceiling for MFU figures."""
    import torch
    dtype = dtype or torch.float32
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * size ** 3 / best / 1e9


def bert_training_flops(config, tokens: int, seq_len: int, masked: int, nsp_rows: int = 0) -> float:
    """Useful FLOPs of one BERT pretraining step (forward + backward = 3 × forward).

    Per token and layer: 24·H² (QKV, output, FFN projections) + 4·T·H (scores and weighted sum);
    the MLM head only at the `masked` positions: 2·H² (transform) + 2·H·V (decoder);
    embeddings are lookups (no FLOPs).  Both implementations are charged the same useful work.
    """
    h, v, layers = config.hidden_size, config.vocab_size, config.num_hidden_layers
    ffn = config.intermediate_size
    per_token_layer = 2 * (4 * h * h + 2 * h * ffn) + 4 * seq_len * h
    forward = tokens * layers * per_token_layer + masked * (2 * h * h + 2 * h * v) + nsp_rows * 2 * h * (h + 2)
    return 3.0 * forward


def pyplot():
    """matplotlib.pyplot with a file-only backend, or None when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def fail_if_different(comparisons: Iterable[tuple[str, float, float]]) -> None:
    """The verdict of a side-by-side benchmark: `comparisons` are (what, |bertkit − reference|,
    tolerance).  Every difference above its tolerance (NaN too) prints one `DIFFERENT:` line and
    the benchmark exits with status 1 — a fast run whose outputs differ is a failed run.
    Call it after the tables are printed, so the figures are still shown."""
    comparisons = list(comparisons)
    bad = [f"DIFFERENT: {what}: |bertkit - reference| = {diff:.3g} > tolerance {tol:g}"
           for what, diff, tol in comparisons if not diff <= tol]
    if bad:
        print("\n".join(bad), file=sys.stderr, flush=True)
        raise SystemExit(1)
    print(f"outputs: all {len(comparisons)} comparisons with the reference within tolerance")
