"""Epoch plans: the old per-sentence / per-item Python loops vs the numpy planners.

Times, on real shards, the three plans a pretraining epoch needs:

* the NSP pair plan (`PretrainingDataset._plan_pairs`),
* the no-NSP segment plan (`PretrainingDataset._plan_segments`),
* `pack_lengths` (rows of several documents, for packing) on the segment lengths,
  with the fill of both (real tokens / (rows * capacity)),

and, for scale, the new `pack_lengths` on 10^7 lengths (the real ones tiled).
"old" is a copy of the loops bertkit used before (kept here only, for this table).

    python bench/bench_plans.py SHARDS_DIR [--max-seq-length 128] [--repeat 10]

--repeat N plans over the corpus N times over (its sentence lengths and documents
tiled in memory), to see the planners at a larger scale without building bigger shards.

Build the shards first, e.g. the Korean reviews (one review per line):

    tok = train_vocab([f], vocab_size=8000, strip_accents=False)
    build_shards([f], tok, "ko_lines", num_workers=2, one_doc_per_line=True)
"""
from __future__ import annotations

import argparse
import random
import time
from types import SimpleNamespace

import numpy as np

from bertkit.common.defaults import IGNORE_INDEX, NSP_RANDOM_PROBABILITY
from bertkit.data.nsp import PretrainingDataset, _mix
from bertkit.data.packing import item_lengths, pack_lengths


# ------------------------------------------------------------------ the old loops (for comparison only)

def old_target(rng, max_num_tokens, short_seq_prob):
    return rng.randint(2, max_num_tokens) if rng.random() < short_seq_prob else max_num_tokens


def old_random_b(rng, d, n_docs, starts, lengths, target_b):
    other = d
    for _ in range(10):
        other = rng.randint(0, n_docs - 1)
        if other != d:
            break
    first, stop = starts[other], starts[other + 1]
    j = rng.randint(first, stop - 1)
    b0, total = j, 0
    while j < stop:
        total += lengths[j]
        j += 1
        if total >= target_b:
            break
    return b0, j


def old_plan_pairs(corpus, max_seq_length, short_seq_prob, seed, epoch, skip_single=True):
    rng = random.Random(_mix(seed, epoch, 0x5EED))
    lengths, starts = corpus.sentence_lengths.tolist(), corpus.doc_starts.tolist()
    n_docs, plan = len(starts) - 1, []
    for d in range(n_docs):
        first, stop = starts[d], starts[d + 1]
        if skip_single and stop - first == 1:
            continue
        target = old_target(rng, max_seq_length - 3, short_seq_prob)
        chunk_start, chunk_len, i = first, 0, first
        while i < stop:
            chunk_len += lengths[i]
            if i == stop - 1 or chunk_len >= target:
                n_chunk = i + 1 - chunk_start
                a_end = chunk_start + (rng.randint(1, n_chunk - 1) if n_chunk >= 2 else 1)
                len_a = sum(lengths[chunk_start:a_end])
                if n_chunk == 1 or rng.random() < NSP_RANDOM_PROBABILITY:
                    b0, b1 = old_random_b(rng, d, n_docs, starts, lengths, target - len_a)
                    plan.append((chunk_start, a_end, b0, b1, 1))
                    i = a_end - 1
                else:
                    plan.append((chunk_start, a_end, a_end, i + 1, 0))
                chunk_start, chunk_len = i + 1, 0
            i += 1
    return np.array(plan, dtype=np.int64).reshape(-1, 5)


def old_plan_segments(corpus, max_seq_length, short_seq_prob, seed, epoch):
    rng = random.Random(_mix(seed, epoch, 0x5EED))
    lengths, starts = corpus.sentence_lengths.tolist(), corpus.doc_starts.tolist()
    plan = []
    for d in range(len(starts) - 1):
        target = old_target(rng, max_seq_length - 2, short_seq_prob)
        chunk_start, chunk_len = starts[d], 0
        for i in range(starts[d], starts[d + 1]):
            if chunk_len and chunk_len + lengths[i] > target:
                plan.append((chunk_start, i, 0, 0, IGNORE_INDEX))
                chunk_start, chunk_len = i, 0
            chunk_len += lengths[i]
        plan.append((chunk_start, starts[d + 1], 0, 0, IGNORE_INDEX))
    return np.array(plan, dtype=np.int64).reshape(-1, 5)


def old_pack_lengths(lengths, capacity, seed=0, open_rows=32):
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    rows, open_ = [], []
    for i in order:
        n = int(lengths[i])
        slot = next((k for k, (free, _) in enumerate(open_) if free >= n), None)
        if slot is None:
            open_.append((capacity - n, [i]))
            if len(open_) > open_rows:
                rows.append(open_.pop(0)[1])
        else:
            free, items = open_[slot]
            items.append(i)
            open_[slot] = (free - n, items)
    return rows + [items for _, items in open_]


# ------------------------------------------------------------------ timing

def tiled(dataset: PretrainingDataset, repeat: int) -> None:
    """Make `dataset` plan over its corpus `repeat` times over (lengths only; no tokens are read)."""
    corpus = dataset.corpus
    n_sent, n_docs = len(corpus.sentence_lengths), corpus.num_documents
    doc_starts = np.concatenate([corpus.doc_starts[:-1] + k * n_sent for k in range(repeat)] + [[repeat * n_sent]])
    dataset.corpus = SimpleNamespace(sentence_lengths=np.tile(corpus.sentence_lengths, repeat),
                                     doc_starts=doc_starts.astype(np.int64), num_documents=repeat * n_docs)
    dataset.documents = np.arange(repeat * n_docs, dtype=np.int64)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("shards")
    ap.add_argument("--max-seq-length", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=1, help="plan over the corpus this many times over")
    ap.add_argument("--tile", type=int, default=10_000_000, help="lengths for the large pack_lengths row")
    args = ap.parse_args()
    T = args.max_seq_length
    pairs = PretrainingDataset(args.shards, max_seq_length=T, nsp=True, seed=0)
    segs = PretrainingDataset(args.shards, max_seq_length=T, nsp=False, seed=0)
    for dataset in (pairs, segs):
        tiled(dataset, args.repeat)
    corpus = pairs.corpus
    print(f"{args.shards} x{args.repeat}: {corpus.num_documents:,} documents, {len(corpus.sentence_lengths):,} sentences, "
          f"{int(corpus.sentence_lengths.sum()):,} tokens; max_seq_length {T}\n")
    rng = lambda: np.random.default_rng(np.random.SeedSequence([0, 1, 0x5EED]))
    rows = [("pair plan (NSP)", lambda: old_plan_pairs(corpus, T, 0.1, 0, 1), lambda: pairs._plan_pairs(rng())[0]),
            ("segment plan (no NSP)", lambda: old_plan_segments(corpus, T, 0.1, 0, 1),
             lambda: segs._plan_segments(rng())[0])]
    lengths = item_lengths(segs)
    rows.append(("pack_lengths", lambda: old_pack_lengths(lengths, T, 1), lambda: pack_lengths(lengths, T, 1)))
    print("| plan | items | old s | new s | speed-up | old fill | new fill |\n|---|---|---|---|---|---|---|")
    for name, old, new in rows:
        a, t_old = timed(old)
        b, t_new = timed(new)
        fill = ["", ""]
        if name == "pack_lengths":
            fill = [f"{lengths.sum() / (len(r) * T):.4f}" for r in (a, b)]
        print(f"| {name} | {len(b):,} | {t_old:.2f} | {t_new:.3f} | {t_old / t_new:.0f}x | {fill[0]} | {fill[1]} |")
    big = np.resize(lengths, args.tile)
    b, t_new = timed(lambda: pack_lengths(big, T, 1))
    print(f"| pack_lengths, {args.tile:,} lengths (tiled) | {len(b):,} rows | - | {t_new:.2f} | - | - | "
          f"{big.sum() / (len(b) * T):.4f} |")


if __name__ == "__main__":
    main()
