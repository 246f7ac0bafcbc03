"""A tokenizer on disk: the files `save_pretrained` writes and `from_pretrained` reads.

    vocab.txt                one token per line; the line number is the id
    tokenizer_config.json    the settings (do_lower_case, strip_accents, tokenize_chinese_chars,
                             never_split, special tokens, model_max_length, morpheme_splitter,
                             and vocab_training: how train_vocab learned the vocab)
    special_tokens_map.json  the five special tokens by role
    tokenizer.json           the same pipeline described for Hugging Face's `tokenizers`

The settings are always read from tokenizer_config.json, never guessed from a
folder's name ("bert-base-uncased" may hold a cased vocab).  The files are the ones
Hugging Face writes, so `transformers.BertTokenizerFast.from_pretrained(folder)` reads
ours and we read theirs.  Each file is written atomically (bertkit.common.files).
"""
from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

from bertkit.common.errors import InputError, NotFoundError
from bertkit.common.hub import resolve_model_dir
from bertkit.common.files import atomic_write_text
from bertkit.text.wordpiece import MAX_WORD_CHARS

#: the five special tokens by role (the keys of special_tokens_map.json)
SPECIAL_NAMES = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")

#: the tokenizer_config.json keys that are BertTokenizer arguments
SETTING_KEYS = ("do_lower_case", "strip_accents", "tokenize_chinese_chars", "never_split", "unk_token",
                "sep_token", "pad_token", "cls_token", "mask_token", "model_max_length", "morpheme_splitter",
                "vocab_training")

HF_NO_LIMIT = int(1e12)       # Hugging Face's model_max_length for "no limit" (it saves ~1e30)


def config_dict(tok) -> dict:
    """tokenizer_config.json of a BertTokenizer (a callable morpheme splitter is saved as None)."""
    splitter = tok.morpheme_splitter if isinstance(tok.morpheme_splitter, str) else None
    config = {"tokenizer_class": "BertTokenizer", "do_lower_case": tok.do_lower_case,
              "strip_accents": tok.strip_accents, "tokenize_chinese_chars": tok.tokenize_chinese_chars,
              "never_split": tok.never_split or None, "unk_token": tok.unk_token, "sep_token": tok.sep_token,
              "pad_token": tok.pad_token, "cls_token": tok.cls_token, "mask_token": tok.mask_token,
              "model_max_length": tok.model_max_length, "morpheme_splitter": splitter,
              "do_basic_tokenize": True, "clean_up_tokenization_spaces": False}
    if tok.vocab_training:
        config["vocab_training"] = dict(tok.vocab_training)
    return config


def hf_tokenizer_json(tok) -> dict:
    """tokenizer.json: normalizer, pre-tokenizer, [CLS] A [SEP] B [SEP] template, WordPiece model."""
    specials = [tok.pad_token, tok.unk_token, tok.cls_token, tok.sep_token, tok.mask_token]
    added = [{"id": tok.vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for t in sorted(set(specials), key=tok.vocab.get)]
    cls, sep = tok.cls_token, tok.sep_token
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": True,
                       "handle_chinese_chars": tok.tokenize_chinese_chars,
                       "strip_accents": tok.strip_accents, "lowercase": tok.do_lower_case},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": cls, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": sep, "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": cls, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": sep, "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": sep, "type_id": 1}}],
            "special_tokens": {t: {"id": t, "ids": [tok.vocab[t]], "tokens": [t]} for t in (cls, sep)}},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": tok.unk_token, "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": MAX_WORD_CHARS, "vocab": tok.vocab},
    }


def save_tokenizer(tok, directory: str | os.PathLike) -> Path:
    """Write the four files into `directory` (created if needed; other files there are kept)."""
    if callable(tok.morpheme_splitter):
        warnings.warn("a custom morpheme_splitter callable cannot be saved; tokenizer_config.json records "
                      "morpheme_splitter=None, pass it again when loading", stacklevel=3)
    out = Path(directory)
    atomic_write_text(out / "vocab.txt", "".join(t + "\n" for t in tok.ids_to_tokens))
    atomic_write_text(out / "tokenizer_config.json", json.dumps(config_dict(tok), indent=2, ensure_ascii=False))
    specials = {name: getattr(tok, name) for name in SPECIAL_NAMES}
    atomic_write_text(out / "special_tokens_map.json", json.dumps(specials, indent=2))
    atomic_write_text(out / "tokenizer.json", json.dumps(hf_tokenizer_json(tok), ensure_ascii=False))
    return out


HUB_OPTIONS = ("revision", "cache_dir", "local_files_only", "token")


def casing_from_release_name(name: str | os.PathLike) -> bool | None:
    """Whether a Google release lowercases its text, from its name; None when the name does not tell.

    "uncased_L-2_H-128_A-2" -> True, "cased_L-12_H-768_A-12" and "multi_cased_..." -> False,
    "multilingual_L-12_H-768_A-12" (old, uncased) and "chinese_..." -> True, as in google-research/bert.
    """
    p = Path(name)
    words = re.split(r"[_\-.\s]+", (p.parent.name if p.name.startswith("bert_model.ckpt") else p.name).lower())
    if "uncased" in words or "cased" in words:
        return "uncased" in words
    return True if words[0] in ("multilingual", "chinese") else None


def _settings_without_config(folder: Path, casing_given: bool) -> dict:
    """No tokenizer_config.json: a Google release takes its casing from its name; else BERT's defaults."""
    if (folder / "bert_config.json").is_file() and not casing_given:
        lower = casing_from_release_name(folder)
        if lower is None:
            raise InputError(f"{folder} is a Google TensorFlow release whose name says neither 'uncased' nor "
                             "'cased', and it has no tokenizer_config.json: pass do_lower_case=True or False "
                             "(command line: --uncased / --cased).")
        return {"do_lower_case": lower}
    if not casing_given and not (folder / "bert_config.json").is_file():
        warnings.warn(f"{folder / 'tokenizer_config.json'} not found: using BERT's defaults (do_lower_case=True). "
                      "Save the tokenizer with save_pretrained to record its settings.", stacklevel=4)
    return {}


def read_pretrained(name_or_path: str | os.PathLike, casing_given: bool = False, **hub_options) -> tuple[Path, dict]:
    """(vocab.txt path, BertTokenizer keyword arguments from tokenizer_config.json).

    `name_or_path`: a folder, the path of a vocab.txt (its folder is searched for the config),
    "minilm", or a Hub name (only the tokenizer files are fetched: see bertkit.common.hub).
    """
    path = Path(name_or_path).expanduser()
    if not path.exists():
        path = resolve_model_dir(name_or_path, need_weights=False, **hub_options)
    folder = path.parent if path.is_file() else path
    vocab_file = path if path.is_file() else path / "vocab.txt"
    if not vocab_file.is_file():
        raise NotFoundError(f"no vocab.txt in {folder}; a BERT tokenizer directory holds vocab.txt and "
                            "tokenizer_config.json (save one with tok.save_pretrained(dir))")
    config_file = folder / "tokenizer_config.json"
    if config_file.is_file():
        settings = json.loads(config_file.read_text(encoding="utf-8"))
    else:
        settings = _settings_without_config(folder, casing_given)
    kwargs = {k: _token_content(settings[k]) for k in SETTING_KEYS if settings.get(k) is not None}
    if kwargs.get("model_max_length", 0) > HF_NO_LIMIT:
        kwargs["model_max_length"] = HF_NO_LIMIT
    return vocab_file, kwargs


def _token_content(value):
    """HF may save a special token as {"content": "[MASK]", ...}; we want the string."""
    return value["content"] if isinstance(value, dict) and "content" in value else value
