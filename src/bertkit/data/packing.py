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
epoch, like the base dataset), by first-fit over a shuffled order with a window of open
rows; a document longer than a row is not split (the base dataset already cut it).
"""
from __future__ import annotations

import random
from typing import Any, Sequence

import numpy as np
import torch

from bertkit.common.errors import InputError
from bertkit.data.masking import MlmCollator
from bertkit.modeling.layout import plan_unpadding

OPEN_ROWS = 32        # rows kept open for first-fit; more fills rows a little better, at planning cost


def pack_lengths(lengths: Sequence[int], capacity: int, seed: int = 0, open_rows: int = OPEN_ROWS) -> list[list[int]]:
    """Group item indices into rows of at most `capacity` tokens (first fit, shuffled order).

    Every index appears in exactly one row.  Deterministic in (lengths, capacity, seed).
    """
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    rows: list[list[int]] = []
    open_: list[tuple[int, list[int]]] = []         # (free tokens, items) of rows still being filled
    for i in order:
        n = int(lengths[i])
        if n > capacity:
            raise InputError(f"item {i} has {n} tokens, more than a row of {capacity}; build the base dataset "
                             f"with max_seq_length <= {capacity}.")
        slot = next((k for k, (free, _) in enumerate(open_) if free >= n), None)
        if slot is None:
            open_.append((capacity - n, [i]))
            if len(open_) > open_rows:
                rows.append(open_.pop(0)[1])          # the oldest open row is done
        else:
            free, items = open_[slot]
            items.append(i)
            open_[slot] = (free - n, items)
    return rows + [items for _, items in open_]


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
    capacity holding real tokens in the current epoch.
    """

    def __init__(self, base, max_seq_length: int = 128, seed: int = 0, open_rows: int = OPEN_ROWS):
        if getattr(base, "nsp", False):
            raise InputError("packing puts several documents in one row, and next-sentence prediction needs one "
                             "sentence pair per row: build the base dataset with nsp=False (MLM only).")
        self.base, self.max_seq_length, self.seed, self.open_rows = base, max_seq_length, seed, open_rows
        self.epoch = None
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        if epoch == self.epoch:
            return
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)
        self.epoch = epoch
        lengths = item_lengths(self.base)
        self.rows = pack_lengths(lengths, self.max_seq_length, seed=self.seed * 1_000_003 + epoch,
                                 open_rows=self.open_rows)
        self.fill = float(lengths.sum()) / max(1, len(self.rows) * self.max_seq_length)

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
