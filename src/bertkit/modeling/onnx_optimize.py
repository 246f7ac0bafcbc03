"""Make an exported ONNX file fast on the CPU: onnxruntime's BERT fusions, optional int8.

    from bertkit.modeling.onnx_optimize import optimize_onnx, quantize_onnx
    optimize_onnx("minilm.onnx", "minilm.opt.onnx", config)     # fused Attention, SkipLayerNorm, BiasGelu
    quantize_onnx("minilm.opt.onnx", "minilm.int8.onnx")         # int8 weights, dynamic activations

`optimize_onnx` runs `onnxruntime.transformers.optimizer.optimize_model(model_type="bert")`,
which rewrites the graph a node pattern at a time:

* each attention layer (MatMul Q, K, V + scale + mask + Softmax + MatMul) -> one `Attention`
  operator, which also skips the work for padded keys;
* Add(residual) + LayerNorm -> `SkipLayerNormalization`;
* the FFN's bias + erf GELU -> `BiasGelu`.

The numbers stay those of the unfused graph to float rounding (tests/test_onnx_pipelines.py
checks 1e-4 against bertkit's torch path).  `quantize_onnx` is onnxruntime's dynamic
quantiser: weights of MatMul/Attention stored as int8 per output channel, activations quantized per batch at
run time -- about 4x smaller, faster on CPUs with int8 instructions, and no longer within
1e-4 (a classifier's labels usually survive; measure on your task).
"""
from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from bertkit.common.errors import missing_dependency


def _require(module: str, package: str = "onnxruntime"):
    """Import `module` (a dotted name) or say which extra installs its package."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise missing_dependency(package, "onnx", "the ONNX backend") from None


@contextlib.contextmanager
def _quiet(*names: str):
    """The optimiser and quantiser log every pass at INFO/WARNING; keep errors only."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def optimize_onnx(src: str | os.PathLike, dst: str | os.PathLike, config) -> dict[str, int]:
    """Fuse `src` (an exported BERT) for the CPU into `dst`; returns {fused operator: count}."""
    optimizer = _require("onnxruntime.transformers.optimizer")
    with _quiet("onnxruntime", "onnxruntime.transformers", "fusion", "onnx_model", "onnx_model_bert"):
        model = optimizer.optimize_model(str(src), model_type="bert", num_heads=config.num_attention_heads,
                                         hidden_size=config.hidden_size, opt_level=0, use_gpu=False)
        model.save_model_to_file(str(dst))
        stats = model.get_fused_operator_statistics()
    return {name: count for name, count in stats.items() if count}


def quantize_onnx(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """onnxruntime's dynamic int8 quantisation of `src` into `dst`."""
    quantization = _require("onnxruntime.quantization")
    float32 = _require("onnx", "onnx").TensorProto.FLOAT
    with _quiet("onnxruntime", "root"):
        # the fused operators are in Microsoft's domain, where shape inference finds no types: say float
        quantization.quantize_dynamic(str(src), str(dst), weight_type=quantization.QuantType.QInt8, per_channel=True,
                                      extra_options={"DefaultTensorType": float32})


def fused(path: str | os.PathLike) -> dict[str, int]:
    """{operator: count} of the fused operators in an ONNX file (what the optimiser achieved)."""
    onnx = _require("onnx", "onnx")
    counts: dict[str, int] = {}
    for node in onnx.load(str(Path(path)), load_external_data=False).graph.node:
        if node.op_type in ("Attention", "QAttention", "SkipLayerNormalization", "BiasGelu", "Gelu",
                            "EmbedLayerNormalization"):
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts
