"""Dynamic MLM masking: rates (15%, 80/10/10), specials, whole words, padding, seeds."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bertkit.common.errors import InputError
from bertkit.data.masking import MlmCollator
from bertkit.text.tokenizer import BertTokenizer

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["the", "cat", "sat", "on", "mat", "play", "run", "dog", "a", "big"]
PIECES = ["##ing", "##s", "##ed", "##er"]
UNUSED = ["[unused0]", "[unused1]"]


@pytest.fixture(scope="module")
def tok():
    return BertTokenizer(SPECIALS + UNUSED + WORDS + PIECES)


def random_examples(tok, n, rng, min_len=5, max_len=60, with_pieces=True):
    """Examples shaped like pretraining pairs: [CLS] A [SEP] B [SEP] with random ordinary ids."""
    ordinary = [tok.vocab[w] for w in WORDS] + ([tok.vocab[p] for p in PIECES] if with_pieces else [])
    words = [tok.vocab[w] for w in WORDS]
    out = []
    for _ in range(n):
        length = int(rng.integers(min_len, max_len))
        ids = [int(rng.choice(words))] + [int(rng.choice(ordinary)) for _ in range(length - 1)]
        cut = int(rng.integers(1, length))
        input_ids = [tok.cls_token_id] + ids[:cut] + [tok.sep_token_id] + ids[cut:] + [tok.sep_token_id]
        types = [0] * (cut + 2) + [1] * (length - cut + 1)
        out.append({"input_ids": input_ids, "token_type_ids": types, "next_sentence_label": int(rng.integers(0, 2))})
    return out


def binomial_ok(k, n, p, sigmas=5.0):
    """k successes of n trials are within `sigmas` standard deviations of n*p."""
    return abs(k - n * p) <= sigmas * math.sqrt(n * p * (1 - p)) + 1


def test_batch_shapes_padding_and_labels(tok):
    examples = random_examples(tok, 16, np.random.default_rng(0))
    batch = MlmCollator(tok, seed=0)(examples)
    longest = max(len(e["input_ids"]) for e in examples)
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask", "labels", "next_sentence_label"}
    for key in ("input_ids", "token_type_ids", "attention_mask", "labels"):
        assert batch[key].shape == (16, longest) and batch[key].dtype == torch.long
    for row, e in enumerate(examples):
        n = len(e["input_ids"])
        assert batch["attention_mask"][row, :n].all() and not batch["attention_mask"][row, n:].any()
        assert (batch["input_ids"][row, n:] == tok.pad_token_id).all()
        assert (batch["labels"][row, n:] == -100).all()
        assert batch["token_type_ids"][row, :n].tolist() == e["token_type_ids"]
    assert batch["next_sentence_label"].tolist() == [e["next_sentence_label"] for e in examples]


def test_pad_to_multiple_of_8(tok):
    examples = random_examples(tok, 4, np.random.default_rng(1), min_len=9, max_len=10)   # length 12
    batch = MlmCollator(tok, pad_to_multiple_of=8)(examples)
    assert batch["input_ids"].shape[1] == 16


def test_labels_hold_original_ids_and_specials_never_chosen(tok):
    examples = random_examples(tok, 200, np.random.default_rng(2))
    batch = MlmCollator(tok, seed=1)(examples)
    special = {tok.cls_token_id, tok.sep_token_id, tok.pad_token_id}
    for row, e in enumerate(examples):
        original = torch.tensor(e["input_ids"])
        n = len(original)
        labels, masked = batch["labels"][row, :n], batch["input_ids"][row, :n]
        chosen = labels != -100
        assert (labels[chosen] == original[chosen]).all()
        assert (masked[~chosen] == original[~chosen]).all()          # nothing changes outside chosen positions
        for pos in torch.nonzero(chosen).squeeze(1).tolist():
            assert e["input_ids"][pos] not in special


def test_exact_15_percent_per_sequence(tok):
    examples = random_examples(tok, 300, np.random.default_rng(3))
    batch = MlmCollator(tok, seed=2)(examples)
    total_chosen = total_maskable = 0
    for row, e in enumerate(examples):
        n_maskable = len(e["input_ids"]) - 3                              # minus [CLS] and two [SEP]
        chosen = int((batch["labels"][row] != -100).sum())
        assert chosen == max(1, round(n_maskable * 0.15))
        total_chosen += chosen
        total_maskable += n_maskable
    assert abs(total_chosen / total_maskable - 0.15) < 0.01


def test_80_10_10_split(tok):
    examples = random_examples(tok, 2000, np.random.default_rng(4))
    batch = MlmCollator(tok, seed=3)(examples)
    chosen = batch["labels"] != -100
    n = int(chosen.sum())
    now = batch["input_ids"][chosen]
    original = batch["labels"][chosen]
    n_mask = int((now == tok.mask_token_id).sum())
    n_same = int((now == original).sum())
    n_random = n - n_mask - n_same
    # a random replacement can draw the original token: P = 0.1 / |ordinary vocab| per chosen token
    ordinary = len(WORDS) + len(PIECES)
    assert n > 8_000
    assert binomial_ok(n_mask, n, 0.8)
    assert binomial_ok(n_same, n, 0.1 + 0.1 / ordinary)
    assert binomial_ok(n_random, n, 0.1 - 0.1 / ordinary)


def test_random_replacements_are_ordinary_tokens(tok):
    examples = random_examples(tok, 500, np.random.default_rng(5))
    batch = MlmCollator(tok, seed=4, mask_replace_prob=0.0, random_replace_prob=1.0)(examples)
    chosen = batch["labels"] != -100
    replaced = batch["input_ids"][chosen]
    forbidden = {tok.vocab[t] for t in SPECIALS + UNUSED}
    assert not set(replaced.tolist()) & forbidden
    # all ordinary tokens get drawn
    assert set(replaced.tolist()) == {tok.vocab[t] for t in WORDS + PIECES}


def word_groups(tok, ids):
    """Lists of positions of whole words ([CLS]/[SEP] excluded) using the ## prefix."""
    groups, special = [], {tok.cls_token_id, tok.sep_token_id, tok.pad_token_id}
    for pos, i in enumerate(ids):
        if i in special:
            continue
        if tok.ids_to_tokens[i].startswith("##") and groups and groups[-1][-1] == pos - 1:
            groups[-1].append(pos)
        else:
            groups.append([pos])
    return groups


def test_whole_word_masking_keeps_words_intact(tok):
    examples = random_examples(tok, 1000, np.random.default_rng(6))
    batch = MlmCollator(tok, whole_word_mask=True, seed=5)(examples)
    multi_piece_words_chosen = 0
    total_chosen = total_maskable = 0
    for row, e in enumerate(examples):
        chosen = (batch["labels"][row] != -100).tolist()
        n_maskable = len(e["input_ids"]) - 3
        budget = max(1, round(n_maskable * 0.15))
        n_chosen = sum(chosen)
        assert n_chosen <= budget
        total_chosen += n_chosen
        total_maskable += n_maskable
        for group in word_groups(tok, e["input_ids"]):
            flags = {chosen[p] for p in group}
            assert len(flags) == 1, f"word at {group} partly masked"
            multi_piece_words_chosen += len(group) > 1 and chosen[group[0]]
    assert multi_piece_words_chosen > 100
    assert 0.13 < total_chosen / total_maskable < 0.16


def test_whole_word_80_10_10_is_per_token(tok):
    examples = random_examples(tok, 1500, np.random.default_rng(7))
    batch = MlmCollator(tok, whole_word_mask=True, seed=6)(examples)
    chosen = batch["labels"] != -100
    n = int(chosen.sum())
    assert binomial_ok(int((batch["input_ids"][chosen] == tok.mask_token_id).sum()), n, 0.8)


def test_max_predictions_per_seq(tok):
    examples = random_examples(tok, 50, np.random.default_rng(8), min_len=100, max_len=120)
    batch = MlmCollator(tok, max_predictions_per_seq=5)(examples)
    assert ((batch["labels"] != -100).sum(1) == 5).all()


def test_seeded_reproducibility(tok):
    examples = random_examples(tok, 32, np.random.default_rng(9))
    a = MlmCollator(tok, seed=7)(examples)
    b = MlmCollator(tok, seed=7)(examples)
    c = MlmCollator(tok, seed=8)(examples)
    for key in a:
        assert torch.equal(a[key], b[key])
    assert not torch.equal(a["labels"], c["labels"])
    collate = MlmCollator(tok, seed=7)
    first, second = collate(examples), collate(examples)          # the generator moves on between batches
    assert not torch.equal(first["labels"], second["labels"])


def test_mask_seed_makes_masks_independent_of_batch(tok):
    examples = random_examples(tok, 16, np.random.default_rng(10))
    for i, e in enumerate(examples):
        e["mask_seed"] = 1000 + i
    collate = MlmCollator(tok, seed=3)
    whole = collate(examples)
    again = collate(list(reversed(examples[:8])))                 # other batch, other order, later call
    for row, e in enumerate(reversed(examples[:8])):
        src = 7 - row
        n = len(e["input_ids"])
        assert torch.equal(again["labels"][row, :n], whole["labels"][src, :n])
        assert torch.equal(again["input_ids"][row, :n], whole["input_ids"][src, :n])
    other_seed = MlmCollator(tok, seed=4)(examples)
    assert not torch.equal(other_seed["labels"], whole["labels"])


def test_dataloader_workers_get_different_masks(tok):
    examples = random_examples(tok, 8, np.random.default_rng(11), min_len=40, max_len=41)
    same = [examples[0]] * 8                                      # identical inputs in every batch
    loader = torch.utils.data.DataLoader(same, batch_size=4, num_workers=2, collate_fn=MlmCollator(tok, seed=1))
    b1, b2 = list(loader)
    assert not torch.equal(b1["labels"], b2["labels"])


def test_tensor_and_numpy_inputs(tok):
    examples = random_examples(tok, 4, np.random.default_rng(12))
    as_np = [{k: np.asarray(v) for k, v in e.items()} for e in examples]
    as_pt = [{k: torch.as_tensor(v) for k, v in e.items()} for e in examples]
    a, b = MlmCollator(tok, seed=0)(as_np), MlmCollator(tok, seed=0)(as_pt)
    assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["labels"], b["labels"])


def test_bad_arguments(tok):
    with pytest.raises(InputError, match="mlm_probability"):
        MlmCollator(tok, mlm_probability=1.5)
    with pytest.raises(InputError, match="sum to at most 1"):
        MlmCollator(tok, mask_replace_prob=0.9, random_replace_prob=0.2)


def test_generator_argument_as_the_trainer_passes_it(tok):
    examples = random_examples(tok, 16, np.random.default_rng(13))
    collate = MlmCollator(tok, seed=0)
    a = collate(examples, generator=torch.Generator().manual_seed(5))
    b = collate(examples, generator=torch.Generator().manual_seed(5))
    c = collate(examples, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a["labels"], b["labels"]) and not torch.equal(a["labels"], c["labels"])
