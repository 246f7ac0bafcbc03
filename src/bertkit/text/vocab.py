"""Train a WordPiece vocabulary from raw text, with BERT's layout of special tokens.

A WordPiece vocab is a list of strings: whole words ("the"), word beginnings
("play") and word continuations marked with "##" ("##ing"). The tokenizer cuts
each word greedily into the longest pieces it finds in the list.

How the list is learned (the merge procedure the reference `tokenizers`
WordPiece trainer uses, which is BPE with the "##" prefix):

1. Pre-tokenize the text exactly as the tokenizer will (lower-casing, accent
   stripping, punctuation and CJK splitting, optional Korean morphemes) and
   count each distinct word once with a Counter.
2. Write every word as characters: the first one plain, the others with "##"
   ("hug" → h ##u ##g). The alphabet is the `limit_alphabet` most frequent
   characters; words with a rarer character are left out (they would be
   [UNK] anyway).
3. Repeatedly merge the most frequent adjacent pair of pieces into a new
   piece (##u + ##g → ##ug; h + ##ug → hug) and add it to the vocab, until the
   vocab is full or no pair occurs `min_frequency` times.

Counting pairs again after every merge would cost a pass over all words per
merge. Instead we keep, for every pair, its count and the words it occurs in,
and after a merge we update only the words that contained the merged pair
(their neighbouring pairs lose or gain counts). A heap gives the most frequent
pair; entries whose count went down are fixed when they surface ("lazy" heap).

Special-token layout (`layout`), so ids match published checkpoints:

- "bert" (auto for vocab_size >= 10,000), exactly bert-base-uncased:
  [PAD]=0, [unused0]..[unused98]=1..99, [UNK]=100, [CLS]=101, [SEP]=102,
  [MASK]=103, [unused99]..[unused993]=104..998, learned tokens from 999.
- "bert-short" (auto for 1,000 <= vocab_size < 10,000): the same ids for the
  special tokens ([UNK]=100 ... [MASK]=103) but no [unused99..993], so a small
  vocab does not spend 999 slots on placeholders; learned tokens from 104.
- "compact" (auto below 1,000): [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4.
"""
from __future__ import annotations

import heapq
import logging
import os
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Sequence

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PREFIX = "##"


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
    raise ValueError(f"layout={layout!r} is not one of 'auto', 'bert', 'bert-short', 'compact'.")


# ---------------------------------------------------------------- step 1: count words

def make_pretokenizer(lowercase: bool = True, strip_accents: bool | None = None,
                      tokenize_chinese_chars: bool = True,
                      morpheme_splitter: str | None = None) -> Callable[[str], list[str]]:
    """text → words, with the very rules the tokenizer uses (`bertkit.text.basic`), so training and
    encoding cut words the same way. Clear but slow; `count_words` takes a faster road to the same counts."""
    from bertkit.text.basic import pre_split_words

    def pretokenize(text: str) -> list[str]:
        return [w for w, _, _ in pre_split_words(text, lowercase, strip_accents, tokenize_chinese_chars,
                                                 morpheme_splitter)]
    return pretokenize


def count_words(files: Iterable[str | os.PathLike], lowercase: bool = True, strip_accents: bool | None = None,
                tokenize_chinese_chars: bool = True, morpheme_splitter: str | None = None) -> Counter:
    """Count every pre-tokenized word of the files (streamed line by line).

    Same words as `make_pretokenizer`, found the way the tokenizer's own fast
    path finds them: one `str.translate` gives every character its role (word,
    space, punctuation, CJK, deleted), a regex cuts the *surface* words, and
    each distinct surface word is normalized (case, accents) only once, at the end.
    """
    from bertkit.text.basic import ROLE_WORD_RE, char_rules, resolve_splitter, split_at
    from bertkit.text.corpus import check_file, iter_lines
    rules = char_rules(lowercase, strip_accents, tokenize_chinese_chars)
    splitter = resolve_splitter(morpheme_splitter)
    surface: Counter = Counter()
    exact: Counter = Counter()                 # words of the rare lines that need the exact path
    for path in files:
        for _, line in iter_lines(check_file(path)):
            roles = line.translate(rules.role)
            if "m" in roles:
                cuts = sorted(set(splitter(line))) if splitter else []
                exact.update(w for w, _, _ in rules.split_aligned(line, cuts))
                continue
            spans = [m.span() for m in ROLE_WORD_RE.finditer(roles)]
            if splitter is not None and spans:
                spans = split_at(spans, roles, sorted({int(c) for c in splitter(line)}))
            surface.update(line[s:e] for s, e in spans)
    norm = rules.norm
    for word, count in surface.items():
        exact["".join(norm[ord(c)] for c in word)] += count
    exact.pop("", None)
    return exact


# ---------------------------------------------------------------- steps 2-3: merges

def choose_alphabet(word_counts: Counter, limit_alphabet: int | None) -> list[str]:
    """The `limit_alphabet` most frequent characters (ties broken by character), most frequent first."""
    chars: Counter = Counter()
    for word, count in word_counts.items():
        for ch in word:
            chars[ch] += count
    ranked = sorted(chars.items(), key=lambda kv: (-kv[1], kv[0]))
    if limit_alphabet is not None:
        ranked = ranked[:limit_alphabet]
    return [ch for ch, _ in ranked]


class _MergeState:
    """Words as lists of piece ids, pair counts, and where each pair occurs."""

    def __init__(self, word_counts: Counter, alphabet: Sequence[str]):
        allowed = set(alphabet)
        self.pieces: list[str] = []               # id → piece string
        self.piece_id: dict[str, int] = {}
        self.words: list[list[int]] = []
        self.counts: list[int] = []
        for word, count in word_counts.items():
            if word and all(ch in allowed for ch in word):
                self.words.append([self.intern(word[0])] + [self.intern(PREFIX + ch) for ch in word[1:]])
                self.counts.append(count)
        self.pair_count: dict[tuple[int, int], int] = {}
        self.where: dict[tuple[int, int], set[int]] = {}
        for w, symbols in enumerate(self.words):
            c = self.counts[w]
            for pair in zip(symbols, symbols[1:]):
                self.pair_count[pair] = self.pair_count.get(pair, 0) + c
                self.where.setdefault(pair, set()).add(w)

    def intern(self, piece: str) -> int:
        i = self.piece_id.get(piece)
        if i is None:
            i = self.piece_id[piece] = len(self.pieces)
            self.pieces.append(piece)
        return i

    def merge(self, pair: tuple[int, int]) -> tuple[int, set[tuple[int, int]]]:
        """Merge every occurrence of `pair`; return the new piece id and the pairs that gained counts."""
        a, b = pair
        new = self.intern(self.pieces[a] + self.pieces[b][len(PREFIX):])
        gained: set[tuple[int, int]] = set()
        counts, pair_count, where = self.counts, self.pair_count, self.where

        def add(p: tuple[int, int], delta: int, w: int) -> None:
            pair_count[p] = pair_count.get(p, 0) + delta
            if delta > 0:
                where.setdefault(p, set()).add(w)
                gained.add(p)

        for w in where.pop(pair, ()):
            symbols, c, i = self.words[w], counts[w], 0
            while i < len(symbols) - 1:
                if symbols[i] != a or symbols[i + 1] != b:
                    i += 1
                    continue
                if i > 0:
                    add((symbols[i - 1], a), -c, w)
                if i + 2 < len(symbols):
                    add((b, symbols[i + 2]), -c, w)
                symbols[i:i + 2] = [new]
                if i > 0:
                    add((symbols[i - 1], new), c, w)
                if i + 1 < len(symbols):
                    add((new, symbols[i + 1]), c, w)
                i += 1
        pair_count.pop(pair, None)
        return new, gained


def learn_wordpieces(word_counts: Counter, vocab_size: int, min_frequency: int = 2,
                     limit_alphabet: int | None = 1000, special_tokens: Sequence[str] = SPECIAL_TOKENS) -> list[str]:
    """The WordPiece vocab (special tokens first) learned from word counts. Pure Python, no tokenizer needed."""
    alphabet = choose_alphabet(word_counts, limit_alphabet)
    state = _MergeState(word_counts, alphabet)
    vocab: list[str] = list(special_tokens)
    seen = set(vocab)

    def take(piece: str) -> None:
        if piece not in seen and len(vocab) < vocab_size:
            seen.add(piece)
            vocab.append(piece)

    # Every alphabet character as a word start; "##c" for those seen inside a word.
    for ch in alphabet:
        take(ch)
    inside = {state.pieces[i] for symbols in state.words for i in symbols[1:]}
    for ch in alphabet:
        if PREFIX + ch in inside:
            take(PREFIX + ch)
    if len(vocab) >= vocab_size:
        log.warning("vocab_size=%d is filled by special tokens and characters alone; "
                    "raise vocab_size or lower limit_alphabet to learn longer pieces", vocab_size)
        return vocab

    heap = [(-c, p) for p, c in state.pair_count.items()]
    heapq.heapify(heap)
    while heap and len(vocab) < vocab_size:
        neg, pair = heapq.heappop(heap)
        current = state.pair_count.get(pair, 0)
        if current != -neg:                   # stale entry: the count went down since it was pushed
            if current > 0:
                heapq.heappush(heap, (-current, pair))
            continue
        if current < min_frequency:
            break
        new, gained = state.merge(pair)
        take(state.pieces[new])
        for p in gained:
            if p != pair and state.pair_count.get(p, 0) > 0:
                heapq.heappush(heap, (-state.pair_count[p], p))
    return vocab


# ---------------------------------------------------------------- the whole thing

def train_vocab(files: Sequence[str | os.PathLike] | str | os.PathLike, vocab_size: int = 30522,
                lowercase: bool = True, strip_accents: bool | None = None, morpheme_splitter: str | None = None,
                min_frequency: int = 2, limit_alphabet: int | None = 1000, tokenize_chinese_chars: bool = True,
                layout: str = "auto", out_dir: str | os.PathLike | None = None):
    """Train a WordPiece vocab on raw UTF-8 text files and return a `BertTokenizer` that uses it.

    Args:
        files: text file(s); any layout (lines are pre-tokenized one by one).
        vocab_size: size of the final vocab, special tokens included.
        lowercase: uncased (True) or cased (False) model.
        strip_accents: None follows `lowercase` (as BERT); for Korean with
            lowercase=True pass False, or NFD would split Hangul into jamo.
        morpheme_splitter: "kiwi" splits Korean words into morphemes (kiwipiepy)
            before WordPiece; saved with the vocab so encoding does the same.
        min_frequency: a pair seen fewer times is never merged.
        limit_alphabet: keep at most this many distinct characters (most frequent).
        layout: "auto", "bert", "bert-short" or "compact" (see the module docstring).
        out_dir: if given, write vocab.txt + tokenizer_config.json there.
    """
    from bertkit.text.tokenizer import BertTokenizer
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    if not files:
        raise ValueError("no input files given. Pass one or more UTF-8 text files.")
    specials = special_token_layout(vocab_size, layout)
    if vocab_size <= len(specials):
        raise ValueError(f"vocab_size={vocab_size} leaves no room after the {len(specials)} reserved tokens of "
                         f"layout {layout!r}; use a larger vocab_size or layout='compact'.")
    word_counts = count_words(files, lowercase, strip_accents, tokenize_chinese_chars, morpheme_splitter)
    if not word_counts:
        raise ValueError(f"no words found in {[str(f) for f in files]}: the files hold only blank lines.")
    _warn_if_hangul_decomposed(word_counts)
    tokens = learn_wordpieces(word_counts, vocab_size, min_frequency, limit_alphabet, specials)
    log.info("learned %d tokens from %d distinct words", len(tokens), len(word_counts))
    tok = BertTokenizer(tokens, do_lower_case=lowercase, strip_accents=strip_accents,
                        tokenize_chinese_chars=tokenize_chinese_chars, morpheme_splitter=morpheme_splitter)
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
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
                    "be learned over jamo. For Korean pass strip_accents=False (or lowercase=False).",
                    100 * jamo / total)


def save_vocab(tokens: Sequence[str], out_dir: str | os.PathLike, **tokenizer_settings) -> Path:
    """Write a token list as vocab.txt + tokenizer_config.json (via BertTokenizer); return out_dir."""
    from bertkit.text.tokenizer import BertTokenizer
    for t in tokens:
        if not t or any(unicodedata.category(ch) in ("Zl", "Zp") or ch in "\r\n" for ch in t):
            raise ValueError(f"token {t!r} cannot be written to vocab.txt (one token per line).")
    BertTokenizer(list(tokens), **tokenizer_settings).save_pretrained(out_dir)
    return Path(out_dir)
