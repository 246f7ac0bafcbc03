"""Parity on real text: bertkit's tokenizer vs Hugging Face's BertTokenizerFast.

Every line of every corpus in ../shared/data is encoded by both, single and as
pairs (consecutive lines, truncation max_length=128); ids, token type ids,
attention masks and character offsets must be identical. Three settings:
uncased MiniLM vocab, the same vocab cased, and a cased vocab with Korean
wordpieces trained here from NSMC lines with `tokenizers`.

The default run checks the first LINES_FAST lines of each corpus; `-m slow` runs all.
"""
from __future__ import annotations

import csv
import json

import pytest
from conftest import data_file

from bertkit.text.tokenizer import BertTokenizer

LINES_FAST = 2000

csv.field_size_limit(1 << 30)


# ----------------------------------------------------------------------------- corpora
def _tsv_columns(path, columns, header=True):
    out = []
    with open(path, encoding="utf-8-sig") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        if header:
            next(rows)
        for row in rows:
            out.extend(row[c] for c in columns if c < len(row))
    return out


def _conll_sentences(path):
    sentences, words = [], []
    for line in open(path, encoding="utf-8"):
        parts = line.split()
        if not parts:
            if words:
                sentences.append(" ".join(words))
            words = []
        elif parts[0] != "-DOCSTART-":
            words.append(parts[0])
    if words:
        sentences.append(" ".join(words))
    return sentences


def _korquad_texts(path):
    data = json.load(open(path, encoding="utf-8"))["data"]
    out = []
    for article in data:
        for para in article["paragraphs"]:
            out.append(para["context"])
            out.extend(qa["question"] for qa in para["qas"])
    return out


def _ko_ner_sentences(path):
    return [line[2:].rstrip("\n") for line in open(path, encoding="utf-8") if line.startswith("; ")]


def _chatbot(path):
    with open(path, encoding="utf-8") as f:
        rows = csv.reader(f)
        next(rows)
        return [cell for row in rows for cell in row[:2]]


def _lines(path):
    return open(path, encoding="utf-8").read().split("\n")


CORPORA = {
    "wikitext2": lambda: _lines(data_file("wikitext2", "valid.txt")),
    "sst2": lambda: _tsv_columns(data_file("glue", "SST-2", "train.tsv"), [0]),
    "cola": lambda: _tsv_columns(data_file("glue", "CoLA", "train.tsv"), [3], header=False),
    "stsb": lambda: _tsv_columns(data_file("glue", "STS-B", "train.tsv"), [7, 8]),
    "mrpc": lambda: _tsv_columns(data_file("glue", "MRPC", "train.tsv"), [3, 4]),
    "rte": lambda: _tsv_columns(data_file("glue", "RTE", "train.tsv"), [1, 2]),
    "conll2003": lambda: _conll_sentences(data_file("conll2003", "train.txt")),
    "nsmc": lambda: _tsv_columns(data_file("nsmc", "ratings_train.txt"), [1]),
    "ko_raw": lambda: _lines(data_file("ko_corpus", "nsmc_raw_reviews_unlabeled.txt")),
    "ko_chatbot": lambda: _chatbot(data_file("ko_corpus", "ChatbotData.csv")),
    "korquad1": lambda: _korquad_texts(data_file("korquad1", "KorQuAD_v1.0_dev_half_a.json")),
    "ko_ner": lambda: _ko_ner_sentences(data_file("ko_ner", "ner.train")),
}
SETTINGS = ("uncased", "cased", "korean")


# --------------------------------------------------------------------------- tokenizers
_PAIRS: dict = {}


def _korean_vocab() -> list[str]:
    """A small cased WordPiece vocab with Korean pieces, trained by `tokenizers` on NSMC."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    lines = _tsv_columns(data_file("nsmc", "ratings_train.txt"), [1])[:20000]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=6000, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
                                        show_progress=False)
    tok.train_from_iterator(lines, trainer)
    vocab = tok.get_vocab()
    return sorted(vocab, key=vocab.get)


def tokenizer_pair(setting: str, minilm_path):
    """(ours, reference) for one setting, built once per session."""
    if setting not in _PAIRS:
        from transformers import BertTokenizerFast
        from transformers.models.bert.tokenization_bert import load_vocab
        if setting == "uncased":
            ours = BertTokenizer.from_pretrained(minilm_path)
            ref = BertTokenizerFast.from_pretrained(str(minilm_path))
        elif setting == "cased":
            ours = BertTokenizer(minilm_path / "vocab.txt", do_lower_case=False)
            ref = BertTokenizerFast(vocab=load_vocab(str(minilm_path / "vocab.txt")), do_lower_case=False)
        else:
            tokens = _korean_vocab()
            ours = BertTokenizer(tokens, do_lower_case=False)
            ref = BertTokenizerFast(vocab={t: i for i, t in enumerate(tokens)}, do_lower_case=False)
        _PAIRS[setting] = (ours, ref)
    return _PAIRS[setting]


# --------------------------------------------------------------------------- comparison
FIELDS = ("input_ids", "token_type_ids", "attention_mask", "offset_mapping")


def mismatches(ours, ref, texts, pairs=None, chunk=500, **kwargs):
    """Indices (and first differing field) of examples where the two tokenizers differ."""
    bad = []
    for start in range(0, len(texts), chunk):
        a = texts[start:start + chunk]
        b = pairs[start:start + chunk] if pairs is not None else None
        mine = ours(a, b, return_offsets_mapping=True, **kwargs)
        theirs = ref(a, b, return_offsets_mapping=True, **kwargs)
        for i in range(len(a)):
            for field in FIELDS:
                if [tuple(x) if field == "offset_mapping" else x for x in mine[field][i]] != \
                        [tuple(x) if field == "offset_mapping" else x for x in theirs[field][i]]:
                    bad.append((start + i, field))
                    break
    return bad


def check_corpus(corpus, setting, minilm_path, limit):
    texts = CORPORA[corpus]()
    if limit:
        texts = texts[:limit]
    ours, ref = tokenizer_pair(setting, minilm_path)
    bad = mismatches(ours, ref, texts)
    assert not bad, f"{corpus}/{setting}: {len(bad)} of {len(texts)} single texts differ, first: " \
                    f"{bad[0]} {texts[bad[0][0]][:200]!r}"
    bad = mismatches(ours, ref, texts[:-1], texts[1:], truncation=True, max_length=128)
    assert not bad, f"{corpus}/{setting}: {len(bad)} of {len(texts) - 1} pairs differ, first: {bad[0]}"
    return len(texts)


@pytest.mark.realdata
@pytest.mark.filterwarnings("ignore:Token indices sequence length")
@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("corpus", sorted(CORPORA))
def test_parity_first_lines(corpus, setting, minilm_path):
    check_corpus(corpus, setting, minilm_path, LINES_FAST)


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.filterwarnings("ignore:Token indices sequence length")
@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("corpus", sorted(CORPORA))
def test_parity_every_line(corpus, setting, minilm_path):
    n = check_corpus(corpus, setting, minilm_path, None)
    print(f"\n{corpus}/{setting}: {n} lines, {n - 1} pairs, 0 mismatches")
