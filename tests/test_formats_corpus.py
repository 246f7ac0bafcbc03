"""Compressed corpora (.gz, .bz2, .xz, .zst): read as a stream, one shard per file, same ids as plain text."""
from __future__ import annotations

import bz2
import gzip
import lzma
import sys

import numpy as np
import pytest
import zstandard

from bertkit.common.errors import MissingDependency
from bertkit.data import ShardedCorpus, build_shards
from bertkit.text.corpus import CorpusError, document_ranges, iter_documents
from bertkit.text.vocab import count_words
from bertkit.training.pretrain import corpus_fingerprint

from test_data import unique_token_corpus, word_tokenizer

COMPRESSORS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress,
               ".zst": lambda b: zstandard.ZstdCompressor().compress(b)}


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """The same corpus as corpus.txt and as corpus.txt.gz / .bz2 / .xz / .zst."""
    text, docs = unique_token_corpus(n_docs=120)
    folder = tmp_path_factory.mktemp("compressed")
    plain = folder / "corpus.txt"
    plain.write_text(text, encoding="utf-8")
    packed = {}
    for suffix, compress in COMPRESSORS.items():
        packed[suffix] = folder / f"corpus.txt{suffix}"
        packed[suffix].write_bytes(compress(text.encode("utf-8")))
    return plain, packed, word_tokenizer(sum(len(s) for d in docs for s in d))


def all_tokens(shards_dir) -> np.ndarray:
    corpus = ShardedCorpus(shards_dir)
    return np.concatenate([np.asarray(t) for t in corpus.tokens])


@pytest.mark.parametrize("suffix", list(COMPRESSORS))
def test_compressed_corpus_gives_the_same_documents_and_shards(corpora, suffix, tmp_path):
    plain, packed, tok = corpora
    assert list(iter_documents(packed[suffix])) == list(iter_documents(plain))
    assert document_ranges(packed[suffix], 4096) == [(0, None)]           # one range: read whole
    build_shards([plain], tok, tmp_path / "plain", num_workers=1, chunk_bytes=4096)
    build_shards([packed[suffix]], tok, tmp_path / "packed", num_workers=1, chunk_bytes=4096)
    np.testing.assert_array_equal(all_tokens(tmp_path / "packed"), all_tokens(tmp_path / "plain"))
    assert len(ShardedCorpus(tmp_path / "packed").manifest["shards"]) == 1
    assert count_words([packed[suffix]]) == count_words([plain])


def test_several_compressed_files_are_sharded_by_several_workers(corpora, tmp_path):
    plain, packed, tok = corpora
    files = [packed[".gz"], packed[".xz"], plain]
    build_shards(files, tok, tmp_path / "mixed", num_workers=2, chunk_bytes=4096)
    corpus = ShardedCorpus(tmp_path / "mixed")
    sources = [s["source"] for s in corpus.manifest["shards"]]
    assert sources[:2] == [str(packed[".gz"]), str(packed[".xz"])] and len(sources) > 3   # plain: byte ranges
    one = all_tokens(tmp_path / "mixed")
    assert len(one) % 3 == 0
    third = len(one) // 3
    np.testing.assert_array_equal(one[:third], one[2 * third:])
    np.testing.assert_array_equal(one[third:2 * third], one[2 * third:])


def test_fingerprint_of_a_compressed_corpus_changes_with_its_bytes(corpora, tmp_path):
    _, packed, _ = corpora
    copy = tmp_path / "c.txt.gz"
    copy.write_bytes(packed[".gz"].read_bytes())
    before = corpus_fingerprint([str(copy)])[0]["sha256_ends"]
    copy.write_bytes(gzip.compress(b"another text\n"))
    assert corpus_fingerprint([str(copy)])[0]["sha256_ends"] != before


def test_truncated_gzip_is_a_one_line_error_with_the_file(corpora, tmp_path):
    _, packed, _ = corpora
    bad = tmp_path / "cut.txt.gz"
    bad.write_bytes(packed[".gz"].read_bytes()[:200])
    with pytest.raises(CorpusError) as err:
        list(iter_documents(bad))
    message = str(err.value)
    assert "\n" not in message and str(bad) in message and "not a readable gzip file" in message


def test_not_utf8_inside_gzip_names_the_line(tmp_path):
    bad = tmp_path / "latin1.txt.gz"
    bad.write_bytes(gzip.compress("one\ntwo\ncaf\xe9\n".encode("latin-1")))
    with pytest.raises(CorpusError, match=r"line 3 \(byte 11 of the decompressed text\) is not valid UTF-8"):
        list(iter_documents(bad))


def test_zst_without_zstandard_names_the_pip_command(corpora, monkeypatch):
    _, packed, _ = corpora
    monkeypatch.setitem(sys.modules, "zstandard", None)           # as if it were not installed
    with pytest.raises(MissingDependency, match=r"pip install 'bertkit\[data\]' \(or pip install zstandard\)"):
        list(iter_documents(packed[".zst"]))
