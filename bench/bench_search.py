"""Semantic search on real data: recall@10 with and without re-ranking, build rate, query latency, 100k scale.

    python bench/bench_search.py [--threads 2] [--queries 500] [--reranker DIR | --train-reranker]
                                 [--scale 100000] [--int8] [--scale-int8]

Retrieval sets (real data from ../shared/data):
  * KorQuAD 1.0 (half of dev): each question → the paragraph it was asked about, among all
    paragraphs.  MiniLM's English vocab covers Korean poorly (Hangul is split into jamo),
    so expect modest numbers: it is the honest baseline for a Korean model.
  * MRPC (English): the first sentence of each paraphrase pair → its second sentence,
    among all second sentences.
Model: all-MiniLM-L6-v2 as the bi-encoder (mean pooling, normalized).
Re-ranking: a cross-encoder re-orders the bi-encoder's top `--candidates`; with
`--train-reranker` one is fine-tuned from MiniLM on a disjoint half of each set (split by
KorQuAD article / by MRPC pair) and both columns are measured on the other half.
Latency: one query at a time (embed + exact search), `--threads` torch threads.
Windows: `--window 128` indexes each passage as overlapping 128-token windows (a passage
scores as its best window; the re-ranker reads that window).
int8: `--int8` repeats each set with the int8 dynamic-quantized encoder (bertkit.modeling.quantize):
its recall next to fp32's is the accuracy change, its build rate the speed-up.
Scale: `--scale N` synthetic passages (2–3 real sentences each, from SST-2/NSMC/WikiText)
are indexed and queried; 0 skips it.
"""
from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, markdown_table, real_sentences, set_threads  # noqa: E402


ANSWER_START: dict[str, int] = {}   # KorQuAD question -> character where its answer starts


def korquad_set(seed: int = 0):
    path = DATA / "korquad1" / "KorQuAD_v1.0_dev_half_a.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    passages, queries = [], []
    for a, article in enumerate(data):
        for para in article["paragraphs"]:
            passages.append(para["context"])
            queries += [(qa["question"], len(passages) - 1, a) for qa in para["qas"]]
            ANSWER_START.update({qa["question"]: qa["answers"][0]["answer_start"] for qa in para["qas"]})
    return passages, queries


def mrpc_set(seed: int = 0):
    path = DATA / "glue" / "MRPC" / "train.tsv"
    if not path.exists():
        return None
    with open(path, encoding="utf-8-sig") as f:
        rows = [r for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)][1:]
    rows = [r for r in rows if len(r) == 5 and r[0] == "1"]
    passages = list(dict.fromkeys(r[4] for r in rows))
    where = {p: i for i, p in enumerate(passages)}
    return passages, [(r[3], where[r[4]], n) for n, r in enumerate(rows)]


def recall_at(hits_rows: list[list[int]], gold: list[int], k: int = 10) -> float:
    return sum(g in row[:k] for row, g in zip(hits_rows, gold)) / max(1, len(gold))


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def evaluate(name, passages, queries, args, model, work: Path, rows: list, latency_rows: list, quantize=None):
    from bertkit.apps.search import Index, build_index, rerank, train_reranker
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    index = build_index(passages, model, work / f"{name}-{quantize}-index", batch_size=64, max_length=256,
                        progress=False, quantize=quantize, window=args.window or None)
    name = f"{name} (int8)" if quantize else name
    build_s = time.perf_counter() - t0
    groups = sorted({g for _, _, g in queries})
    eval_groups = set(groups[len(groups) // 2:]) if args.train_reranker else set(groups)
    eval_queries = [q for q in queries if q[2] in eval_groups]
    rng.shuffle(eval_queries)
    eval_queries = eval_queries[:args.queries]
    index = Index.load(index.directory)
    hits = index.query_many([q for q, _, _ in eval_queries], top_k=max(10, args.candidates))
    row_of = {p["id"]: int(p["id"]) for p in index.passages}
    gold = [g for _, g, _ in eval_queries]
    bi = recall_at([[row_of[h["id"]] for h in hs] for hs in hits], gold)
    latencies = []
    for q, _, _ in eval_queries[:args.latency_queries]:
        t = time.perf_counter()
        index.query(q, top_k=10)
        latencies.append(time.perf_counter() - t)
    latency_rows.append([name, len(passages), f"{len(passages) / build_s:.1f}", f"{1000 * statistics.median(latencies):.1f}",
                         f"{1000 * percentile(latencies, 99):.1f}"])
    reranker = Path(args.reranker) if args.reranker else None
    if quantize:                                       # re-ranking is measured once, on the fp32 rows
        reranker = None
    elif args.train_reranker:
        train_pairs, pool = training_pairs(queries, passages, eval_groups, index, args)
        rng.shuffle(train_pairs)
        t = time.perf_counter()
        reranker = train_reranker(train_pairs[:args.reranker_pairs], model, work / f"{name}-reranker",
                                  negatives=3, max_steps=args.reranker_steps, batch_size=16, max_length=192,
                                  pool=pool, progress=False, eval_share=0)   # evaluated below on its own set
        print(f"{name}: re-ranker trained on {min(len(train_pairs), args.reranker_pairs)} pairs, "
              f"{args.reranker_steps} steps in {time.perf_counter() - t:.0f} s")
    rr = "—"
    if reranker is not None:
        n = min(len(eval_queries), args.rerank_queries)
        reranked = [rerank(q, hs[:args.candidates], reranker) for (q, _, _), hs in zip(eval_queries[:n], hits[:n])]
        base = recall_at([[row_of[h["id"]] for h in hs] for hs in hits[:n]], gold[:n])
        rr = f"{recall_at([[row_of[h['id']] for h in hs] for hs in reranked], gold[:n]):.3f} (bi {base:.3f} on same {n})"
    rows.append([name, len(passages), len(eval_queries), f"{bi:.3f}", rr])


def training_pairs(queries, passages, eval_groups, index, args):
    """(question, positive text) pairs from the training half, and the pool negatives come from.

    With windows the re-ranker is trained on what it will read: the window that holds the
    answer (when the set says where the answer is), against random windows of other passages."""
    train = [(q, g) for q, g, grp in queries if grp not in eval_groups]
    if index.windows is None:
        return [(q, passages[g]) for q, g in train], passages
    windows = [(row, a, b) for row, a, b in index.windows.tolist()]
    pairs = []
    for q, g in train:
        start = ANSWER_START.get(q, 0)
        row, a, b = next(((r, a, b) for r, a, b in windows if r == g and a <= start < b),
                          next(w for w in windows if w[0] == g))
        pairs.append((q, passages[row][a:b]))
    return pairs, [passages[row][a:b] for row, a, b in windows]


def scale_test(n: int, model, work: Path, args) -> list:
    from bertkit.apps.search import Index, build_index
    sentences = real_sentences(min(n, 50_000), seed=args.seed)
    rng = random.Random(args.seed)
    passages = [" ".join(rng.sample(sentences, rng.choice((2, 3)))) for _ in range(n)]
    t0 = time.perf_counter()
    build_index(passages, model, work / "scale-index", batch_size=256, max_length=64, progress=True,
                quantize="int8" if args.scale_int8 else None)
    build_s = time.perf_counter() - t0
    index = Index.load(work / "scale-index")
    queries = [rng.choice(sentences) for _ in range(args.latency_queries)]
    index.query(queries[0])
    latencies = []
    for q in queries:
        t = time.perf_counter()
        index.query(q, top_k=10)
        latencies.append(time.perf_counter() - t)
    size_mb = sum(p.stat().st_size for p in (work / "scale-index").iterdir()) / 2**20
    return [n, "int8" if args.scale_int8 else "fp32", f"{build_s:.0f}", f"{n / build_s:.1f}", f"{size_mb:.0f}", f"{1000 * statistics.median(latencies):.1f}",
            f"{1000 * percentile(latencies, 99):.1f}"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--queries", type=int, default=500, help="queries per set for recall")
    p.add_argument("--latency-queries", type=int, default=100)
    p.add_argument("--candidates", type=int, default=20, help="bi-encoder hits handed to the re-ranker")
    p.add_argument("--rerank-queries", type=int, default=200)
    p.add_argument("--reranker", default=None, help="an existing re-ranker directory")
    p.add_argument("--train-reranker", action="store_true")
    p.add_argument("--reranker-steps", type=int, default=200)
    p.add_argument("--reranker-pairs", type=int, default=2000)
    p.add_argument("--scale", type=int, default=100_000, help="synthetic passages for the scale test (0: skip)")
    p.add_argument("--sets", default="korquad,mrpc")
    p.add_argument("--window", type=int, default=0,
                   help="index passages as overlapping windows of this many tokens (0: whole passages)")
    p.add_argument("--int8", action="store_true", help="also measure each set with the int8-quantized encoder")
    p.add_argument("--scale-int8", action="store_true", help="build the scale index with the int8 encoder")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    set_threads(args.threads)
    from bertkit.modeling.checkpoint import find_minilm
    model = find_minilm()
    work = Path(tempfile.mkdtemp(prefix="bench-search-"))
    rows, latency_rows = [], []
    try:
        for name in args.sets.split(","):
            data = {"korquad": korquad_set, "mrpc": mrpc_set}[name](args.seed)
            if data is None:
                print(f"{name}: data not found under {DATA}; skipped")
                continue
            evaluate(name, *data, args, model, work, rows, latency_rows)
            if args.int8:
                evaluate(name, *data, args, model, work, rows, latency_rows, quantize="int8")
        windows = f", passages split into {args.window}-token windows" if args.window else ""
        print(f"\n## Retrieval (all-MiniLM-L6-v2 bi-encoder, {args.threads} threads{windows})\n")
        print(markdown_table(["set", "passages", "queries", "recall@10", f"recall@10 re-ranked (top {args.candidates})"], rows))
        print("\n## Index build and query latency (one query at a time: embed + exact search)\n")
        print(markdown_table(["set", "passages", "build passages/s", "query p50 ms", "query p99 ms"], latency_rows))
        if args.scale:
            print(f"\n## Scale: {args.scale:,} synthetic passages (max_length 64)\n")
            print(markdown_table(["passages", "encoder", "build s", "passages/s", "index MB", "query p50 ms", "query p99 ms"],
                                 [scale_test(args.scale, model, work, args)]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
