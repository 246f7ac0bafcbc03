"""What the files of a Hub repo mean to bertkit, without any network: which to download, in which
order, and what a downloaded config.json, index or tokenizer.json says.

`bertkit.common.hub` asks huggingface_hub for a repo's file list and then for the files these
functions name; everything here reads names or local files only, so it is tested without a Hub.
"""
from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath

from bertkit.common.hub_names import (PYTORCH_BIN, PYTORCH_INDEX, SAFETENSORS, SAFETENSORS_INDEX, TOKENIZER_FILES,
                                      TOKENIZER_JSON, VOCAB, HubError)

_OTHER = re.compile(r"(tf_model|flax_model)([-.\w]*)\.(h5|msgpack)(\.index\.json)?|model\.ckpt.*")


def tokenizer_plan(files: set[str], what: str) -> list[str]:
    """vocab.txt, else tokenizer.json (a vocab.txt is derived from it), plus tokenizer_config.json /
    special_tokens_map.json when the repo has them."""
    if VOCAB in files:
        names = [VOCAB]
    elif TOKENIZER_JSON in files:
        names = [TOKENIZER_JSON]
    else:
        raise HubError(f"{what} has no vocab.txt (nor a tokenizer.json to derive it from): it holds no BERT "
                       f"WordPiece vocabulary; use a repo with vocab.txt", "no_vocab")
    return names + [name for name in TOKENIZER_FILES if name in files]


def weights_plan(files: set[str], what: str) -> str:
    """The weight file to download: model.safetensors, its index, pytorch_model.bin, its index (that order)."""
    for name in (SAFETENSORS, SAFETENSORS_INDEX, PYTORCH_BIN, PYTORCH_INDEX):
        if name in files:
            return name
    other = sorted(f for f in files if _OTHER.fullmatch(PurePosixPath(f).name))
    if other:
        raise HubError(
            f"{what} has weights only as {', '.join(other[:3])} (TensorFlow or Flax), not PyTorch; bertkit reads "
            f"model.safetensors or pytorch_model.bin. Convert it where TensorFlow/Flax is installed: transformers' "
            f"BertModel.from_pretrained(name, from_tf=True) (or from_flax=True), then save_pretrained(dir) and "
            f"pass dir", "other_weights")
    raise HubError(f"{what} has no weights (no model.safetensors nor pytorch_model.bin): use a repo or revision "
                   f"that has them, or need_weights=False for its tokenizer", "no_weights")


def read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise HubError(f"{path.name} of {what} is not readable JSON ({err})", "bad_file") from err
    if not isinstance(data, dict):
        raise HubError(f"{path.name} of {what} is not a JSON object", "bad_file")
    return data


def check_bert(config: Path, what: str) -> None:
    """Refuse a config.json that is not a BERT's (before any weight is downloaded)."""
    data = read_json(config, what)
    model_type = data.get("model_type")
    if model_type == "bert":
        return
    archs = data.get("architectures") or []
    if model_type is None and all(str(a).startswith("Bert") for a in archs):
        return                                   # very old BERT configs carry no model_type
    kind = model_type if model_type is not None else f"unknown (architectures {archs})"
    raise HubError(f"{what} is not a BERT: its config.json says model_type={kind!s}; bertkit opens "
                   f"model_type 'bert' only", "not_bert")


def shard_names(index: Path, files: set[str] | None, what: str) -> list[str]:
    """The shard file names an index (model.safetensors.index.json or pytorch_model.bin.index.json) lists,
    checked against the repo listing; shards have the extension of the index's weights."""
    weight_map = read_json(index, what).get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise HubError(f"{index.name} of {what} has no weight_map", "bad_file")
    shards = sorted(set(map(str, weight_map.values())))
    suffix = PurePosixPath(index.name[: -len(".index.json")]).suffix          # ".safetensors" or ".bin"
    bad = [s for s in shards if PurePosixPath(s).suffix != suffix or "/" in s or (files is not None and s not in files)]
    if bad:
        raise HubError(f"{index.name} of {what} lists shard(s) {bad[:3]} that are not {suffix} files of the "
                       f"repo", "bad_file")
    return shards


def vocab_from_tokenizer_json(path: Path, what: str) -> tuple[list[str], dict]:
    """(tokens ordered by id, tokenizer settings) of a WordPiece tokenizer.json.

    tokenizer.json keeps the vocabulary as {"model": {"type": "WordPiece", "vocab": {token: id}}}
    and tokens added later in "added_tokens": [{"id": .., "content": ..}]; vocab.txt is one
    token per line, line number = id, so the ids must run 0..V-1 without holes.
    """
    data = read_json(path, what)
    model = data.get("model") or {}
    if model.get("type", "WordPiece") != "WordPiece" or not isinstance(model.get("vocab"), dict):
        raise HubError(f"{what} has no vocab.txt and its tokenizer.json holds a {model.get('type')} model, not a "
                       f"WordPiece vocabulary: it is not a BERT tokenizer", "no_vocab")
    by_id: dict[int, str] = {}
    pairs = list(model["vocab"].items()) + [(t.get("content"), t.get("id")) for t in data.get("added_tokens") or []]
    for token, index in pairs:
        if not isinstance(token, str) or not isinstance(index, int) or by_id.setdefault(index, token) != token:
            raise HubError(f"tokenizer.json of {what} has a bad vocabulary entry {token!r}: {index!r}", "no_vocab")
        if "\n" in token or "\r" in token:
            raise HubError(f"tokenizer.json of {what} has a token with a line break: {token!r}", "no_vocab")
    if sorted(by_id) != list(range(len(by_id))):
        raise HubError(f"tokenizer.json of {what} has vocabulary ids with holes: cannot write vocab.txt", "no_vocab")
    norm = data.get("normalizer") or {}
    settings = {}
    if norm.get("type") == "BertNormalizer":
        settings = {"do_lower_case": bool(norm.get("lowercase", True)), "strip_accents": norm.get("strip_accents"),
                    "tokenize_chinese_chars": bool(norm.get("handle_chinese_chars", True))}
    return [by_id[i] for i in range(len(by_id))], settings
