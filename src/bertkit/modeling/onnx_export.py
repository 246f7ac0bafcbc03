"""Export a bertkit model to ONNX and run it with onnxruntime (optional extra).

    pip install 'bertkit[onnx]'                      # onnx, onnxruntime, onnxscript
    bertkit export-onnx MODEL_DIR model.onnx --check

    from bertkit.modeling.onnx_export import export_onnx, OnnxBert
    export_onnx("runs/sst2/best", "sst2.onnx")          # or export_onnx(model, "sst2.onnx")
    runner = OnnxBert("sst2.onnx", tokenizer="runs/sst2/best", threads=2)
    runner(["a gorgeous, witty film", "dull"])["logits"]  # numpy arrays, one per output

ONNX is a file format for a computation graph plus its weights; onnxruntime is a C++
engine that runs such graphs without PyTorch.  The exported graph takes three int64
inputs, input_ids, attention_mask and token_type_ids, all [B, T] with *dynamic* B and T
(any batch size, any length up to max_position_embeddings), and returns the outputs of
the exported class by name:

    BertModel                       last_hidden_state [B, T, H], pooler_output [B, H]
    BertForSequenceClassification   logits [B, C]
    BertForTokenClassification      logits [B, T, C]
    BertForQuestionAnswering        start_logits [B, T], end_logits [B, T]
    BertForMaskedLM                 logits [B, T, V]
    BertForNextSentencePrediction   logits [B, 2]
    BertForPreTraining              prediction_logits [B, T, V], seq_relationship_logits [B, 2]

Why the padded path
-------------------
bertkit's encoder normally *unpads* a batch: it gathers the N real tokens into an
[N, H] matrix and runs the projections and FFN on those only (see bertkit.modeling.encoder).
N depends on the *values* in attention_mask, not on the input's shape, and whether to
unpad at all is decided by a Python `if` on the mask ("is there any padding?").  An
ONNX graph is fixed when it is written: a tracing exporter would freeze whichever
branch and whichever N the example input happened to have, and `torch.export` refuses
the data-dependent `if` outright.  So while a graph is being recorded, BertModel takes
its padded path (`bertkit.modeling.encoder.building_a_graph()`, the same switch torch.compile uses:
every tensor [B, T, ...], padding hidden from the attention by the mask): the graph's shapes then depend only on B and T.  Real-token outputs are the same
numbers either way; only the pad positions differ (padded path: meaningless values, as
in the reference implementation; bertkit's unpadded path: zeros).

Attention, spelled for onnxruntime
----------------------------------
bertkit's attention calls `F.scaled_dot_product_attention` with a boolean mask; exported,
that becomes a tangle of Where/IsNaN nodes that onnxruntime's BERT optimiser cannot
recognise.  While a graph is recorded, each attention layer is therefore spelled as in the
reference implementation -- softmax(Q K^T / sqrt(D) + (1 - mask) * min) V -- the pattern
that `optimize_onnx` fuses into one `Attention` operator (`reference_attention`).

Shape legend: B batch, T tokens, H hidden, C classes, V vocab.
"""
from __future__ import annotations

import contextlib
import copy
import inspect
import io
import json
import logging
import math
import os
import types
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from bertkit import __version__
from bertkit.common.errors import InputError, NotFoundError, missing_dependency
from bertkit.common.files import atomic_file
from bertkit.modeling.config import BertConfig
from bertkit.modeling.encoder import BertSelfAttention
from bertkit.modeling.heads import HEAD_CLASSES
from bertkit.text.tokenizer import BertTokenizer

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
TOKENS = {0: "batch", 1: "sequence"}   # dynamic axes of a per-token tensor [B, T, ...]
SENTENCE = {0: "batch"}                # dynamic axes of a per-sentence tensor [B, ...]

# exported outputs of each class: name -> dynamic axes (per token or per sentence)
OUTPUTS: dict[str, dict[str, dict[int, str]]] = {
    "BertModel": {"last_hidden_state": TOKENS, "pooler_output": SENTENCE},
    "BertForSequenceClassification": {"logits": SENTENCE},
    "BertForTokenClassification": {"logits": TOKENS},
    "BertForQuestionAnswering": {"start_logits": TOKENS, "end_logits": TOKENS},
    "BertForMaskedLM": {"logits": TOKENS},
    "BertForNextSentencePrediction": {"logits": SENTENCE},
    "BertForPreTraining": {"prediction_logits": TOKENS, "seq_relationship_logits": SENTENCE},
}

CHECK_TEXTS = [
    "Hello, world!",
    "BERT reads a whole sentence at once, looking both left and right.",
    "The quick brown fox jumps over the lazy dog near the riverbank.",
    "A short one.",
    "Transformers turn every token into a vector that depends on all the other tokens in the text.",
]


def require(module: str):
    """Import an optional dependency or say how to install it."""
    try:
        return __import__(module)
    except ImportError:
        raise missing_dependency(module, "onnx", "ONNX export") from None


# ----------------------------------------------------------------------------- loading

def load_model(model_dir: str | os.PathLike, architecture: str | None = None) -> nn.Module:
    """The bertkit class a checkpoint directory holds (config.json "architectures"), loaded.

    An unknown architecture (e.g. a class bertkit does not have) falls back to the
    encoder alone, BertModel; `architecture=` picks the class explicitly.
    """
    path = Path(model_dir)
    if not (path / "config.json").is_file():
        what = "has no config.json" if path.is_dir() else "not found"
        raise NotFoundError(f"model directory {what}: {path} (expected config.json + model.safetensors, "
                            "e.g. a directory written by save_pretrained or `bertkit finetune`)")
    saved = (BertConfig.from_pretrained(path).extra.get("architectures") or ["BertModel"])[0]
    name = architecture or (saved if saved in OUTPUTS else "BertModel")
    if name not in OUTPUTS:
        raise InputError(f"architecture={name!r} cannot be exported; choose one of {sorted(OUTPUTS)}")
    cls = HEAD_CLASSES[name]
    return cls.from_pretrained(path).eval()


class ExportView(nn.Module):
    """(input_ids, attention_mask, token_type_ids) -> tuple of the named outputs, padded path."""

    def __init__(self, model: nn.Module, output_names: Sequence[str]):
        super().__init__()
        self.model, self.output_names = model, tuple(output_names)

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.model(input_ids, attention_mask, token_type_ids, unpad=False)
        return tuple(getattr(out, name) for name in self.output_names)


def reference_attention(self: BertSelfAttention, x: torch.Tensor, batch, output_attentions: bool = False):
    """BertSelfAttention.forward on the padded path, written as the reference writes it, so
    that onnxruntime's optimiser finds the pattern it fuses (x: [B, T, H] -> [B, T, H])."""
    B, T, A, D = batch.B, batch.T, self.num_heads, self.head_dim
    q, k, v = (proj(x).view(B, T, A, D).transpose(1, 2) for proj in (self.query, self.key, self.value))
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(D)                 # [B, A, T, T]
    if batch.key_mask is not None:                                             # [B, 1, 1, T] bool
        scores = scores + (1.0 - batch.key_mask.to(scores.dtype)) * torch.finfo(scores.dtype).min
    context = torch.matmul(scores.softmax(dim=-1), v)                          # [B, A, T, D]
    return context.transpose(1, 2).reshape(B, T, A * D), None


@contextlib.contextmanager
def spelled_for_onnxruntime(model: nn.Module):
    """Every attention layer of `model` uses `reference_attention` for a while (an instance
    attribute, removed on the way out: the class and other models are untouched)."""
    layers = [m for m in model.modules() if isinstance(m, BertSelfAttention)]
    for layer in layers:
        layer.forward = types.MethodType(reference_attention, layer)
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward


# ----------------------------------------------------------------------------- export

def export_onnx(model_or_dir: nn.Module | str | os.PathLike, out_path: str | os.PathLike, opset: int = 17,
                exporter: str = "torchscript", architecture: str | None = None) -> dict[str, Any]:
    """Write `model_or_dir` (a bertkit model, or a checkpoint directory) as an ONNX file.

    Inputs input_ids, attention_mask, token_type_ids: int64 [B, T], B and T dynamic.
    Outputs: see OUTPUTS (the encoder's pooler_output only if it has a pooler).
    `exporter`: "torchscript" (default) or "dynamo"; see `_run_exporter` for the choice.
    The file is written atomically and checked with `onnx.checker`.  Returns a summary
    dict (path, architecture, outputs, opset, exporter, seconds, megabytes).
    """
    onnx = require("onnx")
    model = load_model(model_or_dir, architecture) if isinstance(model_or_dir, (str, os.PathLike)) else model_or_dir
    name = type(model).__name__
    if name not in OUTPUTS:
        raise TypeError(f"cannot export a {name}; pass a bertkit model ({', '.join(sorted(OUTPUTS))}) "
                        "or a checkpoint directory")
    if exporter not in ("torchscript", "dynamo"):
        raise InputError(f"exporter={exporter!r}: use 'torchscript' or 'dynamo'")
    model = _cpu_fp32(model)
    was_training = model.training
    model.eval()
    started = time.perf_counter()
    try:
        with torch.no_grad():           # BertModel takes its padded path while a graph is recorded
            example = example_inputs(model.config)
            outputs = {k: v for k, v in OUTPUTS[name].items()
                       if getattr(model(*example, unpad=False), k) is not None}
            with spelled_for_onnxruntime(model):
                proto = _run_exporter(ExportView(model, list(outputs)).eval(), example, outputs, opset, exporter)
    finally:
        model.train(was_training)
    _add_metadata(proto, name, model.config, outputs, exporter)
    path = _save_atomically(onnx, proto, Path(out_path))
    return {"path": str(path), "architecture": name, "outputs": list(outputs), "opset": _opset(proto),
            "exporter": exporter, "seconds": round(time.perf_counter() - started, 2),
            "megabytes": round(path.stat().st_size / 2**20, 1)}


def example_inputs(config) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A traced example: 2 sequences of 8 tokens, the second padded, both token types used."""
    g = torch.Generator().manual_seed(0)
    input_ids = torch.randint(1, config.vocab_size, (2, 8), generator=g)              # [B, T]
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 5:] = 0
    token_type_ids = torch.zeros_like(input_ids)
    token_type_ids[:, 4:] = min(1, config.type_vocab_size - 1)
    return input_ids, attention_mask, token_type_ids


def _run_exporter(view: nn.Module, example, outputs: dict, opset: int, exporter: str):
    """torch module -> onnx.ModelProto.

    Two exporters ship with torch 2.13 (measured here on MiniLM, CPU):
    * "torchscript" (`dynamo=False`): traces one run of the model.  The older exporter,
      present in every torch release (torch < 2.5 has no `dynamo` argument and uses it
      by default); exports MiniLM in ~2 s, needs only `onnx`, and its graph runs about as
      fast in onnxruntime as the other one.  Tracing freezes Python control flow;
      `building_a_graph()` removes the only data-dependent `if`, and the dynamic axes are
      verified on other batch sizes and lengths (tests/test_onnx.py).  torch marks it
      deprecated (a DeprecationWarning, silenced here) but 2.13 still ships it.
    * "dynamo" (`dynamo=True`, torch's default since 2.9): `torch.export` + onnxscript.
      Refuses data-dependent control flow instead of freezing it (safer), but needs
      onnxscript, takes ~10 s even for a tiny model, logs a lot, and implements opset
      >= 18 only (17 is reached by converting the graph down).
    Default: "torchscript", for speed, fewer dependencies and the wider torch range.
    """
    names = list(INPUT_NAMES)
    with warnings.catch_warnings(), _quiet_loggers("torch.onnx", "onnxscript"):
        warnings.simplefilter("ignore")     # TracerWarning for the frozen Python ifs, deprecation notes
        if exporter == "torchscript":
            buffer = io.BytesIO()
            legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
            torch.onnx.export(view, example, buffer, opset_version=opset, input_names=names,
                              output_names=list(outputs), dynamic_axes={**{n: TOKENS for n in names}, **outputs},
                              do_constant_folding=True, **legacy)
            return require("onnx").load_model_from_string(buffer.getvalue())
        require("onnxscript")
        B, T = torch.export.Dim("batch"), torch.export.Dim("sequence", max=view.model.config.max_position_embeddings)
        program = torch.onnx.export(view, example, dynamo=True, opset_version=opset, input_names=names,
                                    output_names=list(outputs), dynamic_shapes={n: {0: B, 1: T} for n in names},
                                    verbose=False)
        return program.model_proto


@contextlib.contextmanager
def _quiet_loggers(*names: str):
    """Hide loggers' warnings for a while (the dynamo exporter logs about absent torchvision,
    opset conversion, ...); errors still show."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _cpu_fp32(model: nn.Module) -> nn.Module:
    """The model itself if it is fp32 on the CPU, else a CPU fp32 copy (the export runs on CPU)."""
    p = next(model.parameters())
    if p.device.type == "cpu" and p.dtype == torch.float32:
        return model
    return copy.deepcopy(model).to("cpu", torch.float32)


def _add_metadata(proto, name: str, config, outputs: dict, exporter: str) -> None:
    """What the runner needs to know, stored in the file: class, length limit, per-token outputs."""
    meta = {"bertkit_version": __version__, "architecture": name, "exporter": exporter,
            "max_position_embeddings": str(config.max_position_embeddings),
            "token_outputs": json.dumps([k for k, axes in outputs.items() if axes is TOKENS])}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def _opset(proto) -> int:
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def _save_atomically(onnx, proto, path: Path) -> Path:
    """Check the graph, write it to a temporary file beside `path`, rename into place."""
    onnx.checker.check_model(proto)
    with atomic_file(path) as tmp:
        onnx.save_model(proto, str(tmp))
    return path


# ----------------------------------------------------------------------------- running

class OnnxBert:
    """Run an exported file with onnxruntime on the CPU.

    `tokenizer`: a bertkit BertTokenizer or a directory with vocab.txt; by default the
    directory of the .onnx file.  `threads`: onnxruntime's intra-op threads.  `spin=False`
    stops idle worker threads from busy-waiting for the next run (onnxruntime spins by
    default): use it when other work, e.g. torch, shares the cores.

        runner = OnnxBert("minilm.onnx", tokenizer=MODEL_DIR, threads=2)
        out = runner(["first sentence", "second"])      # {"last_hidden_state": [B, T, H], ...}
        out = runner.run(runner.encode(texts))          # the same in two steps
    """

    def __init__(self, path: str | os.PathLike, tokenizer: Any = None, threads: int = 1, spin: bool = True):
        ort = require("onnxruntime")
        self.path = Path(path)
        if not self.path.is_file():
            raise NotFoundError(f"ONNX file not found: {self.path} (write one with `bertkit export-onnx`)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.architecture = meta.get("architecture", "unknown")
        self.max_length = int(meta.get("max_position_embeddings", 512))
        self.token_outputs = set(json.loads(meta.get("token_outputs", "[]")))
        self.output_names = [o.name for o in self.session.get_outputs()]
        # int64 as exported; int32 where an optimiser changed an input's type
        self.input_types = {i.name: np.int32 if i.type == "tensor(int32)" else np.int64
                            for i in self.session.get_inputs()}
        self._tokenizer = tokenizer

    @property
    def tokenizer(self):
        if self._tokenizer is None or isinstance(self._tokenizer, (str, os.PathLike)):
            folder = Path(self._tokenizer) if self._tokenizer is not None else self.path.parent
            if not (folder / "vocab.txt").is_file():
                raise NotFoundError(f"no vocab.txt in {folder}: pass tokenizer=MODEL_DIR (the exported "
                                    "checkpoint's directory) or a BertTokenizer")
            self._tokenizer = BertTokenizer.from_pretrained(folder)
        return self._tokenizer

    def encode(self, texts, text_pair=None, max_length: int | None = None) -> dict[str, np.ndarray]:
        """Tokenize a batch: padded to its longest sequence, truncated to the model's limit."""
        limit = min(max_length or self.max_length, self.max_length)
        return dict(self.tokenizer(texts, text_pair=text_pair, padding=True, truncation=True,
                                   max_length=limit, return_tensors="np"))

    def run(self, encoding) -> dict[str, np.ndarray]:
        """input_ids, attention_mask, token_type_ids ([B, T], numpy or torch) -> {output name: array}."""
        feed = {name: np.asarray(encoding[name], dtype=dtype) for name, dtype in self.input_types.items()}
        if feed["input_ids"].ndim != 2:
            raise InputError(f"input_ids must be [batch, tokens], got shape {feed['input_ids'].shape}")
        if feed["input_ids"].shape[1] > self.max_length:
            raise InputError(f"sequence length {feed['input_ids'].shape[1]} exceeds max_position_embeddings="
                             f"{self.max_length}; truncate the input")
        return dict(zip(self.output_names, self.session.run(self.output_names, feed)))

    def __call__(self, texts, text_pair=None, max_length: int | None = None) -> dict[str, np.ndarray]:
        return self.run(self.encode(texts, text_pair=text_pair, max_length=max_length))


def max_abs_diff(runner: OnnxBert, model: nn.Module, encoding) -> dict[str, float]:
    """Max |onnxruntime - bertkit| per output, over real tokens for per-token outputs."""
    ours = runner.run(encoding)
    torch_inputs = {k: torch.as_tensor(np.asarray(encoding[k]), dtype=torch.long) for k in INPUT_NAMES}
    with torch.inference_mode():
        expected = model(**torch_inputs)
    real = np.asarray(encoding["attention_mask"]).astype(bool)                          # [B, T]
    diffs = {}
    for name, value in ours.items():
        reference = getattr(expected, name).float().cpu().numpy()
        delta = np.abs(value - reference)
        diffs[name] = float((delta[real] if name in runner.token_outputs else delta).max())
    return diffs


def check_parity(onnx_path, model_or_dir, texts: Sequence[str] = CHECK_TEXTS, tokenizer: Any = None,
                 threads: int = 1) -> dict[str, Any]:
    """Run `texts` through onnxruntime and bertkit; report the max abs difference per output."""
    model = load_model(model_or_dir) if isinstance(model_or_dir, (str, os.PathLike)) else model_or_dir
    if tokenizer is None and isinstance(model_or_dir, (str, os.PathLike)):
        tokenizer = model_or_dir
    runner = OnnxBert(onnx_path, tokenizer=tokenizer, threads=threads)
    diffs = max_abs_diff(runner, model.eval(), runner.encode(list(texts)))
    return {"sentences": len(texts), "max_abs_diff": max(diffs.values()), "per_output": diffs}


# ----------------------------------------------------------------------------- command line
