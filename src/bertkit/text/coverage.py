"""Does a vocabulary cover the text?  Measured, and said when it does not.

A BERT reads text only through its WordPiece vocabulary.  English text through an
English vocab becomes ~1.2 pieces per word; Korean through the same vocab becomes
jamo or [UNK] (an uncased vocab strips accents, which decomposes every Hangul
syllable), and a model fine-tuned on that learns nothing — silently.  So whenever a
model meets data (fine-tuning, evaluation, a search index, the web demo, `bertkit
tokenize`), bertkit measures on a sample of words:

    unk_share           words that become [UNK]                     (the word is lost)
    single_char_share   words of 2+ characters cut into 1-character pieces (spelled out)
    pieces_per_word     word pieces per word                        (longer inputs, more cuts)

and warns once, with the figures and the way out, when the vocab does not fit.
"""
from __future__ import annotations

import warnings
from typing import Iterable

from bertkit.text.tokenizer import BertTokenizer

#: Above these, the vocab does not fit the text (English with BERT's vocab: ~0.1% [UNK],
#: ~1% spelled out, ~1.3 pieces per word; Korean with the same vocab: see tests/test_coverage.py).
MAX_UNK_SHARE = 0.05
MAX_SINGLE_CHAR_SHARE = 0.25
MAX_PIECES_PER_WORD = 3.0
SAMPLE_TEXTS = 2000


class CoverageWarning(UserWarning):
    """The vocabulary does not cover the text well (the message has the figures and the way out)."""


def _strip(piece: str) -> str:
    return piece[2:] if piece.startswith("##") else piece


def vocab_coverage(tokenizer: BertTokenizer, texts: Iterable[str], max_texts: int = SAMPLE_TEXTS) -> dict:
    """unk_share, single_char_share, pieces_per_word over the words of (up to max_texts) texts."""
    words = unk = spelled = pieces = 0
    for n, text in enumerate(texts):
        if n >= max_texts:
            break
        if not isinstance(text, str):
            continue
        for word, _, _, ids in tokenizer.encode_words(text):
            words += 1
            pieces += len(ids)
            if ids == [tokenizer.unk_token_id]:
                unk += 1
            elif len(word) > 1 and len(ids) > 1 and all(
                    len(_strip(p)) == 1 for p in tokenizer.convert_ids_to_tokens(ids)):
                spelled += 1
    words = max(words, 1)
    return {"words": words, "unk_share": unk / words, "single_char_share": spelled / words,
            "pieces_per_word": pieces / words}


def coverage_problem(stats: dict) -> str | None:
    """A sentence describing what is wrong with these figures, or None when the vocab fits."""
    if stats["unk_share"] > MAX_UNK_SHARE:
        return f"{stats['unk_share']:.0%} of the words become [UNK]"
    if stats["single_char_share"] > MAX_SINGLE_CHAR_SHARE:
        return f"{stats['single_char_share']:.0%} of the words are spelled out in single characters"
    if stats["pieces_per_word"] > MAX_PIECES_PER_WORD:
        return f"words are cut into {stats['pieces_per_word']:.1f} pieces on average"
    return None


def _has_hangul(texts: list[str]) -> bool:
    return any("\uac00" <= ch <= "\ud7a3" for text in texts[:200] for ch in text)


def check_coverage(tokenizer: BertTokenizer, texts: Iterable[str], where: str) -> dict:
    """Measure coverage on `texts`; warn once (CoverageWarning) with the figures and the way out."""
    sample = [t for _, t in zip(range(SAMPLE_TEXTS), texts) if isinstance(t, str)]
    stats = vocab_coverage(tokenizer, sample)
    problem = coverage_problem(stats)
    if problem:
        if _has_hangul(sample):
            fix = ("for Korean use a Korean model by name (--model klue/bert-base, "
                   "bert-base-multilingual-cased) or pretrain one with a Korean vocab "
                   "(bertkit pretrain --keep-accents --morphemes)")
        else:
            fix = "use a model whose vocab was trained on this kind of text, or train one (bertkit vocab / pretrain)"
        warnings.warn(f"{where}: the model's vocabulary does not fit this text — {problem} "
                      f"({stats['unk_share']:.1%} [UNK], {stats['single_char_share']:.1%} spelled out, "
                      f"{stats['pieces_per_word']:.2f} pieces per word over {stats['words']:,} words); "
                      f"results will be poor: {fix}.", CoverageWarning, stacklevel=2)
    return stats
