"""BERT's tokenizer: BasicTokenizer (words) + WordPiece (subwords) -> ids.

    "Héllo, [MASK] wörld!"                      raw text
      -> clean / CJK / accents / lowercase        "hello, [MASK] world!"   (see _text.py)
      -> words (split on spaces + punctuation)    hello , [MASK] world !
      -> WordPiece, greedy longest match first    hello , [MASK] world !   ("tokenizer" -> token ##izer)
      -> ids, framed by [CLS] ... [SEP]           101 7592 1010 103 2088 999 102

Behaviour (ids, token_type_ids, attention_mask, offsets, truncation, padding, decode)
matches Hugging Face's `BertTokenizerFast` exactly; speed comes from whole-text
regex passes and a per-word cache (the result for a word never depends on what was
encoded before, only on the word).
"""
from __future__ import annotations

import contextlib
import gc
import json
import os
import re
import warnings
from pathlib import Path
from typing import Iterable, Sequence

from bertkit.text.basic import (ROLE_WORD_RE, char_rules, is_control, is_whitespace, pre_split_words,  # noqa: F401
                           resolve_splitter, split_at)

__all__ = ["BertTokenizer", "BatchEncoding", "pre_split_words", "wordpiece", "load_vocab"]

SPECIAL_NAMES = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second")
MAX_WORD_CHARS = 100          # longer words become a single [UNK], as in BERT
CACHE_LIMIT = 100_000         # per-word cache entries before the cache is emptied (~35 MB at most)

# ASCII fast path: a word is a run of letters/digits, every ASCII symbol is punctuation.
_ASCII_WORD_RE = re.compile(r"[A-Za-z0-9]+|[!-/:-@\[-`{-~]")
_ASCII_DELETED_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@contextlib.contextmanager
def _gc_paused():
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


class BatchEncoding(dict):
    """The tokenizer's output: a dict (input_ids, token_type_ids, attention_mask, ...).

    Keys are also attributes (`enc.input_ids`); `enc.to(device)` moves tensors.
    """

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no field {name!r}; fields: {list(self)}") from None

    def to(self, device) -> "BatchEncoding":
        return BatchEncoding({k: v.to(device) if hasattr(v, "to") else v for k, v in self.items()})


def load_vocab(path: str | os.PathLike) -> list[str]:
    """vocab.txt: one token per line; the line number is the id."""
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


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


def wordpiece(word: str, vocab: dict[str, int], unk_id: int,
              longest: tuple[dict[str, int], dict[str, int]]) -> list[tuple[int, int, int]]:
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


class BertTokenizer:
    """BERT's WordPiece tokenizer (see the module docstring for the steps).

    Args:
        vocab: path to vocab.txt, or the list of tokens (index = id).
        do_lower_case: lowercase the text (uncased models).
        strip_accents: drop accents (NFD, then remove marks); None = same as do_lower_case.
        tokenize_chinese_chars: make every CJK ideograph a word of its own.
        never_split: extra tokens matched verbatim in the raw text and kept whole.
        morpheme_splitter: None, "kiwi" (Korean morphemes via kiwipiepy), or a
            callable text -> character positions where words must be split.
    """

    def __init__(self, vocab, do_lower_case: bool = True, strip_accents: bool | None = None,
                 tokenize_chinese_chars: bool = True, never_split: Iterable[str] | None = None,
                 unk_token: str = "[UNK]", sep_token: str = "[SEP]", pad_token: str = "[PAD]",
                 cls_token: str = "[CLS]", mask_token: str = "[MASK]", model_max_length: int = 512,
                 morpheme_splitter=None):
        tokens = self._read_vocab_arg(vocab)
        self.vocab: dict[str, int] = {t: i for i, t in enumerate(tokens)}
        self.ids_to_tokens: list[str] = tokens
        self.do_lower_case = bool(do_lower_case)
        self.strip_accents = strip_accents
        self.tokenize_chinese_chars = bool(tokenize_chinese_chars)
        self.never_split = list(never_split or [])
        self.unk_token, self.sep_token, self.pad_token = unk_token, sep_token, pad_token
        self.cls_token, self.mask_token = cls_token, mask_token
        self.model_max_length = int(model_max_length)
        self.morpheme_splitter = morpheme_splitter
        self._splitter = resolve_splitter(morpheme_splitter)
        self._check_special_tokens()
        self.unk_token_id = self.vocab[unk_token]
        self.sep_token_id = self.vocab[sep_token]
        self.pad_token_id = self.vocab[pad_token]
        self.cls_token_id = self.vocab[cls_token]
        self.mask_token_id = self.vocab[mask_token]
        self._rules = char_rules(self.do_lower_case, strip_accents, self.tokenize_chinese_chars)
        self._longest = longest_pieces(tokens)
        self._verbatim = self._verbatim_tokens()
        self._verbatim_re = re.compile("|".join(re.escape(t) for t in sorted(self._verbatim, key=len, reverse=True)))
        # surface word -> (wordpiece ids, flat offsets (a0, b0, a1, b1, ...)): tuples, not lists of
        # pairs, so an entry costs about half the memory (measured: 110 -> 42 MB on 80k lines)
        self._cache: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        self._warned: set[str] = set()

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _read_vocab_arg(vocab) -> list[str]:
        if isinstance(vocab, (str, os.PathLike)):
            path = Path(vocab)
            if path.is_dir():
                path = path / "vocab.txt"
            if not path.is_file():
                raise FileNotFoundError(
                    f"vocab file not found: {path}. Pass the path of a vocab.txt (one token per line), "
                    "or train one with `bertkit vocab`.")
            tokens = load_vocab(path)
        elif isinstance(vocab, (list, tuple)):
            tokens = [str(t) for t in vocab]
        else:
            raise TypeError(f"vocab must be a path to vocab.txt or a list of tokens, not {type(vocab).__name__}")
        if not tokens:
            raise ValueError("the vocabulary is empty; a BERT vocab needs at least the special tokens "
                             "[PAD] [UNK] [CLS] [SEP] [MASK]")
        return tokens

    def _check_special_tokens(self):
        missing = [f"{name}={getattr(self, name)!r}" for name in SPECIAL_NAMES if getattr(self, name) not in self.vocab]
        if missing:
            raise ValueError(
                f"the vocabulary lacks the special tokens: {', '.join(missing)}. Add them to vocab.txt "
                "(BERT puts [PAD] [UNK] [CLS] [SEP] [MASK] near the top), or pass the names your vocab "
                "uses, e.g. BertTokenizer(vocab, unk_token='<unk>').")

    def _verbatim_tokens(self) -> list[str]:
        """Tokens matched in the raw text before any normalization, never split."""
        specials = [self.pad_token, self.unk_token, self.cls_token, self.sep_token, self.mask_token]
        return list(dict.fromkeys(specials + [t for t in self.never_split if t]))

    # --------------------------------------------------------------- properties
    @property
    def vocab_size(self) -> int:
        return len(self.ids_to_tokens)

    def __len__(self) -> int:
        return len(self.ids_to_tokens)

    @property
    def all_special_tokens(self) -> list[str]:
        return [self.unk_token, self.sep_token, self.pad_token, self.cls_token, self.mask_token]

    @property
    def all_special_ids(self) -> list[int]:
        return [self.vocab[t] for t in self.all_special_tokens]

    def __repr__(self) -> str:
        return (f"BertTokenizer(vocab_size={self.vocab_size}, do_lower_case={self.do_lower_case}, "
                f"strip_accents={self.strip_accents}, tokenize_chinese_chars={self.tokenize_chinese_chars}, "
                f"model_max_length={self.model_max_length}, morpheme_splitter={self.morpheme_splitter!r})")

    # ------------------------------------------------------------ text -> ids
    def _word_entry(self, surface: str):
        """Wordpiece ids and offsets (relative to the word's start) for one surface word. Cached."""
        norm_table = self._rules.norm
        parts = [norm_table[ord(c)] for c in surface]
        word = "".join(parts)
        pieces = wordpiece(word, self.vocab, self.unk_token_id, self._longest)
        if len(word) == len(surface) and all(len(p) == 1 for p in parts):
            spans = [x for _, a, b in pieces for x in (a, b)]
        else:  # characters were deleted or expanded: map each normalized char to its source
            index = [i for i, p in enumerate(parts) for _ in p]
            spans = [x for _, a, b in pieces for x in (index[a], index[b - 1] + 1)]
        entry = (tuple(p[0] for p in pieces), tuple(spans))
        cache = self._cache
        if len(cache) >= CACHE_LIMIT:
            cache.clear()
        cache[surface] = entry
        return entry

    def _encode_plain(self, text: str, base: int, ids: list, offsets: list | None) -> None:
        """Append the wordpieces of `text` (no special tokens inside) to ids / offsets."""
        cache_get, entry_for = self._cache.get, self._word_entry
        if self._splitter is None and text.isascii() and not _ASCII_DELETED_RE.search(text):
            if offsets is None:
                for w in _ASCII_WORD_RE.findall(text):
                    ids.extend((cache_get(w) or entry_for(w))[0])
                return
            spans = [m.span() for m in _ASCII_WORD_RE.finditer(text)]
        else:
            roles = text.translate(self._rules.role)
            if "m" in roles:
                self._encode_exact(text, base, ids, offsets)
                return
            spans = [m.span() for m in ROLE_WORD_RE.finditer(roles)]
            if self._splitter is not None:
                spans = split_at(spans, roles, self._morpheme_cuts(text))
        for s, e in spans:
            w = text[s:e]
            entry = cache_get(w) or entry_for(w)
            ids.extend(entry[0])
            if offsets is not None:
                start, flat = base + s, iter(entry[1])
                offsets.extend([(start + a, start + b) for a, b in zip(flat, flat)])

    def _morpheme_cuts(self, text: str) -> list[int]:
        return sorted({int(c) for c in self._splitter(text)}) if text else []

    def _encode_exact(self, text: str, base: int, ids: list, offsets: list | None) -> None:
        """Character-by-character path for rare texts (e.g. marks that NFD reorders)."""
        cuts = self._morpheme_cuts(text) if self._splitter is not None else ()
        for word, index in self._rules.split_aligned_index(text, cuts):
            pieces = wordpiece(word, self.vocab, self.unk_token_id, self._longest)
            ids.extend(p[0] for p in pieces)
            if offsets is not None:
                offsets.extend((base + index[a], base + index[b - 1] + 1) for _, a, b in pieces)

    def _encode_text(self, text: str, with_offsets: bool):
        """One text -> (ids, offsets or None), special tokens in the text kept whole."""
        ids: list[int] = []
        offsets: list | None = [] if with_offsets else None
        pos = 0
        for m in self._verbatim_re.finditer(text):
            if m.start() > pos:
                self._encode_plain(text[pos:m.start()], pos, ids, offsets)
            ids.append(self.vocab.get(m.group(), self.unk_token_id))
            if offsets is not None:
                offsets.append(m.span())
            pos = m.end()
        if pos == 0:
            self._encode_plain(text, 0, ids, offsets)
        elif pos < len(text):
            self._encode_plain(text[pos:], pos, ids, offsets)
        return ids, offsets

    # ----------------------------------------------------------------- checks
    @staticmethod
    def _check_text(text, what: str = "text") -> str:
        if not isinstance(text, str):
            raise TypeError(f"{what} must be a str (or a list of str for a batch), not {type(text).__name__}")
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as err:
                raise ValueError(
                    f"{what} contains a lone surrogate {text[err.start]!r} at index {err.start}; it is not valid "
                    "Unicode. Decode your bytes with errors='replace' (or fix the source text).") from None
        return text

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, stacklevel=3)

    # -------------------------------------------------------------- main call
    def __call__(self, text, text_pair=None, add_special_tokens: bool = True, padding=False, truncation=None,
                 max_length: int | None = None, return_tensors: str | None = None,
                 return_offsets_mapping: bool = False, return_special_tokens_mask: bool = False,
                 **unexpected) -> BatchEncoding:
        """Encode one text, a text pair, or a batch (list of texts / list of pairs).

        Returns input_ids, token_type_ids (0 = first text, 1 = second), attention_mask
        (1 = real token, 0 = padding) and, on request, offset_mapping ((start, end)
        character spans in the original text; (0, 0) for [CLS]/[SEP]/[PAD]) and
        special_tokens_mask (1 for [CLS]/[SEP]/[PAD]).
        """
        if unexpected:
            name = next(iter(unexpected))
            raise TypeError(
                f"BertTokenizer.__call__() got an unexpected keyword argument {name!r}; supported: text_pair, "
                "add_special_tokens, padding, truncation, max_length, return_tensors, "
                "return_offsets_mapping, return_special_tokens_mask")
        batched = isinstance(text, (list, tuple))
        texts, pairs = self._as_batch(text, text_pair, batched)
        strategy, limit = self._truncation_plan(truncation, max_length, padding)
        n_special = (3 if pairs is not None else 2) if add_special_tokens else 0
        rows = []
        with _gc_paused():
            for i, a in enumerate(texts):
                ids_a, off_a = self._encode_text(a, return_offsets_mapping)
                ids_b = off_b = None
                if pairs is not None:
                    ids_b, off_b = self._encode_text(pairs[i], return_offsets_mapping)
                if strategy is not None:
                    ids_a, off_a, ids_b, off_b = _truncate(ids_a, off_a, ids_b, off_b, limit - n_special, strategy)
                rows.append(self._assemble(ids_a, off_a, ids_b, off_b, add_special_tokens))
        if strategy is None:
            self._warn_if_too_long(rows)
        self._pad(rows, padding, max_length)
        keys = ["input_ids", "token_type_ids", "attention_mask"]
        if return_special_tokens_mask:
            keys.append("special_tokens_mask")
        if return_offsets_mapping:
            keys.append("offset_mapping")
        out = {k: [row[k] for row in rows] for k in keys}
        if not batched:
            out = {k: v[0] for k, v in out.items()}
        return BatchEncoding(_to_tensors(out, return_tensors, batched))

    def _as_batch(self, text, text_pair, batched: bool):
        if batched:
            texts = [self._check_text(t, f"text[{i}]") for i, t in enumerate(text)]
            if text_pair is None:
                return texts, None
            if not isinstance(text_pair, (list, tuple)) or len(text_pair) != len(texts):
                raise ValueError("for a batch, text_pair must be a list of the same length as text "
                                 f"({len(texts)} texts)")
            return texts, [self._check_text(t, f"text_pair[{i}]") for i, t in enumerate(text_pair)]
        texts = [self._check_text(text)]
        if text_pair is None:
            return texts, None
        if isinstance(text_pair, (list, tuple)):
            raise ValueError("text is a single string but text_pair is a list; pass a list of texts for a batch")
        return texts, [self._check_text(text_pair, "text_pair")]

    def _truncation_plan(self, truncation, max_length, padding):
        """(strategy or None, max_length) as Hugging Face decides them."""
        if truncation is None:
            if max_length is not None and padding in (False, None, "do_not_pad"):
                self._warn_once("implicit_truncation",
                                "max_length is given but truncation is not: truncating with 'longest_first' "
                                "as Hugging Face does; pass truncation=True to silence this warning")
                truncation = "longest_first"
            else:
                return None, None
        if truncation is False or truncation == "do_not_truncate":
            return None, None
        if truncation is True:
            truncation = "longest_first"
        if truncation not in TRUNCATION_STRATEGIES:
            raise ValueError(f"truncation={truncation!r} is not supported: use True, False, "
                             f"or one of {TRUNCATION_STRATEGIES}")
        limit = self.model_max_length if max_length is None else int(max_length)
        return truncation, limit

    def _assemble(self, ids_a, off_a, ids_b, off_b, add_special_tokens: bool) -> dict:
        """[CLS] A [SEP] (B [SEP]) with type ids, mask, offsets and special-token mask."""
        cls, sep = ([self.cls_token_id], [self.sep_token_id]) if add_special_tokens else ([], [])
        ids = cls + ids_a + sep
        n_a = len(ids)
        special = [1] * len(cls) + [0] * len(ids_a) + [1] * len(sep)
        if ids_b is not None:
            ids += ids_b + sep
            special += [0] * len(ids_b) + [1] * len(sep)
        row = {"input_ids": ids, "token_type_ids": [0] * n_a + [1] * (len(ids) - n_a),
               "attention_mask": [1] * len(ids), "special_tokens_mask": special}
        if off_a is not None:
            zero = [(0, 0)] if add_special_tokens else []
            offs = zero + off_a + zero
            if ids_b is not None:
                offs += off_b + zero
            row["offset_mapping"] = offs
        return row

    def _warn_if_too_long(self, rows) -> None:
        longest = max((len(r["input_ids"]) for r in rows), default=0)
        if longest > self.model_max_length:
            self._warn_once("too_long",
                            f"Token indices sequence length is longer than the specified maximum sequence length "
                            f"for this model ({longest} > {self.model_max_length}). Running this sequence through "
                            "the model will result in indexing errors; pass truncation=True "
                            f"(and max_length<={self.model_max_length}) to cut it.")

    def _pad(self, rows, padding, max_length) -> None:
        if padding in (False, None, "do_not_pad"):
            return
        if padding is True or padding == "longest":
            target = max(len(r["input_ids"]) for r in rows)
        elif padding == "max_length":
            target = self.model_max_length if max_length is None else int(max_length)
        else:
            raise ValueError(f"padding={padding!r} is not supported: use True, False, 'longest' or 'max_length'")
        fill = {"input_ids": self.pad_token_id, "token_type_ids": 0, "attention_mask": 0,
                "special_tokens_mask": 1, "offset_mapping": (0, 0)}
        for row in rows:
            missing = target - len(row["input_ids"])
            if missing > 0:
                for key, value in row.items():
                    value.extend([fill[key]] * missing)

    # ------------------------------------------------------------- shortcuts
    def tokenize(self, text: str) -> list[str]:
        """Wordpiece strings of `text`, without [CLS]/[SEP]."""
        ids, _ = self._encode_text(self._check_text(text), False)
        return [self.ids_to_tokens[i] for i in ids]

    def encode(self, text: str, text_pair: str | None = None, add_special_tokens: bool = True,
               truncation=None, max_length: int | None = None, **kwargs) -> list[int]:
        """Just the input ids of one text or pair."""
        return self(text, text_pair, add_special_tokens=add_special_tokens, truncation=truncation,
                    max_length=max_length, **kwargs)["input_ids"]

    def convert_tokens_to_ids(self, tokens):
        """Token string(s) -> id(s); unknown strings give the [UNK] id."""
        if isinstance(tokens, str):
            return self.vocab.get(tokens, self.unk_token_id)
        return [self.vocab.get(t, self.unk_token_id) for t in tokens]

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        """Id(s) -> token string(s)."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        if isinstance(ids, int):
            return self._id_to_token(ids)
        special = set(self.all_special_ids) if skip_special_tokens else ()
        return [self._id_to_token(i) for i in ids if i not in special]

    def _id_to_token(self, i: int) -> str:
        if not 0 <= int(i) < len(self.ids_to_tokens):
            raise ValueError(f"token id {i} is outside the vocabulary (0..{len(self.ids_to_tokens) - 1})")
        return self.ids_to_tokens[int(i)]

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        """Ids -> text, as Hugging Face's WordPiece decoder does it.

        Tokens are joined with spaces, "##" pieces glue onto the previous token, and
        the spaces before . ? ! , are removed ("hello , world ." -> "hello, world.").
        Lowercasing and dropped accents cannot be undone.
        """
        tokens = self.convert_ids_to_tokens(ids, skip_special_tokens=skip_special_tokens)
        return "".join(_decode_token(t, i) for i, t in enumerate(tokens))

    def batch_decode(self, sequences, skip_special_tokens: bool = False) -> list[str]:
        if hasattr(sequences, "tolist"):
            sequences = sequences.tolist()
        return [self.decode(s, skip_special_tokens=skip_special_tokens) for s in sequences]

    # ------------------------------------------------------- words and views
    def encode_words(self, text: str) -> list[tuple[str, int, int, list[int]]]:
        """BasicTokenizer words of `text`: [(word, start, end, wordpiece ids)].

        `word` is the normalized word (lowercased etc.); start/end index the original
        text. Special tokens such as "[MASK]" are one word. Used by whole-word
        masking (mask all pieces of a word together) and NER (one label per word).
        """
        text = self._check_text(text)
        words = []
        pos = 0
        for m in list(self._verbatim_re.finditer(text)) + [None]:
            end = m.start() if m else len(text)
            if end > pos:
                words.extend(self._plain_words(text[pos:end], pos))
            if m:
                words.append((m.group(), m.start(), m.end(), [self.vocab.get(m.group(), self.unk_token_id)]))
                pos = m.end()
        return words

    def _plain_words(self, text: str, base: int):
        cuts = self._morpheme_cuts(text) if self._splitter is not None else ()
        out = []
        for word, index in self._rules.split_aligned_index(text, cuts):
            pieces = wordpiece(word, self.vocab, self.unk_token_id, self._longest)
            out.append((word, base + index[0], base + index[-1] + 1, [p[0] for p in pieces]))
        return out

    def explain(self, text: str) -> str:
        """Show every step for `text` (what `bertkit tokenize "text"` prints)."""
        text = self._check_text(text)
        rules = self._rules
        cleaned = "".join(" " if is_whitespace(c) else c for c in text if c != "\0" and not is_control(c))
        chars, _ = rules.normalize_aligned(text)
        words = self.encode_words(text)
        pieces = [self.ids_to_tokens[i] for w in words for i in w[3]]
        ids = self.encode(text)
        steps = [f"settings         : do_lower_case={self.do_lower_case}, strip_accents={self.strip_accents}, "
                 f"tokenize_chinese_chars={self.tokenize_chinese_chars}, morpheme_splitter={self.morpheme_splitter!r}",
                 f"1 text           : {text!r}",
                 f"2 cleaned        : {cleaned!r}   (control chars removed, whitespace -> ' ')",
                 f"3 normalized     : {''.join(chars)!r}   (CJK spaced"
                 + (", accents stripped" if rules.strip_accents else "")
                 + (", lowercased" if rules.lowercase else "") + ")",
                 f"4 words          : {[w[0] for w in words]}   (special tokens like {self.mask_token} "
                 "are matched in the raw text first)",
                 f"  word spans     : {[(w[1], w[2]) for w in words]}",
                 f"5 wordpieces     : {pieces}",
                 f"6 ids            : {ids}   ([CLS]={self.cls_token_id}, [SEP]={self.sep_token_id})"]
        return "\n".join(steps)

    # ------------------------------------------------------------ save / load
    def config_dict(self) -> dict:
        splitter = self.morpheme_splitter if isinstance(self.morpheme_splitter, str) else None
        return {"tokenizer_class": "BertTokenizer", "do_lower_case": self.do_lower_case,
                "strip_accents": self.strip_accents, "tokenize_chinese_chars": self.tokenize_chinese_chars,
                "never_split": self.never_split or None, "unk_token": self.unk_token, "sep_token": self.sep_token,
                "pad_token": self.pad_token, "cls_token": self.cls_token, "mask_token": self.mask_token,
                "model_max_length": self.model_max_length, "morpheme_splitter": splitter,
                "do_basic_tokenize": True, "clean_up_tokenization_spaces": False}

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write vocab.txt, tokenizer_config.json, special_tokens_map.json, tokenizer.json.

        tokenizer.json describes the same pipeline for Hugging Face's `tokenizers`, so
        `transformers.BertTokenizerFast.from_pretrained(directory)` loads the same
        settings (a custom callable morpheme splitter cannot be saved; a warning says so).
        """
        if callable(self.morpheme_splitter):
            warnings.warn("a custom morpheme_splitter callable cannot be saved; tokenizer_config.json records "
                          "morpheme_splitter=None, pass it again when loading", stacklevel=2)
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        _atomic_write(out / "vocab.txt", "".join(t + "\n" for t in self.ids_to_tokens))
        _atomic_write(out / "tokenizer_config.json", json.dumps(self.config_dict(), indent=2, ensure_ascii=False))
        specials = {name: getattr(self, name) for name in SPECIAL_NAMES}
        _atomic_write(out / "special_tokens_map.json", json.dumps(specials, indent=2))
        _atomic_write(out / "tokenizer.json", json.dumps(self._hf_tokenizer_json(), ensure_ascii=False))
        return out

    def _hf_tokenizer_json(self) -> dict:
        specials = [self.pad_token, self.unk_token, self.cls_token, self.sep_token, self.mask_token]
        added = [{"id": self.vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                  "normalized": False, "special": True} for t in sorted(set(specials), key=self.vocab.get)]
        cls, sep = self.cls_token, self.sep_token
        return {
            "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
            "normalizer": {"type": "BertNormalizer", "clean_text": True,
                           "handle_chinese_chars": self.tokenize_chinese_chars,
                           "strip_accents": self.strip_accents, "lowercase": self.do_lower_case},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "post_processor": {
                "type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": cls, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                           {"SpecialToken": {"id": sep, "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": cls, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": sep, "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                         {"SpecialToken": {"id": sep, "type_id": 1}}],
                "special_tokens": {t: {"id": t, "ids": [self.vocab[t]], "tokens": [t]} for t in (cls, sep)}},
            "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
            "model": {"type": "WordPiece", "unk_token": self.unk_token, "continuing_subword_prefix": "##",
                      "max_input_chars_per_word": MAX_WORD_CHARS, "vocab": self.vocab},
        }

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, **overrides) -> "BertTokenizer":
        """Load vocab.txt + tokenizer_config.json (settings are read, never guessed)."""
        path = Path(directory)
        folder = path.parent if path.is_file() else path
        vocab_file = path if path.is_file() else path / "vocab.txt"
        if not vocab_file.is_file():
            raise FileNotFoundError(f"no vocab.txt in {folder}; a BERT tokenizer directory holds vocab.txt and "
                                    "tokenizer_config.json (save one with tok.save_pretrained(dir))")
        settings = {}
        config_file = folder / "tokenizer_config.json"
        if config_file.is_file():
            settings = json.loads(config_file.read_text(encoding="utf-8"))
        else:
            warnings.warn(f"{config_file} not found: using BERT's defaults (do_lower_case=True). Save the "
                          "tokenizer with save_pretrained to record its settings.", stacklevel=2)
        kwargs = {k: _token_content(settings[k]) for k in _SETTING_KEYS if k in settings and settings[k] is not None}
        if "model_max_length" in kwargs and kwargs["model_max_length"] > 1e12:  # HF's "no limit" marker
            kwargs["model_max_length"] = int(1e12)
        kwargs.update(overrides)
        return cls(vocab_file, **kwargs)


_SETTING_KEYS = ("do_lower_case", "strip_accents", "tokenize_chinese_chars", "never_split", "unk_token",
                 "sep_token", "pad_token", "cls_token", "mask_token", "model_max_length", "morpheme_splitter")


def _token_content(value):
    """HF may save a special token as {"content": "[MASK]", ...}; we want the string."""
    return value["content"] if isinstance(value, dict) and "content" in value else value


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


_CLEANUP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
            (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


def _decode_token(token: str, position: int) -> str:
    """HF WordPiece decoder, one token: glue "##" pieces, else a leading space; then cleanup."""
    if position:
        token = token[2:] if token.startswith("##") else " " + token
    for dirty, clean in _CLEANUP:
        token = token.replace(dirty, clean)
    return token


def _truncate(ids_a, off_a, ids_b, off_b, budget: int, strategy: str):
    """Cut the sequences to `budget` tokens in total (specials excluded), HF's rules.

    longest_first: if the shorter fits in half, the longer gets the rest; otherwise
    both get half (the longer one the odd extra token).
    """
    if budget < 0:
        raise ValueError("max_length is smaller than the number of special tokens ([CLS]/[SEP]) it must hold")
    n_a, n_b = len(ids_a), len(ids_b) if ids_b is not None else 0
    total = n_a + n_b
    if total <= budget:
        return ids_a, off_a, ids_b, off_b
    to_remove = total - budget
    if strategy == "longest_first":
        if ids_b is None:
            keep_a, keep_b = budget, 0
        else:
            short, long_ = min(n_a, n_b), max(n_a, n_b)
            keep_long = short if short > budget else max(short, budget - short)
            keep_short = short
            if keep_short + keep_long > budget:
                keep_short = budget // 2
                keep_long = keep_short + budget % 2
            keep_a, keep_b = (keep_short, keep_long) if n_a <= n_b else (keep_long, keep_short)
    else:
        target_is_a = strategy == "only_first"
        if not target_is_a and ids_b is None:
            raise ValueError("truncation='only_second' needs a text_pair")
        n_target = n_a if target_is_a else n_b
        if n_target <= to_remove:
            which = "first" if target_is_a else "second"
            raise ValueError(
                f"truncation={strategy!r} must remove {to_remove} tokens but the {which} sequence has only "
                f"{n_target}; use truncation='longest_first' or a larger max_length")
        keep_a, keep_b = (n_a - to_remove, n_b) if target_is_a else (n_a, n_b - to_remove)
    ids_a = ids_a[:keep_a]
    off_a = off_a[:keep_a] if off_a is not None else None
    if ids_b is not None:
        ids_b = ids_b[:keep_b]
        off_b = off_b[:keep_b] if off_b is not None else None
    return ids_a, off_a, ids_b, off_b


def _to_tensors(out: dict, return_tensors, batched: bool) -> dict:
    if return_tensors is None:
        return out
    if return_tensors not in ("pt", "np"):
        raise ValueError(f"return_tensors={return_tensors!r} is not supported: use None, 'pt' or 'np'")
    if not batched:
        out = {k: [v] for k, v in out.items()}
    lengths = {len(row) for row in out["input_ids"]}
    if len(lengths) > 1:
        raise ValueError("the sequences have different lengths, so they cannot form one tensor; "
                         "pass padding=True (or padding='max_length')")
    if return_tensors == "pt":
        import torch
        return {k: torch.tensor(v, dtype=torch.long) for k, v in out.items()}
    import numpy as np
    return {k: np.array(v, dtype=np.int64) for k, v in out.items()}
