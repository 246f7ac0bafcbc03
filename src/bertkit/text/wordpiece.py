"""WordPiece: words -> subword ids, greedy longest match first, with a per-word cache.

    vocab.txt            one token per line, the line number is the id
    "unaffable"          a word, after the BasicTokenizer rules (basic.py)
      -> un ##aff ##able the longest vocab piece that starts the word ("un"), then the
                         longest "##" piece that continues it ("##aff"), and so on
    "unaffableX"         some part matches nothing -> the whole word is one [UNK]

`WordPieceEncoder` runs the whole way from a text (no [CLS]/[SEP] yet) to ids and
character offsets: tokens such as "[MASK]" are matched verbatim in the raw text
first; the rest is cut into words (one `str.translate` + one regex over the whole
text, see basic.py) and every word goes through WordPiece.

Speed comes from the cache: the ids of a word never depend on what was encoded
before, only on the word's surface form, so each distinct surface word is
normalized and cut once, and later texts reuse the result (dict lookup).
"""
from __future__ import annotations

import contextlib
import gc
import os
import re
from pathlib import Path
from typing import Callable, Iterable, Sequence

from bertkit.common.errors import InputError, NotFoundError
from bertkit.text.basic import ROLE_WORD_RE, CharRules, split_at

MAX_WORD_CHARS = 100          # longer words become a single [UNK], as in BERT
CACHE_LIMIT = 100_000         # per-word cache entries before the cache is emptied (~35 MB at most)

# ASCII fast path: a word is a run of letters/digits, every ASCII symbol is punctuation.
_ASCII_WORD_RE = re.compile(r"[A-Za-z0-9]+|[!-/:-@\[-`{-~]")
_ASCII_DELETED_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

Pieces = list[tuple[int, int, int]]          # [(id, start, end)] inside one word


# ---------------------------------------------------------------- the vocabulary
def load_vocab(path: str | os.PathLike) -> list[str]:
    """vocab.txt: one token per line; the line number is the id."""
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def read_vocab(vocab) -> list[str]:
    """The token list from a path to vocab.txt, a directory holding one, or a list of tokens."""
    if isinstance(vocab, (str, os.PathLike)):
        path = Path(vocab)
        if path.is_dir():
            path = path / "vocab.txt"
        if not path.is_file():
            raise NotFoundError(
                f"vocab file not found: {path}. Pass the path of a vocab.txt (one token per line), "
                "or train one with `bertkit vocab`.")
        tokens = load_vocab(path)
    elif isinstance(vocab, (list, tuple)):
        tokens = [str(t) for t in vocab]
    else:
        raise TypeError(f"vocab must be a path to vocab.txt or a list of tokens, not {type(vocab).__name__}")
    if not tokens:
        raise InputError("the vocabulary is empty; a BERT vocab needs at least the special tokens "
                         "[PAD] [UNK] [CLS] [SEP] [MASK]")
    return tokens


def longest_pieces(tokens: Sequence[str]) -> tuple[dict[str, int], dict[str, int]]:
    """Per first character, the longest vocab piece that starts with it.

    Two tables: word-initial pieces ("un") and continuation pieces ("##able",
    keyed by "a"). WordPiece then never tries a substring longer than any piece.
    """
    first: dict[str, int] = {}
    cont: dict[str, int] = {}
    for t in tokens:
        if t.startswith("##") and len(t) > 2:
            table, body = cont, t[2:]
        elif t:
            table, body = first, t
        else:
            continue
        if len(body) > table.get(body[0], 0):
            table[body[0]] = len(body)
    return first, cont


# ---------------------------------------------------------------- one word
def wordpiece(word: str, vocab: dict[str, int], unk_id: int,
              longest: tuple[dict[str, int], dict[str, int]]) -> Pieces:
    """Greedy longest-match-first WordPiece of one normalized word.

    Returns [(id, start, end)] with character positions inside `word`. Pieces after
    the first carry the "##" prefix in the vocab ("unaffable" -> un ##aff ##able). If
    some part of the word matches nothing, or the word is over 100 characters, the
    whole word becomes one [UNK]. `longest` (from `longest_pieces`) bounds the search.
    """
    n = len(word)
    if n > MAX_WORD_CHARS:
        return [(unk_id, 0, n)]
    first, cont = longest
    pieces = []
    start = 0
    while start < n:
        end = min(n, start + (cont if start else first).get(word[start], 0))
        while end > start:
            piece_id = vocab.get(word[start:end] if start == 0 else "##" + word[start:end])
            if piece_id is not None:
                break
            end -= 1
        else:
            return [(unk_id, 0, n)]
        pieces.append((piece_id, start, end))
        start = end
    return pieces


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic garbage collector while encoding.

    Encoding creates many small lists/tuples (and the word cache keeps them), which
    makes Python's collector run full passes over the growing cache -- half of the
    time on a cold cache. Nothing we create forms a reference cycle, so pausing is
    safe; the previous state is restored afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# ---------------------------------------------------------------- a whole text
class WordPieceEncoder:
    """Text (special tokens allowed inside, no [CLS]/[SEP] added) -> wordpiece ids and offsets.

    Args:
        vocab: token -> id.
        unk_id: the id of the unknown token.
        rules: the BasicTokenizer rules (`basic.char_rules(...)`).
        splitter: None or a callable text -> extra word boundaries (Korean morphemes).
        verbatim: tokens matched in the raw text before any normalization, kept whole.
    """

    def __init__(self, vocab: dict[str, int], unk_id: int, rules: CharRules,
                 splitter: Callable[[str], Iterable[int]] | None, verbatim: Sequence[str]):
        self.vocab, self.unk_id, self.rules, self.splitter = vocab, unk_id, rules, splitter
        self.longest = longest_pieces(list(vocab))
        self.verbatim_re = re.compile("|".join(re.escape(t) for t in sorted(verbatim, key=len, reverse=True)))
        # surface word -> (wordpiece ids, flat offsets (a0, b0, a1, b1, ...)): tuples, not lists of
        # pairs, so an entry costs about half the memory (measured: 110 -> 42 MB on 80k lines)
        self.cache: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}

    def pieces(self, word: str) -> Pieces:
        """WordPiece of one normalized word: [(id, start, end)]."""
        return wordpiece(word, self.vocab, self.unk_id, self.longest)

    def encode(self, text: str, with_offsets: bool) -> tuple[list[int], list | None]:
        """One text -> (ids, offsets or None), special tokens in the text kept whole."""
        ids: list[int] = []
        offsets: list | None = [] if with_offsets else None
        pos = 0
        for m in self.verbatim_re.finditer(text):
            if m.start() > pos:
                self._encode_plain(text[pos:m.start()], pos, ids, offsets)
            ids.append(self.vocab.get(m.group(), self.unk_id))
            if offsets is not None:
                offsets.append(m.span())
            pos = m.end()
        if pos == 0:
            self._encode_plain(text, 0, ids, offsets)
        elif pos < len(text):
            self._encode_plain(text[pos:], pos, ids, offsets)
        return ids, offsets

    def words(self, text: str) -> list[tuple[str, int, int, list[int]]]:
        """[(normalized word, start, end, wordpiece ids)], spans into `text` (the exact path)."""
        words = []
        pos = 0
        for m in list(self.verbatim_re.finditer(text)) + [None]:
            end = m.start() if m else len(text)
            if end > pos:
                cuts = self._morpheme_cuts(text[pos:end]) if self.splitter is not None else ()
                for word, index in self.rules.split_aligned_index(text[pos:end], cuts):
                    ids = [p[0] for p in self.pieces(word)]
                    words.append((word, pos + index[0], pos + index[-1] + 1, ids))
            if m:
                words.append((m.group(), m.start(), m.end(), [self.vocab.get(m.group(), self.unk_id)]))
                pos = m.end()
        return words

    # ------------------------------------------------------------ the fast path
    def _word_entry(self, surface: str):
        """Wordpiece ids and offsets (relative to the word's start) for one surface word. Cached."""
        norm_table = self.rules.norm
        parts = [norm_table[ord(c)] for c in surface]
        word = "".join(parts)
        pieces = wordpiece(word, self.vocab, self.unk_id, self.longest)
        if len(word) == len(surface) and all(len(p) == 1 for p in parts):
            spans = [x for _, a, b in pieces for x in (a, b)]
        else:  # characters were deleted or expanded: map each normalized char to its source
            index = [i for i, p in enumerate(parts) for _ in p]
            spans = [x for _, a, b in pieces for x in (index[a], index[b - 1] + 1)]
        entry = (tuple(p[0] for p in pieces), tuple(spans))
        cache = self.cache
        if len(cache) >= CACHE_LIMIT:
            cache.clear()
        cache[surface] = entry
        return entry

    def _encode_plain(self, text: str, base: int, ids: list, offsets: list | None) -> None:
        """Append the wordpieces of `text` (no special tokens inside) to ids / offsets."""
        cache_get, entry_for = self.cache.get, self._word_entry
        if self.splitter is None and text.isascii() and not _ASCII_DELETED_RE.search(text):
            if offsets is None:
                for w in _ASCII_WORD_RE.findall(text):
                    ids.extend((cache_get(w) or entry_for(w))[0])
                return
            spans = [m.span() for m in _ASCII_WORD_RE.finditer(text)]
        else:
            roles = text.translate(self.rules.role)
            if "m" in roles:
                self._encode_exact(text, base, ids, offsets)
                return
            spans = [m.span() for m in ROLE_WORD_RE.finditer(roles)]
            if self.splitter is not None:
                spans = split_at(spans, roles, self._morpheme_cuts(text))
        for s, e in spans:
            w = text[s:e]
            entry = cache_get(w) or entry_for(w)
            ids.extend(entry[0])
            if offsets is not None:
                start, flat = base + s, iter(entry[1])
                offsets.extend([(start + a, start + b) for a, b in zip(flat, flat)])

    def _morpheme_cuts(self, text: str) -> list[int]:
        return sorted({int(c) for c in self.splitter(text)}) if text else []

    def _encode_exact(self, text: str, base: int, ids: list, offsets: list | None) -> None:
        """Character-by-character path for rare texts (e.g. marks that NFD reorders)."""
        cuts = self._morpheme_cuts(text) if self.splitter is not None else ()
        for word, index in self.rules.split_aligned_index(text, cuts):
            pieces = self.pieces(word)
            ids.extend(p[0] for p in pieces)
            if offsets is not None:
                offsets.extend((base + index[a], base + index[b - 1] + 1) for _, a, b in pieces)
