"""What every pipeline shares: loading, batching, device placement."""
from __future__ import annotations

import os
import warnings
from typing import Iterable

import torch

from bertkit.common.devices import resolve_device
from bertkit.common.errors import InputError
from bertkit.modeling import BertModel
from bertkit.modeling.checkpoint import NewHeadWarning
from bertkit.modeling.pretrained import open_checkpoint
from bertkit.modeling.quantize import quantize_dynamic_int8
from bertkit.modeling.onnx_runtime import onnx_model, require_onnxruntime

BACKENDS = ("torch", "onnx")


class Pipeline:
    """Base class: holds `self.model` (eval mode, on `self.device`) and `self.tokenizer`.

    Subclasses set `model_class` (the bertkit class to load from a directory) and
    implement `__call__`.
    """

    model_class: type = BertModel

    def __init__(self, model, tokenizer=None, device=None, batch_size: int = 32, max_length: int | None = None,
                 quantize: str | None = None, backend: str = "torch", threads: int | None = None, **hub_options):
        """`model`: a loaded bertkit model, or what `open_checkpoint` opens (a folder, "minilm", a Hub
        name, a Google TF release); `hub_options`: revision, cache_dir, local_files_only, token.
        `backend="onnx"`: run on onnxruntime (CPU; see bertkit.modeling.onnx_runtime), with
        `threads` intra-op threads (default: onnxruntime's, one per core)."""
        if backend not in BACKENDS:
            raise InputError(f"backend={backend!r}: choose one of {', '.join(BACKENDS)}")
        self.backend = backend
        self.device = torch.device("cpu") if backend == "onnx" and device is None else resolve_device(device)
        self.checkpoint = None
        if isinstance(model, (str, os.PathLike)):
            model, tokenizer = self.open(model, tokenizer, quantize, threads, hub_options)
        elif backend == "onnx":
            raise InputError("backend='onnx' needs model= a folder, 'minilm' or a Hub name (the model is exported "
                             "from its files and cached), not a loaded model")
        if tokenizer is None:
            raise InputError("pass tokenizer= when model is an already-loaded model object")
        self.model = model if backend == "onnx" else self.quantized(model.to(self.device).eval(), quantize)
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        limit = self.model.config.max_position_embeddings
        # the caller's length, else the one a fine-tuned model was trained with (task.json, as
        # `bertkit predict` reads it), else the model's limit
        self.saved_max_length = self.checkpoint.max_seq_length if self.checkpoint is not None else None
        self.given_max_length, self.position_limit = max_length, limit
        self.max_length = min(max_length or self.saved_max_length or limit, limit)

    def open(self, name, tokenizer, quantize: str | None, threads: int | None, hub_options: dict):
        """(model, tokenizer) from a checkpoint name: the torch model, or its ONNX stand-in."""
        if self.backend == "onnx":
            require_onnxruntime()
            if self.device.type != "cpu":
                raise InputError(f"backend='onnx' runs on the CPU; leave device= out (got {self.device})")
        self.checkpoint = open_checkpoint(name, **hub_options)
        missing = self.missing_head(self.checkpoint)
        if missing:
            warnings.warn(missing, NewHeadWarning, stacklevel=4)
        options = {"new_head_warning": not missing}
        overrides = self.model_overrides(self.checkpoint)
        if self.backend == "onnx":
            model = onnx_model(self.checkpoint, self.model_class, quantize, threads, overrides, **options)
        else:
            model = self.checkpoint.model(self.model_class, **options, **overrides)
        return model, tokenizer if tokenizer is not None else self.checkpoint.tokenizer()

    # a pretraining head the pipeline needs: (Checkpoint flag, head name, what comes out random without it)
    pretraining_head: tuple[str, str, str] | None = None

    def missing_head(self, checkpoint) -> str | None:
        """What to say when the checkpoint lacks the head this pipeline needs (None: it has it)."""
        if self.pretraining_head is None or getattr(checkpoint, self.pretraining_head[0]):
            return None
        _, head, answers = self.pretraining_head
        return (f"{checkpoint.source} has no trained {head} head (it was saved without one), so its {answers} "
                "are random: use a model that kept its pretraining heads, e.g. --model bert-base-uncased, "
                "a Google TF release, or one from `bertkit pretrain` / `bertkit quickstart`.")

    def model_overrides(self, checkpoint) -> dict:
        """Config fields to set when loading (none by default; e.g. a pipeline that needs a head size)."""
        return {}

    def quantized(self, model, quantize: str | None):
        """`quantize="int8"`: int8 dynamic quantization for CPU (see bertkit.modeling.quantize)."""
        if quantize is None:
            return model
        if quantize != "int8":
            raise InputError(f"quantize={quantize!r} is not supported; use quantize='int8' or leave it out.")
        if self.device.type != "cpu":
            raise InputError("quantize='int8' is for CPU inference; pass device='cpu' (on a GPU use bf16 instead).")
        return quantize_dynamic_int8(model)

    def encode(self, texts: list[str], pairs: list[str] | None = None, **extra) -> dict:
        """Tokenize a batch (padded, truncated to the model's limit) into tensors on the device."""
        enc = self.tokenizer(texts, text_pair=pairs, padding=True, truncation=True,
                             max_length=self.max_length, return_tensors="pt", **extra)
        return {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in enc.items()}

    def length_batches(self, texts: list, pairs: list | None = None) -> list[list[int]]:
        """Indices of `texts` in batches of at most batch_size, longest texts first.

        Sorting by length before batching keeps the padding of each batch small (a graph, and
        bertkit's padded paths, compute every pad position); callers put the results back in
        input order.  Length is counted in characters (text + pair): a cheap stand-in for
        tokens that needs no second tokenisation.
        """
        sizes = [len(str(t)) + (len(str(pairs[i])) if pairs is not None else 0) for i, t in enumerate(texts)]
        order = sorted(range(len(texts)), key=lambda i: -sizes[i])     # stable: equal lengths keep their order
        return [order[start:start + self.batch_size] for start in range(0, len(order), self.batch_size)]

    @staticmethod
    def as_list(inputs) -> tuple[list, bool]:
        """Normalise a single input or a list of inputs; remember which it was."""
        if isinstance(inputs, (str, tuple, dict)):
            return [inputs], True
        if isinstance(inputs, Iterable):
            return list(inputs), False
        raise TypeError(f"expected a string or a list of strings, got {type(inputs).__name__}")

    @staticmethod
    def model_inputs(enc: dict) -> dict:
        return {k: enc[k] for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc}
