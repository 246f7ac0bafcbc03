"""Sequence packing: every document once per epoch, rows within capacity, positions restarting,
attention within documents, and the same loss as the documents one per row."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from bertkit.common.errors import InputError
from bertkit.data.masking import MlmCollator
from bertkit.data.nsp import PretrainingDataset
from bertkit.data.packing import PackedCollator, PackedDataset, item_lengths, pack_lengths
from bertkit.data.shards import build_shards
from bertkit.modeling import BertForPreTraining
from bertkit.modeling.checkpoint import find_minilm
from bertkit.modeling.config import BertConfig
from bertkit.text.tokenizer import BertTokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return BertTokenizer.from_pretrained(find_minilm())


@pytest.fixture(scope="module")
def shards(tmp_path_factory, tokenizer):
    """120 short one-line documents (reviews-like), 4..20 words each."""
    rng = np.random.default_rng(0)
    words = "good bad film movie actor plot boring great music scene story ending long short fun".split()
    lines = [" ".join(rng.choice(words, rng.integers(4, 21))) + "." for _ in range(120)]
    root = tmp_path_factory.mktemp("packing")
    (root / "docs.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    build_shards([root / "docs.txt"], tokenizer, root / "shards", num_workers=1, one_doc_per_line=True)
    return root / "shards"


def test_pack_lengths_places_every_item_once_within_capacity():
    rng = np.random.default_rng(1)
    lengths = rng.integers(3, 60, 500)
    rows = pack_lengths(lengths, 128, seed=4)
    flat = sorted(i for row in rows for i in row)
    assert flat == list(range(500))
    assert all(sum(lengths[i] for i in row) <= 128 for row in rows)
    assert sum(lengths) / (len(rows) * 128) > 0.9                      # rows come out nearly full
    assert rows == pack_lengths(lengths, 128, seed=4) != pack_lengths(lengths, 128, seed=5)
    with pytest.raises(InputError, match="more than a row"):
        pack_lengths([200], 128)


def test_packed_rows_hold_whole_documents_with_restarting_positions(shards):
    base = PretrainingDataset(shards, max_seq_length=64, nsp=False, seed=0)
    assert item_lengths(base).tolist() == [len(base[i]["input_ids"]) for i in range(len(base))]
    packed = PackedDataset(base, max_seq_length=64, seed=0)
    assert len(packed) < len(base) / 2 and packed.fill > 0.8
    seen = []
    for r in range(len(packed)):
        row = packed[r]
        assert len(row["input_ids"]) == sum(row["document_lengths"]) <= 64
        at = 0
        for n in row["document_lengths"]:
            assert row["position_ids"][at:at + n].tolist() == list(range(n))
            assert row["input_ids"][at] == base.cls_id and row["input_ids"][at + n - 1] == base.sep_id
            at += n
        seen += packed.rows[r]
    assert sorted(seen) == list(range(len(base)))
    first = list(packed.rows)
    packed.set_epoch(1)
    assert packed.rows != first and sorted(i for row in packed.rows for i in row) == list(range(len(base)))


def test_nsp_datasets_are_refused(shards):
    with pytest.raises(InputError, match="nsp=False"):
        PackedDataset(PretrainingDataset(shards, max_seq_length=64, nsp=True, seed=0,
                                         skip_single_sentence_documents=False))


def test_packed_batch_gives_the_loss_of_the_documents_one_per_row(shards, tokenizer):
    """Same documents, same masked tokens: packed rows (block-diagonal attention, restarting
    positions) and one document per row give the same MLM loss (float rounding apart)."""
    base = PretrainingDataset(shards, max_seq_length=64, nsp=False, seed=0)
    packed = PackedDataset(base, max_seq_length=64, seed=0)
    collate = PackedCollator(MlmCollator(tokenizer, seed=0), unpad_multiple=32)
    rows = [packed[r] for r in range(3)]
    batch = collate(rows, generator=torch.Generator().manual_seed(0))
    # the same tokens, masks and labels, cut back into one document per row
    docs, labels = [], []
    for r, row in enumerate(rows):
        at = 0
        for n in row["document_lengths"]:
            docs.append(batch["input_ids"][r, at:at + n])
            labels.append(batch["labels"][r, at:at + n])
            at += n
    T = max(len(d) for d in docs)
    ids = torch.zeros(len(docs), T, dtype=torch.long)
    lab = torch.full((len(docs), T), -100)
    mask = torch.zeros_like(ids)
    for i, (d, l) in enumerate(zip(docs, labels)):
        ids[i, :len(d)], lab[i, :len(l)], mask[i, :len(d)] = d, l, 1
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                                          num_attention_heads=4, intermediate_size=64, max_position_embeddings=64))
    model.eval()
    with torch.no_grad():
        packed_loss = model(**batch).mlm_loss
        separate_loss = model(ids, attention_mask=mask, labels=lab).mlm_loss
    assert int((batch["labels"] != -100).sum()) == int((lab != -100).sum()) > 0
    torch.testing.assert_close(packed_loss, separate_loss, rtol=1e-5, atol=1e-5)
