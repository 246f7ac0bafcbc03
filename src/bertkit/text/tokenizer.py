"""BERT's tokenizer: BasicTokenizer (words) + WordPiece (subwords) -> ids.

    "Héllo, [MASK] wörld!"                      raw text
      -> clean / CJK / accents / lowercase        "hello, [MASK] world!"   (basic.py)
      -> words (split on spaces + punctuation)    hello , [MASK] world !
      -> WordPiece, greedy longest match first    hello , [MASK] world !   ("tokenizer" -> token ##izer;
                                                                            wordpiece.py)
      -> ids, framed by [CLS] ... [SEP]           101 7592 1010 103 2088 999 102   (encoding.py)

This module is the call surface: `tok(text, pair, padding=..., truncation=...,
return_tensors=...)`, tokenize / encode / decode, encode_words and explain (every
step for a human).  Files: tokenizer_files.py.

Behaviour (ids, token_type_ids, attention_mask, offsets, truncation, padding, decode)
matches Hugging Face's `BertTokenizerFast` exactly; speed comes from whole-text
regex passes and a per-word cache (see wordpiece.py).
"""
from __future__ import annotations

import os
import unicodedata
import warnings
from typing import Iterable

from bertkit.common.errors import InputError
from bertkit.text.basic import char_rules, is_control, is_whitespace, pre_split_words, resolve_splitter
from bertkit.text.encoding import (TRUNCATION_STRATEGIES, BatchEncoding, assemble, decode_spans, decode_tokens, pad,
                                   to_tensors, truncate)
from bertkit.text.tokenizer_files import SPECIAL_NAMES, config_dict, HUB_OPTIONS, read_pretrained, save_tokenizer
from bertkit.text.wordpiece import WordPieceEncoder, gc_paused, load_vocab, read_vocab, wordpiece

__all__ = ["BertTokenizer", "BatchEncoding", "pre_split_words", "wordpiece", "load_vocab"]

CALL_OPTIONS = ("text_pair, add_special_tokens, padding, truncation, max_length, return_tensors, "
                "return_offsets_mapping, return_special_tokens_mask")


class BertTokenizer:
    """BERT's WordPiece tokenizer (see the module docstring for the steps).

    Args:
        vocab: path to vocab.txt (or its folder), or the list of tokens (index = id).
        do_lower_case: lowercase the text (uncased models).
        strip_accents: drop accents (NFD, then remove marks); None = same as do_lower_case.
        tokenize_chinese_chars: make every CJK ideograph a word of its own.
        never_split: extra tokens matched verbatim in the raw text and kept whole.
        unk_token ... mask_token: the special tokens' strings in this vocab.
        model_max_length: the longest input the model takes (truncation's default limit).
        morpheme_splitter: None, "kiwi" (Korean morphemes via kiwipiepy), or a
            callable text -> character positions where words must be split.
        vocab_training: how the vocab was learned (train_vocab fills it: algorithm,
            vocab_size, ...); saved in tokenizer_config.json, not used for encoding.
    """

    def __init__(self, vocab, do_lower_case: bool = True, strip_accents: bool | None = None,
                 tokenize_chinese_chars: bool = True, never_split: Iterable[str] | None = None,
                 unk_token: str = "[UNK]", sep_token: str = "[SEP]", pad_token: str = "[PAD]",
                 cls_token: str = "[CLS]", mask_token: str = "[MASK]", model_max_length: int = 512,
                 morpheme_splitter=None, vocab_training: dict | None = None):
        tokens = read_vocab(vocab)
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
        self.vocab_training = dict(vocab_training) if vocab_training else None
        self._check_special_tokens()
        self.unk_token_id = self.vocab[unk_token]
        self.sep_token_id = self.vocab[sep_token]
        self.pad_token_id = self.vocab[pad_token]
        self.cls_token_id = self.vocab[cls_token]
        self.mask_token_id = self.vocab[mask_token]
        self._rules = char_rules(self.do_lower_case, strip_accents, self.tokenize_chinese_chars)
        self._wordpiece = WordPieceEncoder(self.vocab, self.unk_token_id, self._rules,
                                           resolve_splitter(morpheme_splitter), self._verbatim_tokens())
        self._warned: set[str] = set()

    def _check_special_tokens(self):
        missing = [f"{name}={getattr(self, name)!r}" for name in SPECIAL_NAMES if getattr(self, name) not in self.vocab]
        if missing:
            raise InputError(
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

    # ----------------------------------------------------------------- checks
    @staticmethod
    def _check_text(text, what: str = "text") -> str:
        if not isinstance(text, str):
            raise TypeError(f"{what} must be a str (or a list of str for a batch), not {type(text).__name__}")
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as err:
                raise InputError(
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
            raise TypeError(f"BertTokenizer.__call__() got an unexpected keyword argument "
                            f"{next(iter(unexpected))!r}; supported: {CALL_OPTIONS}")
        batched = isinstance(text, (list, tuple))
        texts, pairs = self._as_batch(text, text_pair, batched)
        strategy, limit = self._truncation_plan(truncation, max_length, padding)
        n_special = (3 if pairs is not None else 2) if add_special_tokens else 0
        cls_id, sep_id = (self.cls_token_id, self.sep_token_id) if add_special_tokens else (None, None)
        encode = self._wordpiece.encode
        rows = []
        with gc_paused():
            for i, a in enumerate(texts):
                ids_a, off_a = encode(a, return_offsets_mapping)
                ids_b = off_b = None
                if pairs is not None:
                    ids_b, off_b = encode(pairs[i], return_offsets_mapping)
                if strategy is not None:
                    ids_a, off_a, ids_b, off_b = truncate(ids_a, off_a, ids_b, off_b, limit - n_special, strategy)
                rows.append(assemble(ids_a, off_a, ids_b, off_b, cls_id, sep_id))
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
        return BatchEncoding(to_tensors(out, return_tensors, batched))

    def _as_batch(self, text, text_pair, batched: bool):
        if batched:
            texts = [self._check_text(t, f"text[{i}]") for i, t in enumerate(text)]
            if text_pair is None:
                return texts, None
            if not isinstance(text_pair, (list, tuple)) or len(text_pair) != len(texts):
                raise InputError("for a batch, text_pair must be a list of the same length as text "
                                 f"({len(texts)} texts)")
            return texts, [self._check_text(t, f"text_pair[{i}]") for i, t in enumerate(text_pair)]
        texts = [self._check_text(text)]
        if text_pair is None:
            return texts, None
        if isinstance(text_pair, (list, tuple)):
            raise InputError("text is a single string but text_pair is a list; pass a list of texts for a batch")
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
            raise InputError(f"truncation={truncation!r} is not supported: use True, False, "
                             f"or one of {TRUNCATION_STRATEGIES}")
        limit = self.model_max_length if max_length is None else int(max_length)
        return truncation, limit

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
            raise InputError(f"padding={padding!r} is not supported: use True, False, 'longest' or 'max_length'")
        pad(rows, target, self.pad_token_id)

    # ------------------------------------------------------------- shortcuts
    def tokenize(self, text: str) -> list[str]:
        """Wordpiece strings of `text`, without [CLS]/[SEP]."""
        ids, _ = self._wordpiece.encode(self._check_text(text), False)
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
            raise InputError(f"token id {i} is outside the vocabulary (0..{len(self.ids_to_tokens) - 1})")
        return self.ids_to_tokens[int(i)]

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        """Ids -> text, as Hugging Face's WordPiece decoder does it.

        Tokens are joined with spaces, "##" pieces glue onto the previous token, and
        the spaces before . ? ! , are removed ("hello , world ." -> "hello, world.").
        Lowercasing and dropped accents cannot be undone.
        """
        return decode_tokens(self.convert_ids_to_tokens(ids, skip_special_tokens=skip_special_tokens))

    def decode_as_written(self, ids, offsets) -> str:
        """Ids -> text with the spacing of the text they were encoded from (special tokens skipped).

        `offsets` are the ids' (start, end) character spans from `return_offsets_mapping=True`:
        tokens whose spans touch there are written together.  What fill-mask uses when the
        tokenizer cuts words into morphemes: "재미없다" → 재미 / 없 / 다 → "재미없다", not "재미 없 다".
        """
        ids, offsets = (x.tolist() if hasattr(x, "tolist") else list(x) for x in (ids, offsets))
        special = set(self.all_special_ids)
        kept = [(i, tuple(o)) for i, o in zip(ids, offsets) if i not in special]
        return decode_spans(self.convert_ids_to_tokens([i for i, _ in kept]), [o for _, o in kept])

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
        return self._wordpiece.words(self._check_text(text))

    def explain(self, text: str, pair: str | None = None) -> str:
        """Every step for `text` (and `pair`), for a human: what `bertkit tokenize` prints.

        Steps 1-5 run once per segment (A = text, B = pair); step 6 shows the model's
        input [CLS] A [SEP] (B [SEP]) as a table of token / segment id / id.
        """
        segments = [("A", self._check_text(text))]
        if pair is not None:
            segments.append(("B", self._check_text(pair, "pair")))
        lines = [f"settings         : do_lower_case={self.do_lower_case}, strip_accents={self.strip_accents}, "
                 f"tokenize_chinese_chars={self.tokenize_chinese_chars}, "
                 f"morpheme_splitter={self.morpheme_splitter!r}"]
        for name, segment in segments:
            if pair is not None:
                lines.append(f"--- segment {name} (token_type_id {0 if name == 'A' else 1}) ---")
            lines += self._explain_segment(segment)
        enc = self(text, pair)
        tokens = self.convert_ids_to_tokens(enc["input_ids"])
        frame = "[CLS] A [SEP] B [SEP]" if pair is not None else "[CLS] A [SEP]"
        lines.append(f"6 model input    : {frame}")
        lines += _columns([("  token", tokens), ("  segment id", enc["token_type_ids"]),
                           ("  id", enc["input_ids"])])
        lines.append(f"  ids            : {enc['input_ids']}   ({self.cls_token}={self.cls_token_id}, "
                     f"{self.sep_token}={self.sep_token_id})")
        return "\n".join(lines)

    def _explain_segment(self, text: str) -> list[str]:
        """Steps 1-5 (cleaning .. wordpieces) of one text."""
        rules = self._rules
        cleaned = "".join(" " if is_whitespace(c) else c for c in text if c != "\0" and not is_control(c))
        chars, _ = rules.normalize_aligned(text)
        words = self.encode_words(text)
        pieces = [self.ids_to_tokens[i] for w in words for i in w[3]]
        done = ["CJK spaced"] if rules.tokenize_chinese_chars else []
        done += (["accents stripped"] if rules.strip_accents else []) + (["lowercased"] if rules.do_lower_case else [])
        return [f"1 text           : {text!r}",
                f"2 cleaned        : {cleaned!r}   (control chars removed, whitespace -> ' ')",
                f"3 normalized     : {''.join(chars)!r}   ({', '.join(done) or 'unchanged'})",
                f"4 words          : {[w[0] for w in words]}   (special tokens like {self.mask_token} "
                "are matched in the raw text first)",
                f"  word spans     : {[(w[1], w[2]) for w in words]}",
                f"5 wordpieces     : {pieces}"]

    # ------------------------------------------------------------ save / load
    def config_dict(self) -> dict:
        """The settings as saved in tokenizer_config.json."""
        return config_dict(self)

    def save_pretrained(self, directory: str | os.PathLike):
        """Write vocab.txt, tokenizer_config.json, special_tokens_map.json, tokenizer.json.

        tokenizer.json describes the same pipeline for Hugging Face's `tokenizers`, so
        `transformers.BertTokenizerFast.from_pretrained(directory)` loads the same
        settings (a custom callable morpheme splitter cannot be saved; a warning says so).
        Returns the directory as a Path.
        """
        return save_tokenizer(self, directory)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **overrides) -> "BertTokenizer":
        """Load vocab.txt + tokenizer_config.json (settings are read, never guessed).

        `name_or_path`: a folder, "minilm", a Hub name ("bert-base-uncased"; also `revision=`,
        `cache_dir=`, `local_files_only=`, `token=`) or a Google TensorFlow release (casing from
        its name).  `overrides` replace saved settings, e.g. from_pretrained(d, model_max_length=128).
        """
        hub = {k: overrides.pop(k) for k in HUB_OPTIONS if k in overrides}
        vocab_file, kwargs = read_pretrained(name_or_path, casing_given="do_lower_case" in overrides, **hub)
        kwargs.update(overrides)
        return cls(vocab_file, **kwargs)


def _columns(rows: list[tuple[str, list]]) -> list[str]:
    """Rows of cells aligned in columns (CJK / Hangul count as two characters wide)."""
    cells = [[str(v) for v in values] for _, values in rows]
    widths = [max(_width(c[j]) for c in cells) for j in range(len(cells[0]))]
    return [f"{label:<17}: " + " ".join(c + " " * (w - _width(c)) for c, w in zip(row, widths)).rstrip()
            for (label, _), row in zip(rows, cells)]


def _width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)
