"""Text rules of BERT's BasicTokenizer: cleaning, CJK splitting, accents, case, words.

BERT turns raw text into *words* before WordPiece ever sees it. The steps, in the
order the reference fast tokenizer (HF `tokenizers`' BertNormalizer +
BertPreTokenizer) applies them:

1. clean      NUL, U+FFFD and control characters (Unicode categories Cc, Cf, Co,
              except tab/newline/CR) are deleted; every other whitespace
              character becomes a plain space.
2. CJK        (tokenize_chinese_chars) each CJK ideograph gets a space on both sides,
              so it is a word alone.
3. accents    (strip_accents) NFD decomposition, then every
              non-spacing mark (category Mn) is dropped: "é" -> "e" + U+0301 -> "e".
4. lowercase  (do_lower_case) character by character (no context rules such as Greek final sigma).
5. split      on whitespace; every punctuation character is a word of its own.

Each step works character by character (except NFD's reordering of combining
marks), so we precompute, per character, what it becomes (`CharRules.norm`) and
which role it plays in word splitting (`CharRules.role`). Both are dicts filled
lazily, so that `str.translate` can run them over a whole text at C speed.

Roles (one letter per original character, same length as the text):
    "w" part of a word    "d" deleted (but does not break a word)
    " " word separator    "p" punctuation, a word of its own
    "c" CJK ideograph, a word of its own
    "m" mixed: its normalized form mixes letters with spaces or punctuation, or
        needs NFD reordering -- such texts take the exact character-level path.

Every word keeps its character span in the ORIGINAL text: the first and last
original characters that produced a kept character (deleted characters at the
ends of a word are not part of its span).
"""
from __future__ import annotations

import bisect
import re
import unicodedata
from typing import Callable, Iterable

from bertkit.common.errors import InputError, missing_dependency
from bertkit.text.names import renamed

# Unicode's White_Space property (what the reference uses; unlike Python's
# str.isspace it excludes \x1c-\x1f). \v, \f and U+0085 are in it but are
# deleted as control characters first; U+2028/U+2029 split words.
WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

# The CJK Unicode blocks of google-research/bert's `_is_chinese_char`.
CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)


def is_whitespace(ch: str) -> bool:
    """True for characters that separate words (they are turned into spaces)."""
    return ch in WHITESPACE


def is_control(ch: str) -> bool:
    """True for characters that are deleted: U+FFFD and categories Cc, Cf, Co.

    Tab, newline and carriage return are Cc too but count as whitespace; the other
    control "spaces" (\v, \f, U+0085) are deleted, as in BERT and the reference.
    """
    if ch in "\t\n\r":
        return False
    return ch == "\ufffd" or unicodedata.category(ch) in ("Cc", "Cf", "Co")


def is_punctuation(ch: str) -> bool:
    """BERT's punctuation: all ASCII symbols (so "$", "^", "`" count) plus category P*."""
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_cjk(ch: str) -> bool:
    """True for CJK ideographs (Chinese characters, Japanese kanji, Korean hanja)."""
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in CJK_RANGES)


def _needs_reordering(decomposed: str) -> bool:
    """A kept (non-Mn) combining mark: NFD may move it, so the exact path must run."""
    return any(unicodedata.combining(c) and unicodedata.category(c) != "Mn" for c in decomposed)


class _LazyTable(dict):
    """A dict that computes missing entries with `fill(ch)`: usable by str.translate."""

    def __init__(self, fill: Callable[[str], str]):
        super().__init__()
        self._fill = fill

    def __missing__(self, codepoint: int) -> str:
        value = self[codepoint] = self._fill(chr(codepoint))
        return value


class CharRules:
    """The per-character normalization for one setting of the BERT switches.

    `norm[ord(ch)]` is what `ch` becomes after steps 1-4 (possibly "" or several
    characters); `role[ord(ch)]` is its one-letter role in word splitting.
    """

    def __init__(self, do_lower_case: bool, strip_accents: bool, tokenize_chinese_chars: bool):
        self.do_lower_case, self.strip_accents = do_lower_case, strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.norm = _LazyTable(self._normalize_char)
        self.role = _LazyTable(self._char_role)

    def _normalize_char(self, ch: str) -> str:
        if ch == "\0" or is_control(ch):
            return ""
        if ch in WHITESPACE:
            return " "
        out = ch
        if self.strip_accents:
            out = "".join(c for c in unicodedata.normalize("NFD", out) if unicodedata.category(c) != "Mn")
        if self.do_lower_case:
            out = "".join(c.lower() for c in out)
        return out

    def _char_role(self, ch: str) -> str:
        out = self.norm[ord(ch)]
        if out == "":
            return "d"
        if self.tokenize_chinese_chars and is_cjk(ch):
            return "c"
        if all(c in WHITESPACE for c in out):
            return " "
        if len(out) == 1 and is_punctuation(out):
            return "p"
        if self.strip_accents and _needs_reordering(unicodedata.normalize("NFD", ch)):
            return "m"
        if any(c in WHITESPACE or is_punctuation(c) for c in out):
            return "m"
        return "w"

    # -- the exact, character-by-character path (clear, slower; also used by explain) --
    def normalize_aligned(self, text: str) -> tuple[list[str], list[int]]:
        """Steps 1-4 on `text`, keeping for every output character its original index.

        Returns (chars, index) with index[i] = position in `text` that produced chars[i].
        """
        chars: list[str] = []
        index: list[int] = []
        for i, ch in enumerate(text):
            if ch == "\0" or is_control(ch):
                continue
            if ch in WHITESPACE:
                chars.append(" "), index.append(i)
            elif self.tokenize_chinese_chars and is_cjk(ch):
                chars.extend((" ", ch, " ")), index.extend((i, i, i))
            else:
                chars.append(ch), index.append(i)
        if self.strip_accents:
            chars, index = _nfd_aligned(chars, index)
            kept = [k for k, c in enumerate(chars) if unicodedata.category(c) != "Mn"]
            chars, index = [chars[k] for k in kept], [index[k] for k in kept]
        if self.do_lower_case:
            lowered: list[str] = []
            lowered_index: list[int] = []
            for c, i in zip(chars, index):
                low = c.lower()
                lowered.extend(low), lowered_index.extend([i] * len(low))
            chars, index = lowered, lowered_index
        return chars, index

    def split_aligned(self, text: str, boundaries: Iterable[int] = ()) -> list[tuple[str, int, int]]:
        """Exact word splitting: [(normalized word, start, end)] with spans into `text`.

        `boundaries` are extra split positions (original character indices), e.g.
        Korean morpheme boundaries: a word never spans across one of them.
        """
        return [(w, index[0], index[-1] + 1) for w, index in self.split_aligned_index(text, boundaries)]

    def split_aligned_index(self, text: str, boundaries: Iterable[int] = ()) -> list[tuple[str, list[int]]]:
        """Like split_aligned, but with the original index of every word character."""
        chars, index = self.normalize_aligned(text)
        cuts = sorted(set(boundaries))
        words: list[tuple[str, list[int]]] = []
        current: list[int] = []  # positions in `chars` of the word being built

        def flush():
            if current:
                words.append(("".join(chars[k] for k in current), [index[k] for k in current]))
                current.clear()

        for k, c in enumerate(chars):
            if c in WHITESPACE:
                flush()
            elif is_punctuation(c):
                flush()
                current.append(k)
                flush()
            else:
                if current and cuts and _crosses(cuts, index[current[-1]], index[k]):
                    flush()
                current.append(k)
        flush()
        return words


def _crosses(cuts: list[int], prev: int, cur: int) -> bool:
    """Is there a cut position b with prev < b <= cur?"""
    j = bisect.bisect_right(cuts, prev)
    return j < len(cuts) and cuts[j] <= cur


def _nfd_aligned(chars: list[str], index: list[int]) -> tuple[list[str], list[int]]:
    """NFD with alignment: decompose each character, then sort runs of combining marks."""
    out: list[tuple[int, str, int]] = []  # (combining class, char, original index)
    for c, i in zip(chars, index):
        for d in unicodedata.normalize("NFD", c):
            out.append((unicodedata.combining(d), d, i))
    # Canonical ordering: within a run of non-zero combining classes, stable sort by class.
    k = 0
    while k < len(out):
        if out[k][0] == 0:
            k += 1
            continue
        j = k
        while j < len(out) and out[j][0] != 0:
            j += 1
        out[k:j] = sorted(out[k:j], key=lambda t: t[0])
        k = j
    return [t[1] for t in out], [t[2] for t in out]


# Words from the role string: a run of word characters (deleted ones allowed inside,
# not at the ends), or a single punctuation / CJK character.
ROLE_WORD_RE = re.compile(r"w(?:[wd]*w)?|[pc]")


def trim_span(roles: str, start: int, end: int) -> tuple[int, int]:
    """Shrink [start, end) so that it neither starts nor ends on a deleted character."""
    while start < end and roles[start] == "d":
        start += 1
    while end > start and roles[end - 1] == "d":
        end -= 1
    return start, end


def split_at(spans: list[tuple[int, int]], roles: str, cuts: list[int]) -> list[tuple[int, int]]:
    """Cut word spans at the given positions (morpheme boundaries)."""
    out: list[tuple[int, int]] = []
    for s, e in spans:
        j = bisect.bisect_right(cuts, s)
        while j < len(cuts) and cuts[j] < e:
            a, b = trim_span(roles, s, cuts[j])
            if a < b:
                out.append((a, b))
            s = cuts[j]
            j += 1
        a, b = trim_span(roles, s, e)
        if a < b:
            out.append((a, b))
    return out


_RULES_CACHE: dict[tuple[bool, bool, bool], CharRules] = {}


@renamed(lowercase="do_lower_case", split_cjk="tokenize_chinese_chars")
def char_rules(do_lower_case: bool, strip_accents: bool | None, tokenize_chinese_chars: bool) -> CharRules:
    """Shared CharRules per setting (strip_accents=None follows do_lower_case, as in BERT)."""
    strip = do_lower_case if strip_accents is None else bool(strip_accents)
    key = (bool(do_lower_case), strip, bool(tokenize_chinese_chars))
    if key not in _RULES_CACHE:
        _RULES_CACHE[key] = CharRules(*key)
    return _RULES_CACHE[key]


# ----------------------------------------------------------------------------------
# Korean morpheme pre-splitting
# ----------------------------------------------------------------------------------
_KIWI = None


def kiwi_boundaries(text: str) -> list[int]:
    """Morpheme boundaries (character positions) found by Kiwi, a Korean analyzer.

    "먹었다" -> morphemes 먹/었/다 -> boundaries [1, 2] (plus the ends). Only positions
    strictly inside the text are returned; the surface text is never changed.
    """
    global _KIWI
    if _KIWI is None:
        try:
            from kiwipiepy import Kiwi
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise missing_dependency("kiwipiepy", "ko", "morpheme_splitter='kiwi' (Korean morphemes)") from err
        _KIWI = Kiwi()
    cuts = set()
    for token in _KIWI.tokenize(text):
        cuts.add(token.start)
        cuts.add(token.start + token.len)
    return sorted(c for c in cuts if 0 < c < len(text))


def resolve_splitter(splitter) -> Callable[[str], Iterable[int]] | None:
    """None, "kiwi" or a callable text -> split positions; anything else is an error."""
    if splitter is None or callable(splitter):
        return splitter
    if splitter == "kiwi":
        return kiwi_boundaries
    raise InputError(
        f"morpheme_splitter={splitter!r} is not supported: use None, 'kiwi', or a callable "
        "that takes the text and returns the character positions to split at"
    )


def pre_split_words(text: str, do_lower_case: bool = True, strip_accents: bool | None = None,
                    tokenize_chinese_chars: bool = True, morpheme_splitter=None) -> list[tuple[str, int, int]]:
    """BERT's BasicTokenizer words of `text`: [(normalized word, start, end)].

    start/end index the original text. The vocab trainer counts these words, so it
    sees exactly the words the tokenizer will later feed to WordPiece.
    """
    rules = char_rules(do_lower_case, strip_accents, tokenize_chinese_chars)
    splitter = resolve_splitter(morpheme_splitter)
    cuts = sorted(set(splitter(text))) if splitter else []
    return rules.split_aligned(text, cuts)
