"""Pipelines on ONNX Runtime: `pipeline(task, model=M, backend="onnx")`, `--backend onnx`.

    pip install 'bertkit[onnx]'
    clf = pipeline("text-classification", model="runs/sst2/best", backend="onnx")
    clf(["a gorgeous, witty film", "dull"])              # the same labels and scores as backend="torch"

ONNX Runtime is the engine a CPU deployment usually picks.  The first time a model is used
with this backend it is

1. exported once with `bertkit.modeling.onnx_export.export_onnx` (dynamic batch and
   sequence axes, attention spelled so that it can be fused),
2. optimised with onnxruntime's BERT optimiser (`bertkit.modeling.onnx_optimize`: fused
   Attention, SkipLayerNormalization, BiasGelu), and with `quantize="int8"` quantised by
   onnxruntime's dynamic quantiser,
3. cached: in an `onnx/` folder beside the model when you named a folder you may write to,
   otherwise (a Hub snapshot, the bundled `minilm`, a read-only folder) in
   `~/.cache/bertkit/onnx/<key>/` (`$BERTKIT_CACHE` or `$XDG_CACHE_HOME/bertkit` move it).
   The key covers the weights (names, sizes, modification times), config.json, the class,
   the quantisation and the versions of bertkit and onnxruntime: change any and the file is
   rebuilt; otherwise later runs load it in well under a second.

`OnnxModel` then stands in for the torch model inside the pipeline: it is called with the
same tensors and answers with the same output names (torch tensors), so tokenisation,
post-processing and results are the pipeline's own code for both backends.  Each batch is
cut to its longest real sequence before it runs (the graph computes pad positions, unlike
bertkit's unpadded torch path), and the pipelines sort texts by length before batching
(`Pipeline.length_batches`), so that padding stays small on mixed lengths.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from bertkit import __version__
from bertkit.common.errors import InputError, missing_dependency
from bertkit.common.files import atomic_file
from bertkit.modeling.onnx_export import OUTPUTS, OnnxBert, export_onnx
from bertkit.modeling.onnx_optimize import optimize_onnx, quantize_onnx

CACHE_ENV = "BERTKIT_CACHE"
QUANTIZATIONS = (None, "int8")


def require_onnxruntime():
    """onnxruntime, or the one-line error that names the extra to install."""
    try:
        import onnxruntime
        import onnx  # noqa: F401  (the export writes with it)
    except ImportError as error:
        raise missing_dependency(error.name or "onnxruntime", "onnx", "backend='onnx'") from None
    return onnxruntime


def user_cache() -> Path:
    """bertkit's own cache folder: $BERTKIT_CACHE, else $XDG_CACHE_HOME/bertkit, else ~/.cache/bertkit."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bertkit"


def cache_key(checkpoint, architecture: str, quantize: str | None, overrides: dict) -> str:
    """16 hex digits that change whenever the file to build would change (see the module doc)."""
    ort = require_onnxruntime()
    h = hashlib.sha256(json.dumps({"bertkit": __version__, "onnxruntime": ort.__version__, "class": architecture,
                                   "quantize": quantize, "overrides": overrides}, sort_keys=True,
                                  default=str).encode())
    for path in sorted(p for p in checkpoint.directory.iterdir() if p.is_file()):     # onnx/ is a folder: skipped
        stat = path.stat()
        h.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    h.update((checkpoint.directory / "config.json").read_bytes()
             if (checkpoint.directory / "config.json").is_file() else b"")
    return h.hexdigest()[:16]


def candidate_files(checkpoint, architecture: str, quantize: str | None, key: str) -> list[Path]:
    """Where the file may live, preferred first: beside a folder the user named (if writable), the user cache."""
    name = f"{architecture}.{quantize or 'fp32'}.{key}.onnx"
    places = []
    folder = checkpoint.directory
    if Path(checkpoint.source).expanduser().is_dir() and os.access(folder, os.W_OK):
        places.append(folder / "onnx" / name)
    places.append(user_cache() / "onnx" / key / name)
    return places


def onnx_file(checkpoint, model_class: type, quantize: str | None = None, overrides: dict | None = None,
              **load_options) -> Path:
    """The optimised ONNX file of `checkpoint` as `model_class`: found in a cache, or built there once."""
    if quantize not in QUANTIZATIONS:
        raise InputError(f"quantize={quantize!r} is not supported; use quantize='int8' or leave it out.")
    architecture = model_class.__name__
    if architecture not in OUTPUTS:
        raise InputError(f"backend='onnx' cannot run a {architecture}; use backend='torch'")
    overrides = overrides or {}
    places = candidate_files(checkpoint, architecture, quantize, cache_key(checkpoint, architecture, quantize,
                                                                          overrides))
    for path in places:
        if path.is_file():
            return path
    last_error = None
    for path in places:
        try:
            return build(checkpoint, model_class, quantize, overrides, path, **load_options)
        except OSError as error:             # a folder we may not write after all: try the next place
            last_error = error
    raise InputError(f"cannot write the ONNX file to {' or '.join(map(str, places))}: {last_error}; "
                     f"set {CACHE_ENV} to a writable folder")


def build(checkpoint, model_class: type, quantize: str | None, overrides: dict, target: Path,
          **load_options) -> Path:
    """Export, optimise (and quantise) into a temporary folder, then move the result to `target`."""
    model = checkpoint.model(model_class, **overrides, **load_options)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        exported, optimized = Path(tmp) / "exported.onnx", Path(tmp) / "optimized.onnx"
        export_onnx(model, exported)
        optimize_onnx(exported, optimized, model.config)
        copy_metadata(exported, optimized)
        final = optimized
        if quantize == "int8":
            final = Path(tmp) / "int8.onnx"
            quantize_onnx(optimized, final)
            copy_metadata(exported, final)
        with atomic_file(target) as out:
            shutil.copyfile(final, out)
    return target


def copy_metadata(src: Path, dst: Path) -> None:
    """Keep export_onnx's metadata (class, length limit, per-token outputs) in a rewritten file."""
    import onnx                                      # optional extra, checked by require_onnxruntime
    source, rewritten = onnx.load(str(src), load_external_data=False), onnx.load(str(dst))
    have = {p.key for p in rewritten.metadata_props}
    for prop in source.metadata_props:
        if prop.key not in have:
            entry = rewritten.metadata_props.add()
            entry.key, entry.value = prop.key, prop.value
    onnx.save_model(rewritten, str(dst))


class OnnxModel:
    """Stands in for a bertkit model inside a pipeline: called like one, answers like one.

    `model(input_ids=, attention_mask=, token_type_ids=)` ([B, T] tensors, right-padded)
    returns an object with the exported outputs as CPU torch tensors (`logits`,
    `last_hidden_state`, `start_logits` ...), per-token ones [B, T, ...] as given.  Only the
    last layer exists in the graph: hidden states of other layers and attention maps need
    backend="torch".
    """

    training = False

    def __init__(self, path: str | os.PathLike, config, threads: int | None = None):
        self.runner = OnnxBert(path, threads=threads or 0)         # 0: onnxruntime's default (the cores)
        self.config = config
        self.path = Path(path)

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self

    def to(self, *args, **kwargs):
        return self

    def parameters(self):
        yield torch.empty(0)                           # the device the pipeline sees: the CPU

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, output_hidden_states: bool = False,
                 output_attentions: bool = False, **ignored):
        if output_hidden_states or output_attentions:
            raise InputError("backend='onnx' computes the last layer only; for other layers or attention maps "
                             "use backend='torch'")
        ids = np.asarray(input_ids.cpu() if torch.is_tensor(input_ids) else input_ids)   # [B, T]
        B, T = ids.shape
        mask = np.ones_like(ids) if attention_mask is None else np.asarray(attention_mask.cpu())
        types = np.zeros_like(ids) if token_type_ids is None else np.asarray(token_type_ids.cpu())
        t = max(1, int(mask.sum(1).max())) if B else T    # the longest real sequence: pad columns cut off
        out = self.runner.run({"input_ids": ids[:, :t], "attention_mask": mask[:, :t],
                               "token_type_ids": types[:, :t]})
        tensors = {}
        for name, value in out.items():
            if name in self.runner.token_outputs and t < T:                # back to [B, T, ...]: zeros at pads
                value = np.concatenate([value, np.zeros((B, T - t, *value.shape[2:]), value.dtype)], axis=1)
            tensors[name] = torch.from_numpy(value)
        return SimpleNamespace(**tensors)


def onnx_model(checkpoint, model_class: type, quantize: str | None = None, threads: int | None = None,
               overrides: dict | None = None, **load_options) -> OnnxModel:
    """An `OnnxModel` for `checkpoint` (exported and cached on first use)."""
    require_onnxruntime()
    path = onnx_file(checkpoint, model_class, quantize, overrides, **load_options)
    config = checkpoint.config.replace(**overrides) if overrides else checkpoint.config
    return OnnxModel(path, config, threads)
