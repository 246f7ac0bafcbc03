"""Hub names and paths: is a `--model` string a Hugging Face Hub repo id or a path on disk?

The rules of `bertkit.common.hub.resolve_model_dir`, without the network: an existing path
wins; a string that can only be a path ("./x", "a/b/c", "x/config.json") is never a repo id;
"runs/nope" while a folder runs/ exists is a mistyped folder (`refuse_missing_subfolder`).
The file names bertkit reads in a model folder are named here once.
"""
from __future__ import annotations

import difflib
import os
import re
from pathlib import Path, PurePosixPath
from typing import Any

from bertkit.common.errors import NotFoundError


class HubError(NotFoundError):
    """A Hub name that cannot be turned into a model directory; the one-line message says what to do.

    `reason` names the case for code that wants to react: "path_not_found", "invalid_name",
    "no_huggingface_hub", "repo_not_found", "gated", "auth", "revision_not_found", "offline",
    "unreachable", "incomplete_cache", "not_bert", "no_config", "no_vocab", "other_weights",
    "no_weights", "bad_file", "http".
    """

    def __init__(self, message: str, reason: str = "hub"):
        super().__init__(" ".join(message.split("\n")))
        self.reason = reason

    def __str__(self) -> str:
        return self.args[0]


CONFIG = "config.json"
VOCAB = "vocab.txt"
TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_FILES = ("tokenizer_config.json", "special_tokens_map.json")
SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PYTORCH_BIN = "pytorch_model.bin"                 # a pickle: read with torch's weights-only unpickler
PYTORCH_INDEX = "pytorch_model.bin.index.json"
#: Weight files of other frameworks, never downloaded.
OTHER_WEIGHTS = ("tf_model.h5", "flax_model.msgpack", "model.ckpt.index")
#: A string ending in one of these names or suffixes is a file path, not a repo id.
_FILE_NAMES = frozenset({CONFIG, VOCAB, TOKENIZER_JSON, SAFETENSORS, SAFETENSORS_INDEX, *TOKENIZER_FILES,
                         PYTORCH_BIN, PYTORCH_INDEX, *OTHER_WEIGHTS})
_FILE_SUFFIXES = (".json", ".txt", ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx")
#: huggingface_hub's rule for repo ids (ASCII; "name" or "namespace/name"; each part 1-96 chars).
_REPO_ID = re.compile(r"(\b[\w\-.]{1,96}\b/)?\b[\w\-.]{1,96}\b", re.ASCII)


def looks_like_path(text: str) -> bool:
    """True for strings that can only mean a file system path ("./x", "/x", "~/x", "a/b/c", "x/vocab.txt")."""
    if text in ("", ".", "..") or text.startswith(("./", "../", "/", "~", ".\\", "..\\")) or text.endswith("/"):
        return True
    if "\\" in text or (os.sep != "/" and os.sep in text) or re.match(r"[A-Za-z]:", text):
        return True
    name = PurePosixPath(text).name
    return text.count("/") > 1 or name in _FILE_NAMES or name.lower().endswith(_FILE_SUFFIXES)


def valid_repo_id(text: str) -> bool:
    """The check huggingface_hub makes before any request (`validate_repo_id`)."""
    return (bool(_REPO_ID.fullmatch(text)) and text.count("/") <= 1 and "--" not in text and ".." not in text
            and not text.endswith(".git"))


def is_hub_name(name_or_path: Any) -> bool:
    """True when `resolve_model_dir` would look `name_or_path` up on the Hub.

    That is: a `str` (never a `Path`) that is not an existing file or directory, does not look like
    a path, and is a valid repo id.  ``is_hub_name("klue/bert-base")`` is True unless a folder
    ``klue/bert-base`` exists in the current directory; ``is_hub_name("./bert")`` is False.
    """
    if not isinstance(name_or_path, str) or looks_like_path(name_or_path):
        return False
    return valid_repo_id(name_or_path) and not os.path.exists(name_or_path)


def refuse_missing_subfolder(name: str) -> None:
    """"runs/nope" while a folder runs/ exists here: a mistyped local folder, not a Hub repo."""
    folder, _, rest = name.partition("/")
    if not rest or not Path(folder).expanduser().is_dir():
        return
    subfolders = sorted(p.name for p in Path(folder).expanduser().iterdir() if p.is_dir())
    close = difflib.get_close_matches(rest, subfolders, n=1, cutoff=0.5)
    hint = f" (did you mean '{folder}/{close[0]}'?)" if close else ""
    held = f"it holds {', '.join(subfolders[:8])}{', ...' if len(subfolders) > 8 else ''}" if subfolders \
        else "it has no subfolders"
    raise HubError(f"model path not found: {name!r} does not exist{hint}; {folder}/ is a local folder and {held} "
                   f"(a Hub repo named {name!r} is not looked up while ./{folder} exists)", "path_not_found")
