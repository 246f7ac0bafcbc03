"""Open any BERT: one entry point for every floor above this one.

    ckpt = open_checkpoint("bert-base-uncased")      # a Hub name, a folder, "minilm", a Google TF release
    ckpt.config, ckpt.architecture, ckpt.task        # what it is, before loading any weight
    model = ckpt.model()                             # the head class it was saved with (config "architectures")
    tokenizer = ckpt.tokenizer()                     # its vocab and settings
    ckpt.has_mlm_head, ckpt.has_nsp_head             # can it fill masks / judge sentence pairs?

The CLI, the pipelines, fine-tuning, search, the web demo and the attention pictures
all open models through `open_checkpoint`, so a Hub name, a local folder and a Google
TensorFlow release work the same everywhere, and the "which class do I build?"
question is answered in one place:

* a fine-tuned folder has `task.json` (written by `bertkit finetune`) and its config's
  `architectures` names the head it was trained with;
* a published checkpoint names its class in `architectures` too ("BertForMaskedLM",
  "BertForPreTraining", or "BertModel" for a bare encoder);
* Google's TensorFlow releases carry both pretraining heads: BertForPreTraining.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import safe_open
from torch import nn

from bertkit.common.errors import InputError
from bertkit.modeling.checkpoint import PYTORCH_NAME, SAFETENSORS_NAME, read_config, resolve_checkpoint, weight_files
from bertkit.modeling.config import BertConfig
from bertkit.modeling.heads import HEAD_CLASSES
from bertkit.modeling.tf_checkpoint import is_tf_checkpoint_dir, read_tf_index
from bertkit.text.tokenizer import BertTokenizer

#: What `bertkit finetune` writes next to a fine-tuned model: task name, family, options, max_seq_length.
TASK_FILE = "task.json"


@dataclass
class Checkpoint:
    """A model's files, opened: its config and task are read, its weights are not (yet)."""

    source: str                  # what the user named: a path, "minilm" or a Hub name
    directory: Path              # where the files are on disk
    config: BertConfig
    task: dict | None            # task.json of a fine-tuned model, else None
    format: str                  # "safetensors", "pytorch" or "tensorflow"

    @property
    def architecture(self) -> str:
        """The class the weights were saved from (config.json "architectures"), known to bertkit."""
        if self.format == "tensorflow":
            return "BertForPreTraining"
        saved = (self.config.extra.get("architectures") or ["BertModel"])[0]
        return saved if saved in HEAD_CLASSES else "BertModel"

    def weight_names(self) -> set[str]:
        """Names of the tensors in the weight files (read from the file headers, not the data)."""
        if self.format == "tensorflow":
            return set(read_tf_index(self.directory)[1])
        names: set[str] = set()
        for path in weight_files(self.directory):
            if path.suffix == ".safetensors":
                with safe_open(str(path), framework="pt") as f:
                    names.update(f.keys())
            else:
                return set()                 # a pickle's names cannot be read without loading it
        return names

    @property
    def has_mlm_head(self) -> bool:
        """True if the checkpoint holds a trained masked-LM head (fill-mask gives real answers)."""
        return any(n.startswith(("cls.predictions.transform", "cls/predictions/transform"))
                   for n in self.weight_names()) or self.architecture in ("BertForMaskedLM", "BertForPreTraining")

    @property
    def has_nsp_head(self) -> bool:
        """True if the checkpoint holds a trained next-sentence head."""
        return any(n.startswith(("cls.seq_relationship", "cls/seq_relationship")) for n in self.weight_names())

    def model(self, cls: type[nn.Module] | str | None = None, **overrides: Any) -> nn.Module:
        """Load the weights into `cls` (default: the saved architecture), in eval mode."""
        if isinstance(cls, str):
            if cls not in HEAD_CLASSES:
                raise InputError(f"unknown model class {cls!r}; choose one of {', '.join(HEAD_CLASSES)}")
            cls = HEAD_CLASSES[cls]
        return (cls or HEAD_CLASSES[self.architecture]).from_pretrained(self.directory, **overrides)

    def tokenizer(self, **overrides: Any) -> BertTokenizer:
        """The tokenizer saved with the model (vocab.txt + tokenizer_config.json)."""
        return BertTokenizer.from_pretrained(self.directory, **overrides)

    @property
    def max_seq_length(self) -> int | None:
        """The sequence length a fine-tuned model was trained with (task.json), if known."""
        task = self.task or {}
        return task.get("max_seq_length", task.get("max_length"))


def open_checkpoint(name_or_path: str | os.PathLike, *, revision: str | None = None,
                    cache_dir: str | os.PathLike | None = None, local_files_only: bool | None = None,
                    token: str | bool | None = None) -> Checkpoint:
    """Find a model's files (path, "minilm", Hub name or Google TF release) and read its config and task."""
    directory = resolve_checkpoint(name_or_path, revision=revision, cache_dir=cache_dir,
                                   local_files_only=local_files_only, token=token)
    config = read_config(directory)
    task_file = directory / TASK_FILE
    task = json.loads(task_file.read_text(encoding="utf-8")) if task_file.is_file() else None
    if (directory / SAFETENSORS_NAME).is_file() or (directory / (SAFETENSORS_NAME + ".index.json")).is_file():
        fmt = "safetensors"
    elif is_tf_checkpoint_dir(directory) and not (directory / PYTORCH_NAME).is_file():
        fmt = "tensorflow"
    else:
        fmt = "pytorch"
    return Checkpoint(source=str(name_or_path), directory=directory, config=config, task=task, format=fmt)
