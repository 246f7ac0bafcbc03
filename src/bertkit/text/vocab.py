"""Train a WordPiece vocabulary from raw text, with BERT's layout of special tokens.

A WordPiece vocab is a list of strings: whole words ("the"), word beginnings
("play") and word continuations marked with "##" ("##ing"). The tokenizer cuts
each word greedily into the longest pieces it finds in the list.

How the list is learned:

1. Pre-tokenize the text exactly as the tokenizer will (lower-casing, accent
   stripping, punctuation and CJK splitting, optional Korean morphemes) and
   count each distinct word once with a Counter (`count_words`).
2. Write every word as characters: the first one plain, the others with "##"
   ("hug" → h ##u ##g). The alphabet is the `limit_alphabet` most frequent
   characters; words with a rarer character are left out (they would be
   [UNK] anyway).
3. Repeatedly merge an adjacent pair of pieces into a new piece (##u + ##g → ##ug;
   h + ##ug → hug) and add it to the vocab, until the vocab is full or no pair
   occurs `min_frequency` times.  Which pair: `algorithm="frequency"` (the most
   frequent one, as Hugging Face's trainer) or `"likelihood"` (the one that most
   raises the data's likelihood, as the original WordPiece); see merges.py.

Special-token layout (`layout`), so ids match published checkpoints:

- "bert" (auto for vocab_size >= 10,000), exactly bert-base-uncased:
  [PAD]=0, [unused0]..[unused98]=1..99, [UNK]=100, [CLS]=101, [SEP]=102,
  [MASK]=103, [unused99]..[unused993]=104..998, learned tokens from 999.
- "bert-short" (auto for 1,000 <= vocab_size < 10,000): the same ids for the
  special tokens ([UNK]=100 ... [MASK]=103) but no [unused99..993], so a small
  vocab does not spend 999 slots on placeholders; learned tokens from 104.
- "compact" (auto below 1,000): [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4.

How a vocab was trained (algorithm, sizes, switches, files) is saved in
tokenizer_config.json under "vocab_training", so it can be trained again.
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Sequence

from tqdm.auto import tqdm

from bertkit.common.errors import InputError
from bertkit.text.basic import ROLE_WORD_RE, char_rules, pre_split_words, resolve_splitter, split_at
from bertkit.text.corpus import check_file, iter_lines
from bertkit.text.merges import (ALGORITHMS, PREFIX, MergeState, check_algorithm, choose_alphabet,
                                 frequency_merges, likelihood_merges)
from bertkit.text.names import renamed
from bertkit.text.tokenizer import BertTokenizer

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
LAYOUTS = ("auto", "bert", "bert-short", "compact")
__all__ = ["ALGORITHMS", "PREFIX", "SPECIAL_TOKENS", "count_words", "learn_wordpieces", "make_pretokenizer",
           "special_token_layout", "train_vocab"]


# ---------------------------------------------------------------- special-token layout

def special_token_layout(vocab_size: int, layout: str = "auto") -> list[str]:
    """The reserved tokens at the start of the vocab, in id order (see the module docstring)."""
    if layout == "auto":
        layout = "bert" if vocab_size >= 10_000 else "bert-short" if vocab_size >= 1_000 else "compact"
    if layout == "compact":
        return list(SPECIAL_TOKENS)
    if layout in ("bert", "bert-short"):
        head = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        return head + ([f"[unused{i}]" for i in range(99, 994)] if layout == "bert" else [])
    raise InputError(f"layout={layout!r} is not one of {', '.join(map(repr, LAYOUTS))}.")


# ---------------------------------------------------------------- step 1: count words

@renamed(lowercase="do_lower_case")
def make_pretokenizer(do_lower_case: bool = True, strip_accents: bool | None = None,
                      tokenize_chinese_chars: bool = True,
                      morpheme_splitter: str | None = None) -> Callable[[str], list[str]]:
    """text → words, with the very rules the tokenizer uses (`bertkit.text.basic`), so training and
    encoding cut words the same way. Clear but slow; `count_words` takes a faster road to the same counts."""
    def pretokenize(text: str) -> list[str]:
        return [w for w, _, _ in pre_split_words(text, do_lower_case, strip_accents, tokenize_chinese_chars,
                                                 morpheme_splitter)]
    return pretokenize


@renamed(lowercase="do_lower_case")
def count_words(files: Iterable[str | os.PathLike], do_lower_case: bool = True, strip_accents: bool | None = None,
                tokenize_chinese_chars: bool = True, morpheme_splitter: str | None = None,
                progress: bool = False) -> Counter:
    """Count every pre-tokenized word of the files (streamed line by line).

    Same words as `make_pretokenizer`, found the way the tokenizer's own fast
    path finds them: one `str.translate` gives every character its role (word,
    space, punctuation, CJK, deleted), a regex cuts the *surface* words, and
    each distinct surface word is normalized (case, accents) only once, at the end.
    `progress`: a bar on stderr of the megabytes read (and lines), moved every 4,096 lines.
    """
    rules = char_rules(do_lower_case, strip_accents, tokenize_chinese_chars)
    splitter = resolve_splitter(morpheme_splitter)
    surface: Counter = Counter()
    exact: Counter = Counter()                 # words of the rare lines that need the exact path
    files = [check_file(path) for path in files]
    bar = tqdm(total=sum(f.stat().st_size for f in files), unit="B", unit_scale=True, desc="counting words",
               disable=not progress, dynamic_ncols=True)
    done = 0                                   # bytes of the files already read
    for path in files:
        n = 0
        for n, (offset, line) in enumerate(iter_lines(path), 1):
            if n % 4096 == 0:
                bar.update(done + offset - bar.n)
                bar.set_postfix_str(f"{n:,} lines of {path.name}", refresh=False)
            roles = line.translate(rules.role)
            if "m" in roles:
                cuts = sorted(set(splitter(line))) if splitter else []
                exact.update(w for w, _, _ in rules.split_aligned(line, cuts))
                continue
            spans = [m.span() for m in ROLE_WORD_RE.finditer(roles)]
            if splitter is not None and spans:
                spans = split_at(spans, roles, sorted({int(c) for c in splitter(line)}))
            surface.update(line[s:e] for s, e in spans)
        done += path.stat().st_size
        bar.set_postfix_str(f"{n:,} lines of {path.name}", refresh=False)
        bar.update(done - bar.n)
    bar.close()
    norm = rules.norm
    for word, count in surface.items():
        exact["".join(norm[ord(c)] for c in word)] += count
    exact.pop("", None)
    return exact


# ---------------------------------------------------------------- steps 2-3: merges

def learn_wordpieces(word_counts: Counter, vocab_size: int, min_frequency: int = 2,
                     limit_alphabet: int | None = 1000, special_tokens: Sequence[str] = SPECIAL_TOKENS,
                     algorithm: str = "frequency", progress: bool = False) -> list[str]:
    """The WordPiece vocab learned from word counts, in id order. Pure Python, no tokenizer needed.

    Special tokens, then the alphabet (most frequent character first), then "##c" for
    each alphabet character seen inside a word, then the merged pieces in the order
    they were learned (`algorithm`: "frequency" or "likelihood", see merges.py).
    """
    check_algorithm(algorithm)
    alphabet = choose_alphabet(word_counts, limit_alphabet)
    state = MergeState(word_counts, alphabet, index_pieces=algorithm == "likelihood")
    vocab: list[str] = list(special_tokens)
    seen = set(vocab)

    def take(piece: str) -> None:
        if piece not in seen and len(vocab) < vocab_size:
            seen.add(piece)
            vocab.append(piece)

    for ch in alphabet:                       # every alphabet character as a word start,
        take(ch)
    inside = {state.pieces[i] for symbols in state.words for i in symbols[1:]}
    for ch in alphabet:                       # and "##c" for those seen inside a word
        if PREFIX + ch in inside:
            take(PREFIX + ch)
    if len(vocab) >= vocab_size:
        log.warning("vocab_size=%d is filled by special tokens and characters alone; "
                    "raise vocab_size or lower limit_alphabet to learn longer pieces", vocab_size)
        return vocab
    merges = frequency_merges if algorithm == "frequency" else likelihood_merges
    with tqdm(total=vocab_size - len(vocab), unit="merge", desc="merging pieces", disable=not progress,
              dynamic_ncols=True) as bar:
        for new in merges(state, min_frequency):
            take(state.pieces[new])
            bar.update(1)
            if len(vocab) >= vocab_size:
                break
    return vocab


# ---------------------------------------------------------------- the whole thing

@renamed(lowercase="do_lower_case")
def train_vocab(files: Sequence[str | os.PathLike] | str | os.PathLike, vocab_size: int = 30522,
                do_lower_case: bool = True, strip_accents: bool | None = None, morpheme_splitter: str | None = None,
                min_frequency: int = 2, limit_alphabet: int | None = 1000, tokenize_chinese_chars: bool = True,
                layout: str = "auto", out_dir: str | os.PathLike | None = None,
                algorithm: str = "frequency", progress: bool = False) -> BertTokenizer:
    """Train a WordPiece vocab on raw UTF-8 text files and return a `BertTokenizer` that uses it.

    Args:
        files: text file(s); any layout (lines are pre-tokenized one by one).
        vocab_size: size of the final vocab, special tokens included.
        do_lower_case: uncased (True) or cased (False) model.  (Old name: lowercase.)
        strip_accents: None follows `do_lower_case` (as BERT); for Korean with
            do_lower_case=True pass False, or NFD would split Hangul into jamo.
        morpheme_splitter: "kiwi" splits Korean words into morphemes (kiwipiepy)
            before WordPiece; saved with the vocab so encoding does the same.
        min_frequency: a pair seen fewer times is never merged.
        limit_alphabet: keep at most this many distinct characters (most frequent).
        tokenize_chinese_chars: every CJK ideograph is a word of its own.
        layout: "auto", "bert", "bert-short" or "compact" (see the module docstring).
        out_dir: if given, write vocab.txt + tokenizer_config.json (+ HF files) there.
        algorithm: "frequency" (merge the most frequent pair, as HF `tokenizers`) or
            "likelihood" (merge the pair of best count(ab) / (count(a)·count(b)), as the
            original WordPiece).  Recorded in tokenizer_config.json ("vocab_training").
        progress: bars on stderr: megabytes read while counting words, merges done.
    """
    files = [files] if isinstance(files, (str, os.PathLike)) else list(files)
    if not files:
        raise InputError("no input files given. Pass one or more UTF-8 text files.")
    check_algorithm(algorithm)                # before the words are counted: fail fast
    specials = special_token_layout(vocab_size, layout)
    if vocab_size <= len(specials):
        raise InputError(f"vocab_size={vocab_size} leaves no room after the {len(specials)} reserved tokens of "
                         f"layout {layout!r}; use a larger vocab_size or layout='compact'.")
    word_counts = count_words(files, do_lower_case, strip_accents, tokenize_chinese_chars, morpheme_splitter,
                              progress=progress)
    if not word_counts:
        raise InputError(f"no words found in {[str(f) for f in files]}: the files hold only blank lines.")
    _warn_if_hangul_decomposed(word_counts)
    tokens = learn_wordpieces(word_counts, vocab_size, min_frequency, limit_alphabet, specials, algorithm,
                              progress=progress)
    log.info("learned %d tokens from %d distinct words (%s merges)", len(tokens), len(word_counts), algorithm)
    training = {"algorithm": algorithm, "vocab_size": vocab_size, "min_frequency": min_frequency,
                "limit_alphabet": limit_alphabet, "layout": layout, "files": [Path(f).name for f in files]}
    tok = BertTokenizer(tokens, do_lower_case=do_lower_case, strip_accents=strip_accents,
                        tokenize_chinese_chars=tokenize_chinese_chars, morpheme_splitter=morpheme_splitter,
                        vocab_training=training)
    if out_dir is not None:
        tok.save_pretrained(out_dir)
    return tok


def _warn_if_hangul_decomposed(word_counts: Counter, sample: int = 5000) -> None:
    """Accent stripping (NFD) turns Hangul syllables into jamo: say so when it happened to much of the text."""
    jamo = total = 0
    for word, _ in word_counts.most_common(sample):
        total += len(word)
        jamo += sum("\u1100" <= ch <= "\u11ff" for ch in word)
    if total and jamo / total > 0.1:
        log.warning("accent stripping decomposed Korean syllables into jamo (%.0f%% of characters); the vocab will "
                    "be learned over jamo. For Korean pass strip_accents=False (or do_lower_case=False).",
                    100 * jamo / total)
