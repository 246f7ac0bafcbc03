"""Pretraining instances: [CLS] A [SEP] B [SEP] pairs for next-sentence prediction.

This follows `create_instances_from_document` of google-research/bert
(create_pretraining_data.py) step by step:

1. For each document pick a target length: usually `max_seq_length - 3`
   (room for [CLS] and two [SEP]), but with probability `short_seq_prob`
   (0.1) a random length in [2, max_seq_length - 3], so the model also sees
   short inputs like the ones of fine-tuning. (As in the original, the draw is
   made once per document.)
2. Accumulate sentences of the document until they reach the target length
   (or the document ends): a chunk.
3. Segment A = the first `a_end` sentences of the chunk, `a_end` random in
   [1, n_chunk - 1].
4. With probability 1/2 (and always when the chunk is one sentence),
   B = sentences from a *random other document*, starting at a random sentence,
   until B fills the rest of the target — label 1 "is random next". The
   accumulated sentences that were not used are *put back*: the next chunk
   starts at `a_end`. Otherwise B = the rest of the chunk — label 0 "is next".
5. `truncate_seq_pair`: while the pair is too long, drop one token from the
   longer segment, at the front or the back with equal chance.

What differs from the original: it wrote a fixed file of instances (x10
duplicates with different masks). Here the instances are computed on the fly,
from the token-id memmaps of `build_shards`, and each one is a pure function of
(seed, epoch, index): a new epoch gives new pairs, and a training run can
resume exactly at a data position. Masking happens later, at batch time
(`masking.MlmCollator`).

How the plan of an epoch is computed (from sentence *lengths* only; tokens are
read from the memmaps when an instance is asked for): not by a loop over
documents and sentences, which takes minutes on hundreds of millions of
sentences, but in *rounds*, each of which cuts the next chunk of every document
at once with numpy.  With `cum` the running total of sentence lengths, the chunk
that starts at sentence `pos` ends at the first `k` with
`cum[k] >= cum[pos] + target`: one `np.searchsorted` for all documents.  The
random draws (A's end, random-or-next, the other document and its start) are
arrays too, from a numpy Generator seeded by (seed, epoch).  A document leaves
the rounds when its chunks reach its end, so the work is one pass over the
instances, and the number of rounds is the most chunks of any one document.
The rows are finally put in document order.  `plan_dir` stores a plan once, for
every process and later run, memory-mapped (`bertkit.data.plans`).

Document subsets: `held_out_every=k, split="train"` leaves out every k-th
document (global index d with d % k == k - 1), `split="heldout"` keeps only
those: a held-out set carved out of the same shards.  Random B sentences come
only from the selected documents, so no held-out text is seen in training.
"""
from __future__ import annotations

import logging
import os
import random

import numpy as np
import torch

from bertkit.common.defaults import IGNORE_INDEX, NSP_RANDOM_PROBABILITY, SHORT_SEQ_PROBABILITY
from bertkit.common.errors import InputError
from bertkit.data.plans import cached_plan, file_sha256, settings_hash
from bertkit.data.shards import MANIFEST, ShardedCorpus

log = logging.getLogger(__name__)

SPLITS = ("all", "train", "heldout")


def truncate_seq_pair(tokens_a: np.ndarray, tokens_b: np.ndarray, max_num_tokens: int,
                      rng: random.Random) -> tuple[np.ndarray, np.ndarray]:
    """Trim the longer of A and B one token at a time, from the front or back at random."""
    a0, a1, b0, b1 = 0, len(tokens_a), 0, len(tokens_b)
    while (a1 - a0) + (b1 - b0) > max_num_tokens:
        if a1 - a0 > b1 - b0:
            if rng.random() < 0.5:
                a0 += 1
            else:
                a1 -= 1
        elif rng.random() < 0.5:
            b0 += 1
        else:
            b1 -= 1
    return tokens_a[a0:a1], tokens_b[b0:b1]


def _mix(*numbers: int) -> int:
    """One 64-bit seed from several integers (stable across runs and machines)."""
    return int(np.random.SeedSequence([n & 0xFFFFFFFFFFFFFFFF for n in numbers]).generate_state(1, np.uint64)[0])


def select_documents(n_docs: int, held_out_every: int = 0, split: str = "all") -> np.ndarray:
    """Global indices of the documents of `split` ("all", "train" or "heldout").

    The held-out documents are those with d % held_out_every == held_out_every - 1.
    """
    if split not in SPLITS:
        raise InputError(f"split={split!r}: use one of {', '.join(map(repr, SPLITS))}.")
    docs = np.arange(n_docs, dtype=np.int64)                                   # [D]
    if split == "all":
        return docs
    if held_out_every < 2:
        raise InputError(f"split={split!r} needs held_out_every >= 2 (every k-th document is held out); "
                         f"got held_out_every={held_out_every}.")
    held_out = docs % held_out_every == held_out_every - 1
    return docs[held_out] if split == "heldout" else docs[~held_out]


def _reach_ends(cum: np.ndarray, pos: np.ndarray, stop: np.ndarray, target: np.ndarray) -> np.ndarray:
    """End (exclusive) of the chunks starting at `pos`: sentences are added until their
    tokens reach `target` or the document ends at `stop`; at least one sentence."""
    k = np.searchsorted(cum, cum[pos] + target, side="left")                  # first k: cum[k] >= cum[pos] + target
    return np.maximum(np.minimum(k, stop), pos + 1)


def _fit_ends(cum: np.ndarray, pos: np.ndarray, stop: np.ndarray, target: np.ndarray) -> np.ndarray:
    """End (exclusive) of the chunks starting at `pos`: as many whole sentences as fit in
    `target` tokens (at least one), within the document ending at `stop`."""
    k = np.searchsorted(cum, cum[pos] + target, side="right") - 1             # last k: cum[k] <= cum[pos] + target
    return np.minimum(np.maximum(k, pos + 1), stop)


class PretrainingDataset(torch.utils.data.Dataset):
    """Map-style dataset of BERT pretraining instances built from shards.

    Args:
        shards_dir: a directory made by `build_shards`.
        max_seq_length: length of an instance including [CLS] and [SEP]s (128 or 512 in BERT).
        short_seq_prob: chance that a document uses a shorter random target length.
        nsp: True → sentence pairs with `next_sentence_label` (0 = B follows A,
            1 = B is random). False → one segment per instance (as many whole
            sentences of one document as fit, like RoBERTa's DOC-SENTENCES),
            no NSP label.
        seed: base seed; instance `i` of epoch `e` depends only on (seed, e, i).
        skip_single_sentence_documents: documents of one sentence cannot give an
            "is next" pair; True skips them as sources of A (counted and logged),
            False uses them as the original does (always a random B). They stay
            available as random B either way.
        held_out_every, split: use a subset of the documents (see the module
            docstring): split="train" leaves out every `held_out_every`-th
            document, "heldout" keeps only those, "all" (default) keeps all.
        plan_dir: a directory where the plan of each epoch is stored once and
            memory-mapped (shared by the processes of a job and by later runs);
            None computes it in memory.

    `stats` counts the instances of the current epoch: how many have a random B,
    how many of those were forced (only one sentence accumulated, as in the
    original), how many single-sentence documents were skipped.
    `num_documents` is the number of selected documents.

    Call `set_epoch(e)` before iterating an epoch (the number of instances can
    change a little from epoch to epoch, since lengths are drawn at random);
    with a DataLoader keep persistent_workers=False so workers see the new epoch.
    Items are dicts: `input_ids` [T] and `token_type_ids` [T] (int64 numpy
    arrays), `next_sentence_label` (int, when nsp) and `mask_seed` (int), a
    per-instance seed the collator uses so masks too are a function of
    (seed, epoch, index).
    """

    def __init__(self, shards_dir: str | os.PathLike, max_seq_length: int = 128,
                 short_seq_prob: float = SHORT_SEQ_PROBABILITY,
                 nsp: bool = True, seed: int = 0, skip_single_sentence_documents: bool = True,
                 held_out_every: int = 0, split: str = "all", plan_dir: str | os.PathLike | None = None):
        if max_seq_length < 5:
            raise InputError(f"max_seq_length={max_seq_length} is too small: [CLS] A [SEP] B [SEP] needs at least 5.")
        if not 0.0 <= short_seq_prob <= 1.0:
            raise InputError(f"short_seq_prob={short_seq_prob} must be a probability in [0, 1].")
        self.corpus = ShardedCorpus(shards_dir)
        special = self.corpus.manifest["special_ids"]
        self.cls_id, self.sep_id = special["cls"], special["sep"]
        if self.cls_id is None or self.sep_id is None:
            raise InputError(f"{shards_dir}: the manifest has no [CLS]/[SEP] ids; rebuild the shards with a BertTokenizer.")
        self.documents = select_documents(self.corpus.num_documents, held_out_every, split)     # [D] global ids
        if len(self.documents) == 0:
            raise InputError(f"{shards_dir}: split={split!r} with held_out_every={held_out_every} selects none of "
                             f"its {self.corpus.num_documents} documents; use a smaller held_out_every or more text.")
        self.max_seq_length, self.short_seq_prob, self.nsp, self.seed = max_seq_length, short_seq_prob, nsp, seed
        self.skip_single = skip_single_sentence_documents
        self.split, self.held_out_every = split, (held_out_every if split != "all" else 0)
        self.plan_dir = None if plan_dir is None else os.fspath(plan_dir)
        self.epoch = -1
        if nsp and self.num_documents < 2:
            log.warning("%s holds a single document: random 'next sentences' will come from that same document. "
                        "Separate documents with blank lines (or build the shards with one_doc_per_line=True).",
                        shards_dir)
        self.set_epoch(0)
        if len(self.plan) == 0:
            raise InputError(
                f"{shards_dir}: no pretraining instances could be made: all {self.num_documents} documents "
                "have a single sentence. Put one sentence per line with blank lines between documents, build the "
                "shards with one_doc_per_line=True (splits lines into sentences), or pass "
                "skip_single_sentence_documents=False.")

    @property
    def num_documents(self) -> int:
        """Number of documents this dataset draws from (those of its split)."""
        return len(self.documents)

    # -------------------------------------------------------------- the plan of one epoch

    def plan_settings(self) -> dict:
        """Everything the plan of an epoch depends on, besides the epoch (hashed into plan file names)."""
        return {"manifest_sha256": file_sha256(self.corpus.dir / MANIFEST), "nsp": self.nsp,
                "max_seq_length": self.max_seq_length, "short_seq_prob": self.short_seq_prob, "seed": self.seed,
                "skip_single_sentence_documents": self.skip_single, "split": self.split,
                "held_out_every": self.held_out_every, "algorithm": 2}

    def set_epoch(self, epoch: int) -> None:
        """Make (or load from `plan_dir`) the plan of `epoch` (deterministic in seed and epoch)."""
        if epoch == self.epoch:
            return
        stem = None if self.plan_dir is None else \
            f"{'pairs' if self.nsp else 'segments'}-{settings_hash(self.plan_settings())}-epoch{epoch}"
        arrays, self.stats = cached_plan(self.plan_dir, stem, ("plan",), lambda: self._build_plan(epoch))
        # [N, (a0, a1, b0, b1, label)]: A = global sentences a0..a1-1, B = b0..b1-1
        self.plan = arrays["plan"]
        self.epoch = epoch
        skipped = self.stats.get("skipped_single_sentence_documents", 0)
        if skipped and epoch == 0:                  # the same every epoch: said once
            log.warning("next-sentence pairs: skipped %d single-sentence documents of %d "
                        "(they cannot give an 'is next' pair)", skipped, self.num_documents)

    def _build_plan(self, epoch: int) -> tuple[dict[str, np.ndarray], dict]:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed & 0xFFFFFFFFFFFFFFFF, epoch, 0x5EED]))
        plan, stats = self._plan_pairs(rng) if self.nsp else self._plan_segments(rng)
        return {"plan": plan}, stats

    def _layout(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """cum [S+1] (running total of sentence lengths) and, per selected document,
        first sentence [D], end sentence [D] and target length [D] (drawn once per document)."""
        cum = np.zeros(len(self.corpus.sentence_lengths) + 1, dtype=np.int64)
        np.cumsum(self.corpus.sentence_lengths, out=cum[1:])
        starts, stops = self.corpus.doc_starts[self.documents], self.corpus.doc_starts[self.documents + 1]
        max_num_tokens = self.max_seq_length - (3 if self.nsp else 2)
        short = rng.random(len(self.documents)) < self.short_seq_prob
        target = np.where(short, rng.integers(2, max_num_tokens + 1, len(self.documents)), max_num_tokens)
        return cum, starts, stops, target.astype(np.int64)

    def _plan_pairs(self, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        """create_instances_from_document over all documents at once, in rounds of one chunk each."""
        cum, starts, stops, target = self._layout(rng)
        single = stops - starts == 1
        active = np.flatnonzero(~single) if self.skip_single else np.arange(len(starts))     # [D'] ranks
        pos = starts[active]                                                                 # [D'] next chunk start
        rounds, forced = [], 0
        while len(active):
            rows, next_pos, n_forced = self._pair_round(rng, cum, starts, stops, target, active, pos)
            rounds.append(rows)
            forced += n_forced
            more = next_pos < stops[active]
            active, pos = active[more], next_pos[more]
        plan = np.concatenate(rounds) if rounds else np.zeros((0, 5), np.int64)            # [N, 5]
        plan = plan[np.argsort(plan[:, 0], kind="stable")]          # document order (a0 is unique)
        skipped = int(single.sum()) if self.skip_single else 0
        stats = {"instances": len(plan), "random_next": int(plan[:, 4].sum()), "forced_random_next": forced,
                 "skipped_single_sentence_documents": skipped}
        return plan, stats

    def _pair_round(self, rng, cum, starts, stops, target, active, pos) -> tuple[np.ndarray, np.ndarray, int]:
        """One chunk of every active document: rows [n, 5], where each document goes on, forced count."""
        tgt = target[active]
        end = _reach_ends(cum, pos, stops[active], tgt)                        # [n] chunk = pos..end-1
        n_chunk = end - pos
        a_end = pos + rng.integers(1, np.maximum(n_chunk, 2))                  # [n] in [1, n_chunk-1], 1 if one
        is_random = (n_chunk == 1) | (rng.random(len(active)) < NSP_RANDOM_PROBABILITY)
        b0, b1 = a_end.copy(), end.copy()
        pick = np.flatnonzero(is_random)
        b0[pick], b1[pick] = self._random_b(rng, cum, starts, stops, active[pick],
                                            tgt[pick] - (cum[a_end[pick]] - cum[pos[pick]]))
        rows = np.stack([pos, a_end, b0, b1, is_random.astype(np.int64)], axis=1)           # [n, 5]
        next_pos = np.where(is_random, a_end, end)                      # random B: unused sentences put back
        return rows, next_pos, int((n_chunk == 1).sum())

    @staticmethod
    def _random_b(rng, cum, starts, stops, ranks, target_b) -> tuple[np.ndarray, np.ndarray]:
        """B spans [n] from a random other selected document (not the one of rank `ranks`),
        from a random sentence until `target_b` tokens (at least one sentence)."""
        n_docs = len(starts)
        if n_docs > 1:
            other = rng.integers(0, n_docs - 1, len(ranks))
            other += other >= ranks                                    # uniform over the other documents
        else:
            other = np.zeros(len(ranks), np.int64)                     # a single document: itself (warned)
        first, stop = starts[other], stops[other]
        b0 = rng.integers(first, stop) if len(ranks) else first
        return b0, _reach_ends(cum, b0, stop, target_b)

    def _plan_segments(self, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        """No NSP: as many whole sentences of one document as fit the target length, one segment.

        A sentence that would overflow starts the next instance, so no text is
        lost except the tail of a single sentence longer than the limit.  Same
        rounds as the pairs: one chunk of every unfinished document per round.
        """
        cum, starts, stops, target = self._layout(rng)
        active, pos, rounds = np.arange(len(starts)), starts.copy(), []
        while len(active):
            end = _fit_ends(cum, pos, stops[active], target[active])             # [n]
            rounds.append(np.stack([pos, end], axis=1))
            more = end < stops[active]
            active, pos = active[more], end[more]
        spans = np.concatenate(rounds) if rounds else np.zeros((0, 2), np.int64)
        spans = spans[np.argsort(spans[:, 0], kind="stable")]                    # document order
        plan = np.zeros((len(spans), 5), dtype=np.int64)                         # [N, 5]: no B
        plan[:, :2], plan[:, 4] = spans, IGNORE_INDEX
        return plan, {"instances": len(plan)}

    # -------------------------------------------------------------- instances

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self.plan):
            raise IndexError(f"index {index} out of range for {len(self.plan)} instances (epoch {self.epoch})")
        a0, a1, b0, b1, label = (int(x) for x in self.plan[index])
        seed = _mix(self.seed, self.epoch, index)
        rng = random.Random(seed)
        tokens_a = self.corpus.span(a0, a1)
        if self.nsp:
            tokens_b = self.corpus.span(b0, b1)
            tokens_a, tokens_b = truncate_seq_pair(tokens_a, tokens_b, self.max_seq_length - 3, rng)
        else:
            tokens_a, tokens_b = tokens_a[:self.max_seq_length - 2], tokens_a[:0]
        cls, sep = np.array([self.cls_id]), np.array([self.sep_id])
        parts = [cls, tokens_a, sep] + ([tokens_b, sep] if self.nsp else [])
        input_ids = np.concatenate(parts).astype(np.int64)                         # [T]
        token_type_ids = np.zeros(len(input_ids), dtype=np.int64)                 # [T]
        token_type_ids[len(tokens_a) + 2:] = 1
        item = {"input_ids": input_ids, "token_type_ids": token_type_ids, "mask_seed": seed >> 1}
        if self.nsp:
            item["next_sentence_label"] = label
        return item
