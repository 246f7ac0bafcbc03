"""Dynamic masked-language-model masking, done when a batch is made.

The masked LM task of BERT: hide some tokens and ask the model to recover them.
For each sequence:

- choose 15% of the maskable tokens (never [CLS], [SEP], [PAD] or [MASK]);
  as in the original recipe this is an exact count, round(0.15 x n), at least 1;
- of the chosen tokens, 80% become [MASK], 10% a random token, 10% stay as they
  are (so the model cannot learn "only [MASK] positions matter", and must keep
  a good representation of every input token);
- `labels` holds the original id at chosen positions and IGNORE_INDEX (-100)
  elsewhere, so the loss is computed only where something was chosen.

Whole-word masking (`whole_word_mask=True`) chooses *words* instead of tokens:
a WordPiece continuation ("##ing") is always chosen together with the pieces
before it. Words are taken in random order, skipping a word that would go past
the 15% budget, as in google-research/bert; the 80/10/10 draw is still made per token.

Masking at batch time ("dynamic", as RoBERTa) gives every epoch new masks; the
original BERT masked once when writing its data files (x10 duplicates).

Random numbers come from `torch.Generator`s. When an example carries a
`mask_seed` (PretrainingDataset adds one), its mask depends only on that seed
and the collator's seed — not on the batch it lands in, nor on the DataLoader
worker — so a resumed run sees exactly the masks it would have seen.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np
import torch

from bertkit.common.defaults import IGNORE_INDEX, MASK_REPLACE, MLM_PROBABILITY, RANDOM_REPLACE
from bertkit.common.errors import InputError

_BRACKETED = re.compile(r"^\[[^\]]+\]$")    # [PAD], [unused12], [CLS] ... are never random replacements


class MlmCollator:
    """Pad a list of examples into a batch and apply dynamic MLM masking.

    Args:
        tokenizer: a `BertTokenizer` (gives the special ids and the vocabulary).
        mlm_probability: share of maskable tokens to choose per sequence (0.15).
        whole_word_mask: choose whole words (all their WordPieces) instead of single tokens.
        mask_replace_prob / random_replace_prob: of the chosen tokens, the share
            replaced by [MASK] (0.8) and by a random token (0.1); the rest stay.
        max_predictions_per_seq: cap on chosen tokens per sequence (original BERT: 20 at
            length 128, 80 at 512); None for no cap.
        pad_to_multiple_of: pad the batch length up to a multiple of this (8 suits tensor cores).
        seed: seed of the collator's generator; also mixed into every `mask_seed`.

    Call with a list of dicts having `input_ids` (and optionally `token_type_ids`,
    `next_sentence_label`, `mask_seed`); lists, numpy arrays or tensors. Returns a
    dict of int64 tensors: input_ids [B,T], token_type_ids [B,T], attention_mask
    [B,T], labels [B,T] (IGNORE_INDEX = not chosen), and next_sentence_label [B] when given.
    """

    def __init__(self, tokenizer, mlm_probability: float = MLM_PROBABILITY, whole_word_mask: bool = False,
                 mask_replace_prob: float = MASK_REPLACE, random_replace_prob: float = RANDOM_REPLACE,
                 max_predictions_per_seq: int | None = None, pad_to_multiple_of: int | None = None,
                 seed: int = 0):
        if not 0.0 < mlm_probability < 1.0:
            raise InputError(f"mlm_probability={mlm_probability} must be in (0, 1); BERT uses {MLM_PROBABILITY}.")
        if mask_replace_prob < 0 or random_replace_prob < 0 or mask_replace_prob + random_replace_prob > 1:
            raise InputError("mask_replace_prob and random_replace_prob must be >= 0 and sum to at most 1 "
                             f"(got {mask_replace_prob} and {random_replace_prob}).")
        self.mlm_probability = mlm_probability
        self.whole_word_mask = whole_word_mask
        self.mask_replace_prob = mask_replace_prob
        self.random_replace_prob = random_replace_prob
        self.max_predictions = max_predictions_per_seq
        self.pad_to_multiple_of = pad_to_multiple_of
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self._worker_seeded = None

        self.pad_id = tokenizer.pad_token_id
        self.mask_id = tokenizer.mask_token_id
        tokens = [tokenizer.ids_to_tokens[i] for i in range(len(tokenizer.ids_to_tokens))]
        unmaskable = {tokenizer.cls_token_id, tokenizer.sep_token_id, self.pad_id, self.mask_id}
        self.maskable = torch.ones(len(tokens), dtype=torch.bool)                 # [V]
        self.maskable[sorted(unmaskable)] = False
        # True for "##" continuation pieces: they belong to the word before them.
        self.continuation = torch.tensor([t.startswith("##") for t in tokens], dtype=torch.bool)   # [V]
        special = set(getattr(tokenizer, "all_special_ids", [])) | unmaskable
        self.replacement_ids = torch.tensor(
            [i for i, t in enumerate(tokens) if i not in special and not _BRACKETED.match(t)], dtype=torch.long)
        if len(self.replacement_ids) == 0:
            raise InputError("the vocabulary has no ordinary tokens to use as random replacements.")

    # -------------------------------------------------------------- batching

    def __call__(self, examples: Sequence[dict[str, Any]],
                 generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Collate and mask. `generator` (optional) replaces the collator's own one for
        examples without a `mask_seed` (the Trainer passes one seeded from the step)."""
        batch = self.pad([_as_array(e["input_ids"]) for e in examples],
                         [_as_array(e["token_type_ids"]) if "token_type_ids" in e else None for e in examples])
        batch["input_ids"], batch["labels"] = self.mask(batch["input_ids"], batch["attention_mask"],
                                                        self._row_seeds(examples, generator))
        if all("next_sentence_label" in e for e in examples):
            batch["next_sentence_label"] = torch.tensor([int(e["next_sentence_label"]) for e in examples])
        return batch

    def pad(self, ids: list[np.ndarray], types: list[np.ndarray | None]) -> dict[str, torch.Tensor]:
        """Right-pad to the longest sequence (rounded up to pad_to_multiple_of)."""
        longest = max(len(x) for x in ids)
        if self.pad_to_multiple_of:
            longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = np.full((len(ids), longest), self.pad_id, dtype=np.int64)           # [B,T]
        token_type_ids = np.zeros((len(ids), longest), dtype=np.int64)                  # [B,T]
        attention_mask = np.zeros((len(ids), longest), dtype=np.int64)                  # [B,T]
        for row, (x, t) in enumerate(zip(ids, types)):
            input_ids[row, :len(x)] = x
            attention_mask[row, :len(x)] = 1
            if t is not None:
                token_type_ids[row, :len(t)] = t
        return {"input_ids": torch.from_numpy(input_ids), "token_type_ids": torch.from_numpy(token_type_ids),
                "attention_mask": torch.from_numpy(attention_mask)}

    def _row_seeds(self, examples: Sequence[dict[str, Any]], generator: torch.Generator | None) -> list[int]:
        """Per-example seeds: from `mask_seed` when given, else drawn from a generator."""
        if generator is None:
            info = torch.utils.data.get_worker_info()
            if info is not None and self._worker_seeded != info.id:   # distinct streams per DataLoader worker
                self.generator.manual_seed(self.seed * 1000003 + info.id + 1)
                self._worker_seeded = info.id
            generator = self.generator
        drawn = torch.randint(0, 2**62, (len(examples),), generator=generator).tolist()
        return [(int(e["mask_seed"]) ^ (self.seed * 0x9E3779B97F4A7C15)) % 2**62 if "mask_seed" in e else s
                for e, s in zip(examples, drawn)]

    # -------------------------------------------------------------- masking

    def mask(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
             seeds: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask a padded batch; return (masked input_ids [B,T], labels [B,T]).

        Row b draws its random numbers from a generator seeded with seeds[b], only
        as many as its own length: the mask of a row does not depend on the rest
        of the batch. The selection itself runs on the whole batch at once.
        """
        B, T = input_ids.shape
        lengths = attention_mask.sum(1).tolist()
        # three uniforms per token: the order in which tokens are chosen, the action
        # (< 0.8 [MASK], < 0.9 random token, else keep) and which random token
        uniforms = torch.ones(3, B, T)                                               # [3,B,T]
        generators = []
        for row, (seed, n) in enumerate(zip(seeds, lengths)):
            g = torch.Generator().manual_seed(int(seed))
            uniforms[:, row, :n] = torch.rand(3, n, generator=g)
            generators.append(g)
        scores, action = uniforms[0], uniforms[1]                                    # [B,T] each
        n_replacements = len(self.replacement_ids)
        picks = (uniforms[2] * n_replacements).long().clamp(max=n_replacements - 1)  # [B,T]

        maskable = self.maskable[input_ids] & attention_mask.bool()                  # [B,T]
        n_maskable = maskable.sum(1)                                                 # [B]
        budget = torch.round(n_maskable * self.mlm_probability).long().clamp(min=1)  # [B] exact count per row
        if self.max_predictions:
            budget = budget.clamp(max=self.max_predictions)
        budget = torch.where(n_maskable > 0, budget, 0)
        if self.whole_word_mask:
            chosen = self._choose_words(input_ids, maskable, budget, generators)
        else:
            scores = scores.masked_fill(~maskable, 2.0)        # never chosen: sorted after every real score
            rank = scores.argsort(dim=1).argsort(dim=1)        # 0 = chosen first                 [B,T]
            chosen = rank < budget[:, None]

        labels = torch.where(chosen, input_ids, IGNORE_INDEX)
        to_mask = chosen & (action < self.mask_replace_prob)
        to_random = chosen & (action >= self.mask_replace_prob) & \
            (action < self.mask_replace_prob + self.random_replace_prob)
        out = torch.where(to_mask, self.mask_id, input_ids)
        out = torch.where(to_random, self.replacement_ids[picks], out)
        return out, labels

    def _choose_words(self, input_ids: torch.Tensor, maskable: torch.Tensor, budget: torch.Tensor,
                      generators: list[torch.Generator]) -> torch.Tensor:
        """Whole words in random order, skipping any that would exceed the row's budget of tokens."""
        ids, can = input_ids.numpy(), maskable.numpy()                              # [B,T]
        cont = self.continuation.numpy()[ids] & can                                 # "##" piece  [B,T]
        prev = np.zeros_like(can)
        prev[:, 1:] = can[:, :-1]
        starts = can & ~(cont & prev)                                               # a word starts here
        word_of = np.cumsum(starts, axis=1) - 1                                     # word index  [B,T]
        n_words = starts.sum(1)
        chosen_words = np.zeros((len(ids), max(1, int(n_words.max(initial=0)))), dtype=bool)
        for row, g in enumerate(generators):
            k, limit = int(n_words[row]), int(budget[row])
            if k == 0:
                continue
            sizes = np.bincount(word_of[row][can[row]], minlength=k).tolist()
            total = 0
            for w in torch.randperm(k, generator=g).tolist():
                if total >= limit:
                    break
                if total + sizes[w] <= limit:
                    chosen_words[row, w] = True
                    total += sizes[w]
        chosen = can & np.take_along_axis(chosen_words, np.clip(word_of, 0, None), axis=1)
        return torch.from_numpy(chosen)


def _as_array(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.numpy()
    return np.asarray(x)
