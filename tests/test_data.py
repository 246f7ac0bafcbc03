"""Pretraining data: corpus reading, sharding (1 and 2 processes), NSP instances."""
from __future__ import annotations

import json
import logging
import math
import random

import numpy as np
import pytest
import torch

from bertkit.common.errors import InputError, NotFoundError, OutputExistsError
from bertkit.data import MlmCollator, PretrainingDataset, ShardedCorpus, build_shards, truncate_seq_pair
from bertkit.text.corpus import CorpusError, document_ranges, iter_documents, split_sentences
from bertkit.text.tokenizer import BertTokenizer

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def unique_token_corpus(n_docs=200, sentences=(2, 12), lengths=(3, 30), seed=0, first=0):
    """Documents where every token is a distinct word t<k>, k increasing through the corpus.

    Token ids then reveal where a token came from: consecutive ids = consecutive text.
    Returns (text, documents as lists of sentences of k's).
    """
    rng = random.Random(seed)
    k, docs = first, []
    for _ in range(n_docs):
        doc = []
        for _ in range(rng.randint(*sentences)):
            n = rng.randint(*lengths)
            doc.append(list(range(k, k + n)))
            k += n
        docs.append(doc)
    text = "\n\n".join("\n".join(" ".join(f"t{i}" for i in s) for s in doc) for doc in docs) + "\n"
    return text, docs


def word_tokenizer(n_words, first=0):
    """A tokenizer whose vocab is the specials then t<first>..t<first+n_words-1> (id of t<k> = k - first + 5)."""
    return BertTokenizer(SPECIALS + [f"t{i}" for i in range(first, first + n_words)])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    text, docs = unique_token_corpus()
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    n_tokens = sum(len(s) for d in docs for s in d)
    return path, docs, word_tokenizer(n_tokens)


@pytest.fixture(scope="module")
def shards(corpus, tmp_path_factory):
    path, docs, tok = corpus
    out = tmp_path_factory.mktemp("shards")
    build_shards([path], tok, out, num_workers=1, chunk_bytes=4096)
    return out


# ------------------------------------------------------------------ corpus

def test_split_sentences():
    assert split_sentences("It rained. We stayed in! Did you?  Yes") == ["It rained.", "We stayed in!", "Did you?", "Yes"]
    assert split_sentences("비가 왔다. 집에 있었다") == ["비가 왔다.", "집에 있었다"]
    assert split_sentences("3.14 is pi") == ["3.14 is pi"]
    assert split_sentences("   ") == []


def test_blank_line_documents(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes("a b.\r\nc d.\r\n\r\n  \n\n\ne f.\n \ng.\nh.".encode())
    assert list(iter_documents(path)) == [["a b.", "c d."], ["e f."], ["g.", "h."]]


def test_byte_order_mark_is_dropped(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffFirst line.\nSecond.\n".encode("utf-8"))
    assert list(iter_documents(path)) == [["First line.", "Second."]]


def test_one_document_per_line(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("First one. Second one!\n\nonly one\n", encoding="utf-8")
    assert list(iter_documents(path, one_doc_per_line=True)) == [["First one.", "Second one!"], ["only one"]]


@pytest.mark.parametrize("one_doc_per_line", [False, True])
@pytest.mark.parametrize("chunk", [1, 50, 333, 10_000])
def test_byte_ranges_never_cut_a_document(tmp_path, one_doc_per_line, chunk):
    text, _ = unique_token_corpus(n_docs=40, seed=chunk)
    path = tmp_path / "c.txt"
    path.write_text(text, encoding="utf-8")
    whole = list(iter_documents(path, one_doc_per_line))
    ranges = document_ranges(path, chunk, one_doc_per_line)
    assert ranges[0][0] == 0 and ranges[-1][1] == path.stat().st_size
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    pieces = [d for start, end in ranges for d in iter_documents(path, one_doc_per_line, start, end)]
    assert pieces == whole
    if chunk < 1000:
        assert len(ranges) > 1


def test_empty_and_missing_files_name_the_file(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(CorpusError, match="empty.txt: the file is empty"):
        list(iter_documents(empty))
    with pytest.raises(CorpusError, match="nope.txt: no such file"):
        build_shards([tmp_path / "nope.txt"], word_tokenizer(3), tmp_path / "out")


def test_blank_only_file_is_an_error(tmp_path):
    path = tmp_path / "blank.txt"
    path.write_text("\n\n   \n", encoding="utf-8")
    with pytest.raises(CorpusError, match="only blank lines"):
        build_shards([path], word_tokenizer(3), tmp_path / "out", num_workers=1)


def test_non_utf8_names_file_line_and_byte(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("t0 t1\n\nt2\n".encode() + "caf\xe9\n".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin.txt: line 4 \(byte 13\) is not valid UTF-8"):
        build_shards([path], word_tokenizer(3), tmp_path / "out", num_workers=1)


# ------------------------------------------------------------------ shards

def test_shards_hold_every_sentence(corpus, shards):
    path, docs, tok = corpus
    manifest = json.loads((shards / "manifest.json").read_text())
    assert manifest["dtype"] == "uint16"
    assert len(manifest["shards"]) > 5                               # chunk_bytes=4096 gave many shards
    assert manifest["documents"] == len(docs)
    assert manifest["sentences"] == sum(len(d) for d in docs)
    assert manifest["tokens"] == sum(len(s) for d in docs for s in d)
    assert manifest["special_ids"]["cls"] == tok.cls_token_id
    assert (shards / "tokenizer" / "vocab.txt").exists()
    loaded = ShardedCorpus(shards)
    assert loaded.num_documents == len(docs)
    for d in (0, 1, len(docs) // 2, len(docs) - 1):
        got = [s.tolist() for s in loaded.document(d)]
        assert got == [[k + 5 for k in s] for s in docs[d]]


def test_two_workers_write_the_same_data(corpus, shards, tmp_path):
    path, docs, tok = corpus
    build_shards([path], tok, tmp_path, num_workers=2, chunk_bytes=7000)     # other workers, other cuts
    one, two = ShardedCorpus(shards), ShardedCorpus(tmp_path)
    assert len(one.tokens) != len(two.tokens)
    assert np.array_equal(np.concatenate(one.tokens), np.concatenate(two.tokens))
    assert np.array_equal(one.doc_starts, two.doc_starts)
    assert np.array_equal(one.sentence_lengths, two.sentence_lengths)
    # so the training data does not depend on how the shards were built
    a, b = PretrainingDataset(shards, max_seq_length=64), PretrainingDataset(tmp_path, max_seq_length=64)
    assert len(a) == len(b)
    for i in range(0, len(a), 7):
        assert np.array_equal(a[i]["input_ids"], b[i]["input_ids"])


def test_existing_manifest_is_not_overwritten(corpus, tmp_path):
    path, _, tok = corpus
    build_shards([path], tok, tmp_path, num_workers=1)
    with pytest.raises(OutputExistsError, match="overwrite=True") as refused:
        build_shards([path], tok, tmp_path, num_workers=1)
    assert isinstance(refused.value, FileExistsError)             # `except FileExistsError` keeps working
    build_shards([path], tok, tmp_path, num_workers=1, overwrite=True)
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")], "temporary manifest left behind"


def test_big_vocab_uses_int32(tmp_path):
    text, docs = unique_token_corpus(n_docs=5, first=70_000)
    path = tmp_path / "c.txt"
    path.write_text(text, encoding="utf-8")
    tok = BertTokenizer(SPECIALS + [f"t{i}" for i in range(70_200)])
    build_shards([path], tok, tmp_path / "s", num_workers=1)
    loaded = ShardedCorpus(tmp_path / "s")
    assert loaded.manifest["dtype"] == "int32"
    assert loaded.document(0)[0].tolist() == [k + 5 for k in docs[0][0]]


def test_missing_manifest_says_what_to_do(tmp_path):
    with pytest.raises(NotFoundError, match="build_shards"):
        PretrainingDataset(tmp_path)


# ------------------------------------------------------------------ NSP instances

def doc_of_token(docs):
    owner = {}
    for d, doc in enumerate(docs):
        for s in doc:
            for k in s:
                owner[k + 5] = d
    return owner


def split_instance(item, tok):
    ids = item["input_ids"].tolist()
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    first_sep = ids.index(tok.sep_token_id)
    return ids[1:first_sep], ids[first_sep + 1:-1], first_sep


def test_instances_are_cls_a_sep_b_sep(corpus, shards):
    _, docs, tok = corpus
    owner = doc_of_token(docs)
    ds = PretrainingDataset(shards, max_seq_length=64, seed=1)
    assert len(ds) > 300
    for i in range(0, len(ds), 3):
        item = ds[i]
        a, b, first_sep = split_instance(item, tok)
        assert len(item["input_ids"]) <= 64 and a and b
        types = item["token_type_ids"].tolist()
        assert types == [0] * (first_sep + 1) + [1] * (len(b) + 1)
        # each segment is one contiguous run of text from one document
        for seg in (a, b):
            assert seg == list(range(seg[0], seg[0] + len(seg)))
            assert len({owner[t] for t in seg}) == 1
        if item["next_sentence_label"] == 0:
            assert owner[a[0]] == owner[b[0]] and b[0] > a[-1]
        else:
            assert owner[a[0]] != owner[b[0]]


def test_nsp_labels_are_50_50(corpus, shards):
    ds = PretrainingDataset(shards, max_seq_length=64, seed=2)
    stats = ds.stats
    labels = [ds[i]["next_sentence_label"] for i in range(len(ds))]
    assert sum(labels) == stats["random_next"]
    free = stats["instances"] - stats["forced_random_next"]
    free_random = stats["random_next"] - stats["forced_random_next"]
    assert abs(free_random - free / 2) <= 5 * math.sqrt(free / 4)
    assert 0.4 < free_random / free < 0.6


def test_same_seed_epoch_index_same_instance(corpus, shards):
    a = PretrainingDataset(shards, max_seq_length=64, seed=3)
    b = PretrainingDataset(shards, max_seq_length=64, seed=3)
    for i in (0, 7, len(a) - 1):
        for key in ("input_ids", "token_type_ids"):
            assert np.array_equal(a[i][key], b[i][key])
        assert a[i]["mask_seed"] == b[i]["mask_seed"]
    first = [a[i]["input_ids"].tolist() for i in range(50)]
    a.set_epoch(1)
    assert [a[i]["input_ids"].tolist() for i in range(50)] != first
    a.set_epoch(0)
    assert [a[i]["input_ids"].tolist() for i in range(50)] == first
    c = PretrainingDataset(shards, max_seq_length=64, seed=4)
    assert [c[i]["input_ids"].tolist() for i in range(50)] != first


def test_short_seq_prob_makes_shorter_instances(corpus, shards):
    long_ = PretrainingDataset(shards, max_seq_length=64, short_seq_prob=0.0, seed=5)
    short = PretrainingDataset(shards, max_seq_length=64, short_seq_prob=1.0, seed=5)

    def lengths(ds):                        # 3 epochs: the target lengths are drawn once per document
        out = []
        for epoch in range(3):
            ds.set_epoch(epoch)
            out += [len(ds[i]["input_ids"]) for i in range(len(ds))]
        return np.array(out)

    n_long, n_short = len(long_), len(short)
    long_len, short_len = lengths(long_), lengths(short)
    assert long_len.mean() > 50
    # targets uniform in [2, 61] instead of 61: about 0.745 of the mean length (old and new planner alike)
    assert short_len.mean() < 0.8 * long_len.mean()
    assert (short_len < 32).mean() > 2.5 * (long_len < 32).mean()           # ~21% vs ~6%
    assert n_short > n_long


def test_truncate_seq_pair_trims_the_longer_side_both_ends():
    rng = random.Random(0)
    fronts = backs = 0
    for _ in range(200):
        a, b = np.arange(0, 40), np.arange(100, 110)
        ta, tb = truncate_seq_pair(a, b, 30, rng)
        assert len(ta) + len(tb) == 30 and len(tb) == 10
        fronts += ta[0] > 0
        backs += ta[-1] < 39
    assert fronts > 50 and backs > 50
    ta, tb = truncate_seq_pair(np.arange(20), np.arange(20), 10, rng)
    assert len(ta) == len(tb) == 5


def test_single_sentence_documents(tmp_path, caplog):
    text = "t0 t1 t2\n\nt3 t4\nt5 t6\n\nt7 t8 t9\n\nt10\nt11 t12\n"
    path = tmp_path / "c.txt"
    path.write_text(text, encoding="utf-8")
    tok = word_tokenizer(13)
    build_shards([path], tok, tmp_path / "s", num_workers=1)
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["single_sentence_documents"] == 2
    with caplog.at_level(logging.WARNING):
        skip = PretrainingDataset(tmp_path / "s", max_seq_length=32, seed=0)
    assert skip.stats["skipped_single_sentence_documents"] == 2
    assert "skipped 2 single-sentence documents" in caplog.text
    starts = {int(skip[i]["input_ids"][1]) for i in range(len(skip))}
    assert tok.vocab["t0"] not in starts and tok.vocab["t7"] not in starts
    use = PretrainingDataset(tmp_path / "s", max_seq_length=32, seed=0, skip_single_sentence_documents=False)
    from_single = [use[i] for i in range(len(use)) if int(use[i]["input_ids"][1]) in (tok.vocab["t0"], tok.vocab["t7"])]
    assert len(from_single) == 2 and all(item["next_sentence_label"] == 1 for item in from_single)


def test_without_nsp_one_segment(corpus, shards):
    _, docs, tok = corpus
    ds = PretrainingDataset(shards, max_seq_length=64, nsp=False, seed=0)
    total = 0
    for i in range(len(ds)):
        item = ds[i]
        ids = item["input_ids"].tolist()
        assert "next_sentence_label" not in item
        assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id and tok.sep_token_id not in ids[1:-1]
        assert not item["token_type_ids"].any() and len(ids) <= 64
        total += len(ids) - 2
    # every token is used once, except those cut off sentences longer than the limit
    assert total >= 0.95 * sum(len(s) for d in docs for s in d)


def test_bad_arguments_and_index(shards):
    with pytest.raises(InputError, match="max_seq_length"):
        PretrainingDataset(shards, max_seq_length=4)
    with pytest.raises(InputError, match="short_seq_prob"):
        PretrainingDataset(shards, short_seq_prob=2.0)
    ds = PretrainingDataset(shards, max_seq_length=64)
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_dataloader_end_to_end_and_resume(corpus, shards):
    _, _, tok = corpus
    ds = PretrainingDataset(shards, max_seq_length=64, seed=0)
    collate = MlmCollator(tok, seed=0, pad_to_multiple_of=8)

    def batches(skip=0):
        order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0)).tolist()
        loader = torch.utils.data.DataLoader(ds, batch_size=8, sampler=order[skip * 8:], collate_fn=collate)
        return [b for _, b in zip(range(4), loader)]

    full = batches()
    assert full[0]["input_ids"].shape[1] % 8 == 0
    assert set(full[0]) == {"input_ids", "token_type_ids", "attention_mask", "labels", "next_sentence_label"}
    resumed = batches(skip=2)                     # a restarted run that skips the 2 batches it had done
    for key in full[2]:
        assert torch.equal(full[2][key], resumed[0][key])


def test_dataset_pickles_without_copying_tokens(shards):
    import pickle
    ds = PretrainingDataset(shards, max_seq_length=64, seed=0)
    blob = pickle.dumps(ds)
    tokens_bytes = sum(t.nbytes for t in ds.corpus.tokens)
    assert len(blob) < tokens_bytes + ds.plan.nbytes                 # the plan travels, the tokens do not
    copy = pickle.loads(blob)
    for i in (0, 5, len(ds) - 1):
        assert np.array_equal(copy[i]["input_ids"], ds[i]["input_ids"])


def test_only_single_sentence_documents_is_a_clear_error(tmp_path):
    path = tmp_path / "paragraphs.txt"
    path.write_text("t0 t1 t2\n\nt3 t4\n\nt5\n", encoding="utf-8")
    build_shards([path], word_tokenizer(6), tmp_path / "s", num_workers=1)
    with pytest.raises(InputError, match="one_doc_per_line=True"):
        PretrainingDataset(tmp_path / "s", max_seq_length=16)
    assert len(PretrainingDataset(tmp_path / "s", max_seq_length=16, skip_single_sentence_documents=False)) == 3
    assert len(PretrainingDataset(tmp_path / "s", max_seq_length=16, nsp=False)) == 3


def test_single_document_corpus_warns(tmp_path, caplog):
    path = tmp_path / "one.txt"
    path.write_text("t0 t1\nt2 t3\nt4 t5\n", encoding="utf-8")
    build_shards([path], word_tokenizer(6), tmp_path / "s", num_workers=1)
    with caplog.at_level(logging.WARNING):
        ds = PretrainingDataset(tmp_path / "s", max_seq_length=16)
    assert "single document" in caplog.text and len(ds) >= 1


@pytest.mark.slow
def test_real_corpus_end_to_end(tmp_path):
    """WikiText-2 valid (one paragraph per line) → 2-process shards → NSP pairs → masked batches."""
    from conftest import data_file
    from bertkit.text.vocab import train_vocab
    path = data_file("wikitext2", "valid.txt")
    tok = train_vocab([path], vocab_size=8000)
    build_shards([path], tok, tmp_path / "s", num_workers=2, one_doc_per_line=True)
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["tokens"] > 200_000 and manifest["documents"] > 2000
    ds = PretrainingDataset(tmp_path / "s", max_seq_length=128, seed=0)
    free = ds.stats["instances"] - ds.stats["forced_random_next"]
    assert abs((ds.stats["random_next"] - ds.stats["forced_random_next"]) / free - 0.5) < 0.05
    collate = MlmCollator(tok, whole_word_mask=True, seed=0)
    batch = collate([ds[i] for i in range(0, len(ds), max(1, len(ds) // 512))])
    specials = torch.tensor([tok.cls_token_id, tok.sep_token_id])      # masking never writes these
    maskable = (batch["attention_mask"] == 1) & ~torch.isin(batch["input_ids"], specials)
    rate = (batch["labels"] != -100).sum() / maskable.sum()
    assert 0.13 < float(rate) < 0.16
