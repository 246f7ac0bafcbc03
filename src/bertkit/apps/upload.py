"""Share a model on the Hugging Face Hub: `push_to_hub("runs/sst2/best", "me/bert-sst2")`.

The last step of a fine-tuning run is often to publish it.  This module checks that a folder
is a whole BERT (config.json of a BERT, vocab.txt, weights), writes a model card (README.md:
task, labels, data, scores, the command that trained it), and hands the upload to
huggingface_hub (`HfApi.create_repo` + `HfApi.upload_folder`), so tokens, endpoints and
retries are that library's.  Only the model's own files go up (config, tokenizer files,
weights, task.json, README.md): never run/ checkpoints or other files of the folder.

    push_to_hub("runs/sst2/best", "me/bert-sst2", private=True)    # a folder ...
    push_to_hub(model, "me/bert-sst2", tokenizer=tokenizer)        # ... or a model in memory
    bertkit upload runs/sst2/best me/bert-sst2 --private           # the same from the shell

Once uploaded, `BertModel.from_pretrained("me/bert-sst2")` (bertkit or transformers) opens it.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from bertkit.apps.model_card import model_card
from bertkit.common.errors import InputError
from bertkit.common.hub import import_hub
from bertkit.common.hub_names import (CONFIG, PYTORCH_BIN, PYTORCH_INDEX, SAFETENSORS, SAFETENSORS_INDEX,
                                      TOKENIZER_FILES, TOKENIZER_JSON, VOCAB, valid_repo_id)
from bertkit.modeling.pretrained import TASK_FILE

CARD = "README.md"
_LOGIN = "pass token=... (--token), set HF_TOKEN, or run `hf auth login`"
_TOKENS_PAGE = "https://huggingface.co/settings/tokens"


class UploadError(InputError):
    """An upload that cannot go ahead; the one-line message says what to do.  `reason` names the case:
    "not_a_model", "invalid_name", "no_token", "auth", "unreachable", "http"."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def push_to_hub(folder_or_model: str | os.PathLike | Any, repo_id: str, *, tokenizer: Any = None,
                private: bool = False, revision: str | None = None, commit_message: str | None = None,
                token: str | None = None, language: str | None = None) -> dict:
    """Upload a model folder (or a model + its tokenizer) to the Hub repo `repo_id`; returns what was done.

    repo_id          "namespace/name" (or "name": the token's own namespace); created if missing.
    private          create the repo private (an existing repo keeps its visibility).
    revision         the branch to commit to (created from main if missing); default "main".
    commit_message   default "Upload <task> model with bertkit".
    token            a token with write access (default: HF_TOKEN, else the `hf auth login` one).
    language         the model card's language ("ko", "en", ...), when the task does not say.

    Returns {"repo_id", "url", "revision", "commit", "files"}.
    """
    if not isinstance(repo_id, str) or not valid_repo_id(repo_id):
        raise UploadError(f"invalid Hub repo id {repo_id!r}: use 'namespace/name' (letters, digits, '-', '_', '.')",
                          "invalid_name")
    if isinstance(folder_or_model, (str, os.PathLike)):
        model_files(Path(folder_or_model))          # a wrong folder is said first, before any token question
    hf = import_hub("uploading a model")
    token = token or hf.get_token()
    if not token:
        raise UploadError(f"uploading to the Hub needs a token with write access: {_LOGIN} "
                          f"(create one at {_TOKENS_PAGE})", "no_token")
    with tempfile.TemporaryDirectory(prefix="bertkit-upload-") as tmp:
        folder = _as_folder(folder_or_model, tokenizer, Path(tmp) / "model")
        files = model_files(folder)
        stage = Path(tmp) / "stage"
        _stage(stage, folder, files)
        if not (stage / CARD).exists():
            (stage / CARD).write_text(model_card(folder, repo_id, language=language), encoding="utf-8")
            files.append(CARD)
        task = _task_name(folder)
        message = commit_message or f"Upload {task + ' ' if task else ''}model with bertkit"
        commit = _upload(hf, stage, repo_id, private, revision, message, token)
    return {"repo_id": repo_id, "url": str(commit.repo_url), "revision": revision or "main",
            "commit": commit.oid, "files": sorted(files)}


def model_files(folder: Path) -> list[str]:
    """The files of `folder` that make the model (checked: a BERT config, a vocab, weights); else UploadError."""
    if not folder.is_dir():
        raise UploadError(f"{folder} is not a folder: pass the folder of a saved model (e.g. runs/sst2/best)",
                          "not_a_model")
    missing = [n for n in (CONFIG, VOCAB) if not (folder / n).is_file()]
    weights = _weights(folder)
    if missing or not weights:
        hint = next((f"; did you mean {folder / sub}?" for sub in ("best", "model", "bert/model")
                     if (folder / sub / CONFIG).is_file()), "; pass the folder that save_pretrained or "
                                                                "`bertkit finetune` wrote (e.g. runs/sst2/best)")
        what = ", ".join(missing + ([] if weights else ["model.safetensors"]))
        raise UploadError(f"{folder} is not a model folder (no {what}){hint}", "not_a_model")
    config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    if config.get("model_type", "bert") != "bert":
        raise UploadError(f"{folder}/config.json is a {config.get('model_type')!r} model, not a BERT: bertkit "
                          f"uploads the BERTs it saves", "not_a_model")
    extra = [n for n in (*TOKENIZER_FILES, TOKENIZER_JSON, TASK_FILE, CARD) if (folder / n).is_file()]
    return [CONFIG, VOCAB, *extra, *weights]


def _weights(folder: Path) -> list[str]:
    """model.safetensors, or pytorch_model.bin, or an index and the shards it lists (all present)."""
    for single, index in ((SAFETENSORS, SAFETENSORS_INDEX), (PYTORCH_BIN, PYTORCH_INDEX)):
        if (folder / single).is_file():
            return [single]
        if (folder / index).is_file():
            shards = sorted(set(json.loads((folder / index).read_text(encoding="utf-8"))["weight_map"].values()))
            if all((folder / s).is_file() for s in shards):
                return [index, *shards]
    return []


def _as_folder(folder_or_model: Any, tokenizer: Any, scratch: Path) -> Path:
    """A folder as is; a model saved (with its tokenizer) into `scratch`."""
    if isinstance(folder_or_model, (str, os.PathLike)):
        return Path(folder_or_model).expanduser()
    if not hasattr(folder_or_model, "save_pretrained"):
        raise UploadError(f"cannot upload a {type(folder_or_model).__name__}: pass a model folder or a bertkit "
                          f"model (with tokenizer=...)", "not_a_model")
    if tokenizer is None:
        raise UploadError("uploading a model needs its tokenizer too: push_to_hub(model, repo_id, "
                          "tokenizer=tokenizer)", "not_a_model")
    folder_or_model.save_pretrained(scratch, tokenizer=tokenizer)
    return scratch


def _stage(stage: Path, folder: Path, files: list[str]) -> None:
    """A folder of links to the files that go up (upload_folder uploads a whole folder)."""
    stage.mkdir(parents=True)
    for name in files:
        try:
            os.symlink((folder / name).resolve(), stage / name)
        except OSError:                          # no symlinks here: the card is small, weights are copied
            (stage / name).write_bytes((folder / name).read_bytes())


def _task_name(folder: Path) -> str | None:
    task = folder / TASK_FILE
    return json.loads(task.read_text(encoding="utf-8")).get("task") if task.is_file() else None


def _upload(hf, stage: Path, repo_id: str, private: bool, revision: str | None, message: str, token: str):
    """create_repo (exist_ok), create_branch when a branch is named, upload_folder; Hub errors -> one line."""
    api = hf.HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        return api.upload_folder(repo_id=repo_id, folder_path=str(stage), revision=revision,
                                 commit_message=message)
    except Exception as err:
        translated = _translate(hf, err, repo_id)
        if translated is None:
            raise
        raise translated from err


def _translate(hf, err: BaseException, repo_id: str) -> UploadError | None:
    """huggingface_hub's exception -> one UploadError (None: not a Hub answer, a bug to show)."""
    status = getattr(getattr(err, "response", None), "status_code", None)
    if isinstance(err, (ConnectionError, TimeoutError, OSError)) and status is None:
        return UploadError(f"could not reach the Hub ({hf.constants.ENDPOINT}: {type(err).__name__}): check the "
                           f"network connection and retry", "unreachable")
    if status in (401, 403):
        return UploadError(f"the Hub refused to let this token write to '{repo_id}' (HTTP {status}): use a token "
                           f"with write access to that namespace ({_TOKENS_PAGE}); {_LOGIN}", "auth")
    if status is not None:
        first = str(err).splitlines()[0] if str(err) else status
        return UploadError(f"the Hub failed to store '{repo_id}' ({type(err).__name__}: {first}); retry later",
                           "http")
    if type(err).__module__.startswith(("httpx", "httpcore", "requests")):
        return UploadError(f"could not reach the Hub ({hf.constants.ENDPOINT}: {type(err).__name__}): check the "
                           f"network connection and retry", "unreachable")
    return None
