"""Sequence packing: several short documents per row, each still seen as if it were alone.

A corpus of short documents (reviews, tweets: ~35 tokens) padded to rows of 128 spends
most of every row on padding.  Unpadding (the encoder's default) already skips the pad
tokens in the matrix products, but a batch still holds few real tokens, so a step does
little work for its fixed costs (kernel launches, the optimizer).  Packing fills rows:

    row:  [CLS] doc 1 [SEP] [CLS] doc 2 [SEP] [CLS] doc 3 [SEP] [PAD] ...

What keeps this correct for BERT:

* attention stays within each document: the batch carries an `Unpadding` plan with the
  documents' lengths (`unpad=` argument of the model): a block-diagonal attention, so no
  token sees another document (exactly what it would compute alone, up to float rounding
  of the attention sums);
* position ids restart at 0 for every document (`position_ids`), so a document's
  position embeddings are those it would have alone — and at inference, alone, it is
  in familiar territory;
* every document keeps its own [CLS] and [SEP]; masking (15% of each row's maskable
  tokens, never [CLS]/[SEP]) and the MLM loss (mean over masked tokens of the batch)
  are per token, so they do not care how documents share rows.
* NSP is left out: next-sentence prediction classifies a row's single [CLS] pair, and a
  packed row holds several documents.  Packing is for MLM-only pretraining (`nsp=False`,
  as RoBERTa found NSP unnecessary); the dataset refuses an NSP dataset.

    base = PretrainingDataset("shards/", max_seq_length=128, nsp=False, seed=0)
    rows = PackedDataset(base, max_seq_length=128, seed=0)
    collate = PackedCollator(MlmCollator(tokenizer, seed=0))
    Trainer(model, rows, collate, config).train()

Rows are planned per epoch from the documents' lengths (deterministic in seed and
epoch, like the base dataset) by best-fit decreasing, done in bulk per length (so it
takes seconds for tens of millions of documents, with no loop over them): the longest
documents open rows, shorter ones fill the tightest gaps.  Which documents of equal length
share a row, the order of the rows and of the documents in a row are drawn from the seed,
so every epoch mixes documents differently.  A document longer than a row is not split
(the base dataset already cut it).
"""
from __future__ import annotations

import hashlib
import os
from collections import abc
from typing import Any, Sequence

import numpy as np
import torch

from bertkit.common.errors import InputError
from bertkit.data.masking import MlmCollator
from bertkit.data.plans import cached_plan, settings_hash
from bertkit.modeling.layout import plan_unpadding


def _move(buckets: list[list[np.ndarray]], rows: np.ndarray, take: np.ndarray, free: int, length: int) -> None:
    """Put `rows` (each given `take` items of `length` out of `free` tokens) in the buckets of their new free space."""
    for n in np.unique(take):
        left = free - int(n) * length
        if left > 0:
            buckets[left].append(rows[take == n])


def _fill_rows(rows: np.ndarray, count: int, per_row: int) -> np.ndarray:
    """Items given to each of `rows` in turn: `per_row` each until `count` are placed."""
    k = min(len(rows), -(-count // per_row))
    take = np.full(k, per_row, dtype=np.int64)                                  # [k]
    if k:
        take[-1] = min(per_row, count - (k - 1) * per_row)
    return take


def _best_fit_slots(counts: np.ndarray, capacity: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Best-fit decreasing on a histogram of lengths: for each slot (item place) its row and length.

    Items of equal length are interchangeable, so they are placed in bulk: all items
    of length L (longest first) go to the open rows with the least free space that
    still fits L, each row taking as many as fit (what best fit does one item at a
    time), then to new rows of capacity // L items each.  Rows of equal free space are
    kept together (`buckets[f]` = their ids), so the work is over lengths and free
    sizes (at most capacity² steps), not over items.
    """
    buckets: list[list[np.ndarray]] = [[] for _ in range(capacity + 1)]          # free tokens -> row-id arrays
    slot_rows, slot_lengths, n_rows = [], [], 0
    for length in np.flatnonzero(counts[1:])[::-1] + 1:
        count, length = int(counts[length]), int(length)
        for free in range(length, capacity + 1):
            if count == 0:
                break
            if not buckets[free]:
                continue
            rows = np.concatenate(buckets[free])
            take = _fill_rows(rows, count, free // length)
            used, buckets[free] = rows[:len(take)], [rows[len(take):]] if len(take) < len(rows) else []
            _move(buckets, used, take, free, length)
            slot_rows.append(np.repeat(used, take))
            count -= int(take.sum())
        if count:                                                                # open new rows
            new = np.arange(n_rows, n_rows + -(-count // (capacity // length)), dtype=np.int64)
            take = _fill_rows(new, count, capacity // length)
            _move(buckets, new, take, capacity, length)
            slot_rows.append(np.repeat(new, take))
            n_rows += len(new)
        slot_lengths.append(np.full(int(counts[length]), length, dtype=np.int64))
    if counts[0]:                                                                # empty items: the first row
        slot_rows.append(np.zeros(int(counts[0]), np.int64))
        slot_lengths.append(np.zeros(int(counts[0]), np.int64))
        n_rows = max(n_rows, 1)
    empty = [np.zeros(0, np.int64)]
    return np.concatenate(slot_rows or empty), np.concatenate(slot_lengths or empty), n_rows


class PackedRows(abc.Sequence):
    """Ragged rows of item indices: row r = items[offsets[r]:offsets[r + 1]].

    Two flat int64 arrays (they can be memory-mapped from a plan file) behaving as a
    sequence of lists: `rows[r]` is a list of ints, `len(rows)` the number of rows.
    """

    def __init__(self, items: np.ndarray, offsets: np.ndarray):
        self.items, self.offsets = items, offsets                  # [N], [R + 1]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, r: int) -> list[int]:
        if not -len(self) <= r < len(self):
            raise IndexError(f"row {r} out of range for {len(self)} rows")
        r %= len(self)
        return self.items[self.offsets[r]:self.offsets[r + 1]].tolist()

    def __eq__(self, other) -> bool:
        if isinstance(other, PackedRows):
            return np.array_equal(self.items, other.items) and np.array_equal(self.offsets, other.offsets)
        return list(self) == list(other) if isinstance(other, abc.Sequence) else NotImplemented

    __hash__ = None


def pack_lengths(lengths: Sequence[int] | np.ndarray, capacity: int, seed: int = 0) -> PackedRows:
    """Group item indices into rows of at most `capacity` tokens (best-fit decreasing, in bulk).

    Every index appears in exactly one row.  Deterministic in (lengths, capacity, seed):
    the seed decides which of the items of equal length go to which row, the order of
    the rows and the order of the items in a row.
    """
    lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)                  # [N]
    if len(lengths) and lengths.max() > capacity:
        i = int(lengths.argmax())
        raise InputError(f"item {i} has {int(lengths[i])} tokens, more than a row of {capacity}; build the base "
                         f"dataset with max_seq_length <= {capacity}.")
    if len(lengths) and lengths.min() < 0:
        raise InputError("item lengths must be >= 0.")
    rng = np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFFFFFFFFFF, 0xFACC]))
    slot_rows, slot_lengths, n_rows = _best_fit_slots(np.bincount(lengths, minlength=capacity + 1), capacity)
    shuffled = rng.permutation(len(lengths))                                    # [N]
    small = np.uint16 if capacity < 2 ** 16 else np.int64                       # 16 bits: numpy sorts by radix
    by_length = shuffled[np.argsort(lengths[shuffled].astype(small), kind="stable")]   # by length, random within
    row_of = np.empty(len(lengths), dtype=np.int64)                             # [N] row of each item
    row_of[by_length] = slot_rows[np.argsort(slot_lengths.astype(small), kind="stable")]
    row_of = rng.permutation(n_rows)[row_of] if n_rows else row_of              # rows in random order
    items = shuffled[np.argsort(row_of[shuffled], kind="stable")]               # [N] grouped by row
    offsets = np.zeros(n_rows + 1, dtype=np.int64)                              # [R + 1]
    np.cumsum(np.bincount(row_of, minlength=n_rows), out=offsets[1:])
    return PackedRows(items, offsets)


def item_lengths(base) -> np.ndarray:
    """Token count of every item of `base` (fast for a PretrainingDataset without NSP)."""
    plan, corpus = getattr(base, "plan", None), getattr(base, "corpus", None)
    if plan is not None and corpus is not None and not getattr(base, "nsp", True):
        cumulative = np.concatenate([[0], np.cumsum(corpus.sentence_lengths, dtype=np.int64)])
        body = cumulative[plan[:, 1]] - cumulative[plan[:, 0]]                 # sentences a0..a1-1
        return np.minimum(body, base.max_seq_length - 2) + 2                     # + [CLS], [SEP]
    return np.array([len(base[i]["input_ids"]) for i in range(len(base))], dtype=np.int64)


class PackedDataset(torch.utils.data.Dataset):
    """Rows of several whole documents (items of `base`), at most `max_seq_length` tokens each.

    Items: `input_ids`, `token_type_ids`, `position_ids` (restarting per document) as int64
    numpy arrays, `document_lengths` (list of ints) and `mask_seed`.  `set_epoch(e)` sets
    the base dataset's epoch and plans the rows of epoch e.  `fill` is the share of row
    capacity holding real tokens in the current epoch.  `rows` is a `PackedRows`.

    plan_dir: store the rows of each epoch there once (two .npy files, items and row
    offsets, memory-mapped; see `bertkit.data.plans`) for every process and later run.
    """

    def __init__(self, base, max_seq_length: int = 128, seed: int = 0, plan_dir: str | os.PathLike | None = None):
        if getattr(base, "nsp", False):
            raise InputError("packing puts several documents in one row, and next-sentence prediction needs one "
                             "sentence pair per row: build the base dataset with nsp=False (MLM only).")
        self.base, self.max_seq_length, self.seed = base, max_seq_length, seed
        self.plan_dir = None if plan_dir is None else os.fspath(plan_dir)
        self.epoch = None
        self.set_epoch(0)

    @property
    def num_documents(self) -> int:
        """Documents of the base dataset (its split)."""
        return self.base.num_documents

    def set_epoch(self, epoch: int) -> None:
        if epoch == self.epoch:
            return
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)
        self.epoch = epoch
        stem = None if self.plan_dir is None else f"rows-{settings_hash(self._plan_settings())}-epoch{epoch}"
        arrays, stats = cached_plan(self.plan_dir, stem, ("items", "offsets"), lambda: self._build_rows(epoch))
        self.rows = PackedRows(arrays["items"], arrays["offsets"])
        self.fill = stats["fill"]

    def _plan_settings(self) -> dict:
        """What the rows depend on besides the epoch: the base's plan settings (or its item lengths)."""
        if hasattr(self.base, "plan_settings"):
            base = self.base.plan_settings()
        else:
            lengths = np.ascontiguousarray(item_lengths(self.base), dtype=np.int64)
            base = {"item_lengths_sha256": hashlib.sha256(lengths.tobytes()).hexdigest()}
        return {"base": base, "max_seq_length": self.max_seq_length, "seed": self.seed, "algorithm": "bfd-1"}

    def _build_rows(self, epoch: int) -> tuple[dict[str, np.ndarray], dict]:
        lengths = item_lengths(self.base)                                         # [N]
        rows = pack_lengths(lengths, self.max_seq_length, seed=self.seed * 1_000_003 + epoch)
        fill = float(lengths.sum()) / max(1, len(rows) * self.max_seq_length)
        return {"items": rows.items, "offsets": rows.offsets}, {"rows": len(rows), "fill": fill}

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        items = [self.base[j] for j in self.rows[index]]
        ids = [np.asarray(it["input_ids"], dtype=np.int64) for it in items]
        types = [np.asarray(it.get("token_type_ids", np.zeros(len(x))), dtype=np.int64) for it, x in zip(items, ids)]
        seeds = [int(it.get("mask_seed", j)) for it, j in zip(items, self.rows[index])]
        return {"input_ids": np.concatenate(ids), "token_type_ids": np.concatenate(types),
                "position_ids": np.concatenate([np.arange(len(x), dtype=np.int64) for x in ids]),
                "document_lengths": [len(x) for x in ids],
                "mask_seed": int(np.random.SeedSequence(seeds).generate_state(1, np.uint64)[0] >> 2)}


class PackedCollator:
    """Collate packed rows: MLM masking as `MlmCollator`, plus `position_ids` [B, T] and the
    block-diagonal layout (`unpad`, an `Unpadding` plan with the documents' lengths).

    unpad_multiple: round the number of real tokens up to this multiple (static shapes on
    a GPU; 1 = exact).
    """

    def __init__(self, mlm: MlmCollator, unpad_multiple: int = 1):
        self.mlm, self.unpad_multiple = mlm, unpad_multiple

    def __call__(self, examples: Sequence[dict[str, Any]], generator: torch.Generator | None = None) -> dict:
        batch = self.mlm(examples, generator=generator)
        B, T = batch["input_ids"].shape
        position_ids = torch.zeros(B, T, dtype=torch.long)                       # [B, T]
        for row, e in enumerate(examples):
            position_ids[row, :len(e["position_ids"])] = torch.as_tensor(e["position_ids"])
        batch["position_ids"] = position_ids
        batch["unpad"] = plan_unpadding(batch["attention_mask"], multiple=self.unpad_multiple,
                                        document_lengths=[list(e["document_lengths"]) for e in examples])
        return batch
