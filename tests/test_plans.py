"""Epoch plans: invariants of the vectorised NSP pair and segment plans, document splits,
plans stored in a plan_dir and loaded back without rebuilding, and pack_lengths."""
from __future__ import annotations

import numpy as np
import pytest

from bertkit.common.errors import InputError
from bertkit.data import build_shards
from bertkit.data.nsp import PretrainingDataset
from bertkit.data.packing import PackedDataset, item_lengths, pack_lengths
from test_data import unique_token_corpus, word_tokenizer

T = 32                                               # max_seq_length: target T - 3 = 29 tokens for pairs


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """300 documents of 1..10 sentences of 3..25 tokens (some single-sentence documents)."""
    text, docs = unique_token_corpus(n_docs=300, sentences=(1, 10), lengths=(3, 25), seed=7)
    root = tmp_path_factory.mktemp("plans")
    (root / "c.txt").write_text(text, encoding="utf-8")
    build_shards([root / "c.txt"], word_tokenizer(sum(len(s) for d in docs for s in d)), root / "s",
                 num_workers=1, chunk_bytes=8192)
    return root / "s"


def layout(ds):
    cum = np.concatenate([[0], np.cumsum(ds.corpus.sentence_lengths, dtype=np.int64)])
    doc_of = lambda s: np.searchsorted(ds.corpus.doc_starts, s, side="right") - 1
    return cum, doc_of


def check_pairs(ds):
    """Every invariant create_instances_from_document implies, on the whole plan of the epoch."""
    plan, starts = np.asarray(ds.plan), ds.corpus.doc_starts
    cum, doc_of = layout(ds)
    a0, a1, b0, b1, label = plan.T
    doc_a, doc_b = doc_of(a0), doc_of(b0)
    assert (a1 > a0).all() and (b1 > b0).all()                                  # A and B never empty
    assert (doc_of(a1 - 1) == doc_a).all() and (doc_of(b1 - 1) == doc_b).all()  # each inside one document
    assert np.isin(doc_a, ds.documents).all() and np.isin(doc_b, ds.documents).all()
    nxt, rnd = label == 0, label == 1
    assert (b0[nxt] == a1[nxt]).all() and (doc_b[nxt] == doc_a[nxt]).all()      # "is next": B right after A
    assert (doc_b[rnd] != doc_a[rnd]).all()                                      # random B: another document
    target = T - 3                                                               # short_seq_prob=0
    # a chunk grows until it reaches the target or its document ends, and not one sentence more
    ends_doc = b1 == starts[doc_a + 1]
    assert ((cum[b1] - cum[a0] >= target) | ends_doc)[nxt].all()
    assert (cum[b1 - 1] - cum[a0] < target)[nxt].all()
    # random B: from its start until target - len(A) tokens (or its document's end), at least one sentence
    want_b = target - (cum[a1] - cum[a0])
    assert ((cum[b1] - cum[b0] >= want_b) | (b1 == starts[doc_b + 1]))[rnd].all()
    assert ((cum[b1 - 1] - cum[b0] < want_b) | (b1 - b0 == 1))[rnd].all()
    # per document, chunks follow each other: the next starts after "is next" B, or at A's end (put back)
    consumed_to = np.where(nxt, b1, a1)
    same_doc = doc_a[1:] == doc_a[:-1]
    assert (a0[1:][same_doc] == consumed_to[:-1][same_doc]).all()
    assert (a0[np.r_[True, ~same_doc]] == starts[doc_a[np.r_[True, ~same_doc]]]).all()
    assert (consumed_to[np.r_[~same_doc, True]] == starts[doc_a[np.r_[~same_doc, True]] + 1]).all()
    return plan


def test_pair_plan_invariants_and_random_share(shards):
    ds = PretrainingDataset(shards, max_seq_length=T, short_seq_prob=0.0, seed=0)
    n_free = n_free_random = 0
    for epoch in range(4):
        ds.set_epoch(epoch)
        plan = check_pairs(ds)
        s = ds.stats
        assert s["instances"] == len(plan) and s["random_next"] == int(plan[:, 4].sum())
        assert s["skipped_single_sentence_documents"] == int((np.diff(ds.corpus.doc_starts) == 1).sum()) > 0
        n_free += s["instances"] - s["forced_random_next"]
        n_free_random += s["random_next"] - s["forced_random_next"]
    assert n_free > 2000 and abs(n_free_random / n_free - 0.5) < 0.05


def test_plans_are_a_function_of_seed_and_epoch(shards):
    a = PretrainingDataset(shards, max_seq_length=T, seed=3)
    b = PretrainingDataset(shards, max_seq_length=T, seed=3)
    first = np.array(a.plan)
    assert np.array_equal(first, b.plan) and a.stats == b.stats
    a.set_epoch(1)
    assert not np.array_equal(np.array(a.plan), first)
    a.set_epoch(0)
    assert np.array_equal(a.plan, first)
    assert not np.array_equal(PretrainingDataset(shards, max_seq_length=T, seed=4).plan, first)


def test_segment_plan_covers_every_document_in_order(shards):
    ds = PretrainingDataset(shards, max_seq_length=T, nsp=False, seed=0, short_seq_prob=0.0)
    plan, starts = np.asarray(ds.plan), ds.corpus.doc_starts
    cum, doc_of = layout(ds)
    a0, a1 = plan[:, 0], plan[:, 1]
    assert (plan[:, 4] == -100).all() and (plan[:, 2:4] == 0).all()
    assert a0[0] == 0 and (a0[1:] == a1[:-1]).all() and a1[-1] == starts[-1]    # every sentence once, in order
    assert (doc_of(a1 - 1) == doc_of(a0)).all()
    fits = cum[a1] - cum[a0] <= T - 2
    assert (fits | (a1 - a0 == 1)).all()                                         # over the limit: one long sentence
    grows = (a1 < starts[doc_of(a0) + 1])                                        # not at the document's end:
    assert (cum[a1 + grows] - cum[a0] > T - 2)[grows].all()                      # the next sentence would not fit


def test_train_and_heldout_split_the_documents(shards):
    full = PretrainingDataset(shards, max_seq_length=T, seed=0)
    kw = dict(max_seq_length=T, seed=0, short_seq_prob=0.0, held_out_every=5)
    train = PretrainingDataset(shards, split="train", **kw)
    held = PretrainingDataset(shards, split="heldout", **kw)
    n = full.corpus.num_documents
    assert full.num_documents == n == train.num_documents + held.num_documents and held.num_documents == n // 5
    assert set(held.documents.tolist()) == set(range(4, n, 5))
    assert not set(train.documents.tolist()) & set(held.documents.tolist())
    for ds in (train, held):
        for epoch in range(2):
            ds.set_epoch(epoch)
            check_pairs(ds)                                   # A and random B only from the split's documents
    packed = PackedDataset(PretrainingDataset(shards, max_seq_length=T, nsp=False, held_out_every=5,
                                              split="heldout"), max_seq_length=T)
    assert packed.num_documents == held.num_documents


def test_bad_splits_are_clear_errors(shards):
    with pytest.raises(InputError, match="split='test'"):
        PretrainingDataset(shards, split="test")
    with pytest.raises(InputError, match="held_out_every >= 2"):
        PretrainingDataset(shards, split="train", held_out_every=1)
    with pytest.raises(InputError, match="selects none"):
        PretrainingDataset(shards, split="heldout", held_out_every=10_000)


def test_plan_dir_stores_the_plan_once(shards, tmp_path, monkeypatch):
    built = PretrainingDataset(shards, max_seq_length=T, seed=0, plan_dir=tmp_path)
    built.set_epoch(1)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 4 and all(f.startswith("pairs-") for f in files)       # 2 epochs x (.plan.npy, .json)
    packed = PackedDataset(PretrainingDataset(shards, max_seq_length=T, nsp=False, seed=0, plan_dir=tmp_path),
                           max_seq_length=T, plan_dir=tmp_path)

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the plan was rebuilt instead of loaded")

    monkeypatch.setattr(PretrainingDataset, "_build_plan", no_rebuild)
    monkeypatch.setattr(PackedDataset, "_build_rows", no_rebuild)
    loaded = PretrainingDataset(shards, max_seq_length=T, seed=0, plan_dir=tmp_path)
    assert isinstance(loaded.plan, np.memmap)
    for epoch in (0, 1):
        built.set_epoch(epoch)
        loaded.set_epoch(epoch)
        assert np.array_equal(built.plan, loaded.plan) and built.stats == loaded.stats
        for i in (0, len(built) // 2, len(built) - 1):
            assert np.array_equal(built[i]["input_ids"], loaded[i]["input_ids"])
    again = PackedDataset(PretrainingDataset(shards, max_seq_length=T, nsp=False, seed=0, plan_dir=tmp_path),
                          max_seq_length=T, plan_dir=tmp_path)
    assert again.rows == packed.rows and again.fill == packed.fill and isinstance(again.rows.items, np.memmap)
    assert np.array_equal(again[3]["input_ids"], packed[3]["input_ids"])
    with pytest.raises(AssertionError, match="rebuilt"):                      # other settings: another plan
        PretrainingDataset(shards, max_seq_length=T, seed=1, plan_dir=tmp_path)


def test_pack_lengths_invariants_and_fill():
    rng = np.random.default_rng(0)
    # review-like lengths: most short, a long tail up to a full row
    lengths = np.clip(rng.lognormal(3.2, 0.7, 20_000).astype(np.int64) + 2, 3, 128)
    rows = pack_lengths(lengths, 128, seed=1)
    flat = np.concatenate([np.asarray(r) for r in rows])
    assert np.array_equal(np.sort(flat), np.arange(len(lengths)))                # every item exactly once
    sums = np.add.reduceat(lengths[rows.items], rows.offsets[:-1])
    assert sums.max() <= 128 and len(sums) == len(rows)
    assert lengths.sum() / (len(rows) * 128) > 0.98                              # rows come out full
    assert rows == pack_lengths(lengths, 128, seed=1) != pack_lengths(lengths, 128, seed=2)
    assert sorted(pack_lengths([128, 128, 1], 128, seed=0)) == [[0], [1], [2]]     # full rows stay alone
    assert len(pack_lengths([], 128)) == 0 and len(pack_lengths([4] * 64, 128)) == 2


def test_item_lengths_fast_path_matches_items(shards):
    base = PretrainingDataset(shards, max_seq_length=T, nsp=False, seed=0)
    assert item_lengths(base).tolist() == [len(base[i]["input_ids"]) for i in range(len(base))]
