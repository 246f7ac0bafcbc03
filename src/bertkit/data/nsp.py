"""Pretraining instances: [CLS] A [SEP] B [SEP] pairs for next-sentence prediction.

This follows `create_instances_from_document` of google-research/bert
(create_pretraining_data.py) step by step:

1. For each document pick a target length: usually `max_seq_length - 3`
   (room for [CLS] and two [SEP]), but with probability `short_seq_prob`
   (0.1) a random length in [2, max_seq_length - 3], so the model also sees
   short inputs like the ones of fine-tuning. (As in the original, the draw is
   made once per document.)
2. Accumulate sentences of the document until they reach the target length.
3. Segment A = the first `a_end` accumulated sentences, `a_end` random.
4. With probability 1/2 (and always when only one sentence was accumulated),
   B = sentences from a *random other document*, starting at a random sentence,
   until B fills the rest of the target — label 1 "is random next". The
   accumulated sentences that were not used are *put back*: the next instance
   starts from them. Otherwise B = the remaining accumulated sentences — label 0
   "is next".
5. `truncate_seq_pair`: while the pair is too long, drop one token from the
   longer segment, at the front or the back with equal chance.

What differs from the original: it wrote a fixed file of instances (x10
duplicates with different masks). Here the instances are computed on the fly,
from the token-id memmaps of `build_shards`, and each one is a pure function of
(seed, epoch, index): a new epoch gives new pairs, and a training run can
resume exactly at a data position. Masking happens later, at batch time
(`masking.MlmCollator`).

The plan of an epoch (which sentences form A and B of each instance) is made
from sentence *lengths* only, in one pass over the corpus; tokens are read from
the memmaps when an instance is asked for.
"""
from __future__ import annotations

import logging
import os
import random
from array import array

import numpy as np
import torch

from bertkit.common.defaults import IGNORE_INDEX, NSP_RANDOM_PROBABILITY, SHORT_SEQ_PROBABILITY
from bertkit.common.errors import InputError
from bertkit.data.shards import ShardedCorpus

log = logging.getLogger(__name__)


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

    `stats` counts the instances of the current epoch: how many have a random B,
    how many of those were forced (only one sentence accumulated, as in the
    original), how many single-sentence documents were skipped.

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
                 nsp: bool = True, seed: int = 0, skip_single_sentence_documents: bool = True):
        if max_seq_length < 5:
            raise InputError(f"max_seq_length={max_seq_length} is too small: [CLS] A [SEP] B [SEP] needs at least 5.")
        if not 0.0 <= short_seq_prob <= 1.0:
            raise InputError(f"short_seq_prob={short_seq_prob} must be a probability in [0, 1].")
        self.corpus = ShardedCorpus(shards_dir)
        special = self.corpus.manifest["special_ids"]
        self.cls_id, self.sep_id = special["cls"], special["sep"]
        if self.cls_id is None or self.sep_id is None:
            raise InputError(f"{shards_dir}: the manifest has no [CLS]/[SEP] ids; rebuild the shards with a BertTokenizer.")
        self.max_seq_length = max_seq_length
        self.short_seq_prob = short_seq_prob
        self.nsp = nsp
        self.seed = seed
        self.skip_single = skip_single_sentence_documents
        self.epoch = -1
        if nsp and self.corpus.num_documents < 2:
            log.warning("%s holds a single document: random 'next sentences' will come from that same document. "
                        "Separate documents with blank lines (or build the shards with one_doc_per_line=True).",
                        shards_dir)
        self.set_epoch(0)
        if len(self.plan) == 0:
            raise InputError(
                f"{shards_dir}: no pretraining instances could be made: all {self.corpus.num_documents} documents "
                "have a single sentence. Put one sentence per line with blank lines between documents, build the "
                "shards with one_doc_per_line=True (splits lines into sentences), or pass "
                "skip_single_sentence_documents=False.")

    # -------------------------------------------------------------- the plan of one epoch

    def set_epoch(self, epoch: int) -> None:
        """Make the plan of `epoch` (deterministic in seed and epoch)."""
        if epoch == self.epoch:
            return
        self.epoch = epoch
        rng = random.Random(_mix(self.seed, epoch, 0x5EED))
        plan = self._plan_pairs(rng) if self.nsp else self._plan_segments(rng)
        # [N, (a0, a1, b0, b1, label)]: A = global sentences a0..a1-1, B = b0..b1-1
        self.plan = np.frombuffer(plan, dtype=np.int64).reshape(-1, 5).copy()

    def _target_length(self, rng: random.Random) -> int:
        max_num_tokens = self.max_seq_length - (3 if self.nsp else 2)
        if rng.random() < self.short_seq_prob:
            return rng.randint(2, max_num_tokens)
        return max_num_tokens

    def _plan_pairs(self, rng: random.Random) -> array:
        """Run create_instances_from_document over sentence lengths; one row per instance."""
        lengths = self.corpus.sentence_lengths.tolist()
        starts = self.corpus.doc_starts.tolist()
        n_docs = len(starts) - 1
        plan = array("q")                    # 8 bytes per number, however many instances
        skipped = forced = 0
        for d in range(n_docs):
            first, stop = starts[d], starts[d + 1]
            if self.skip_single and stop - first == 1:
                skipped += 1
                continue
            target = self._target_length(rng)
            chunk_start, chunk_len, i = first, 0, first
            while i < stop:
                chunk_len += lengths[i]
                if i == stop - 1 or chunk_len >= target:
                    n_chunk = i + 1 - chunk_start
                    a_end = chunk_start + (rng.randint(1, n_chunk - 1) if n_chunk >= 2 else 1)
                    len_a = sum(lengths[chunk_start:a_end])
                    forced += n_chunk == 1
                    if n_chunk == 1 or rng.random() < NSP_RANDOM_PROBABILITY:
                        b0, b1 = self._random_b(rng, d, n_docs, starts, lengths, target - len_a)
                        plan.extend((chunk_start, a_end, b0, b1, 1))
                        i = a_end - 1                      # put the unused sentences back
                    else:
                        plan.extend((chunk_start, a_end, a_end, i + 1, 0))
                    chunk_start, chunk_len = i + 1, 0
                i += 1
        if skipped and self.epoch == 0:             # the same every epoch: said once
            log.warning("next-sentence pairs: skipped %d single-sentence documents of %d "
                        "(they cannot give an 'is next' pair)", skipped, n_docs)
        n = len(plan) // 5
        self.stats = {"instances": n, "random_next": sum(plan[4::5]), "forced_random_next": forced,
                      "skipped_single_sentence_documents": skipped}
        return plan

    @staticmethod
    def _random_b(rng: random.Random, d: int, n_docs: int, starts: list[int], lengths: list[int],
                  target_b: int) -> tuple[int, int]:
        """Sentences of a random other document from a random start until `target_b` tokens."""
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

    def _plan_segments(self, rng: random.Random) -> array:
        """No NSP: as many whole sentences of one document as fit the target length, one segment.

        A sentence that would overflow starts the next instance, so no text is
        lost except the tail of a single sentence longer than the limit.
        """
        lengths = self.corpus.sentence_lengths.tolist()
        starts = self.corpus.doc_starts.tolist()
        plan = array("q")                    # 8 bytes per number, however many instances
        for d in range(len(starts) - 1):
            target = self._target_length(rng)
            chunk_start, chunk_len = starts[d], 0
            for i in range(starts[d], starts[d + 1]):
                if chunk_len and chunk_len + lengths[i] > target:
                    plan.extend((chunk_start, i, 0, 0, IGNORE_INDEX))     # no B, no NSP label
                    chunk_start, chunk_len = i, 0
                chunk_len += lengths[i]
            plan.extend((chunk_start, starts[d + 1], 0, 0, IGNORE_INDEX))
        self.stats = {"instances": len(plan) // 5}
        return plan

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
