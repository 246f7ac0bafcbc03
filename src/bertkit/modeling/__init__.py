"""Floor 2 — modeling: the network and its files.

    config.py          BertConfig: sizes, presets (Tiny ... Large, the 24 small BERTs)
    encoder.py         embeddings, multi-head self-attention, feed-forward, pooler: BertModel
    layout.py          how a batch's tokens are laid out for the encoder: padded or unpadded (packed)
    fused.py           opt-in fused kernels for the elementwise tails of every layer (GPU)
    triton_ops.py      the Triton kernels behind fused.py (GPU + triton only)
    heads.py           thin task layers over the one encoder: BertFor{PreTraining, MaskedLM, ...}
    checkpoint.py      the standard checkpoint layout: read, check and write weights
    pretrained.py      `open_checkpoint`: the one entry point for a folder, a Hub name, "minilm" or a TF release
    tf_checkpoint.py   Google's original TensorFlow checkpoints, read without TensorFlow
    convert.py         `bertkit convert`: any BERT bertkit opens → the standard layout
    quantize.py        int8 dynamic quantization for CPU inference
    onnx_export.py     export to ONNX (optional extra)
    onnx_optimize.py   onnxruntime's BERT fusions (and int8) on an exported file
    onnx_runtime.py    pipelines and models on ONNX Runtime (`backend="onnx"`)

Imports only go down: to `bertkit.text` (tokenizer files) and the common helpers.
"""
from bertkit.modeling.config import BertConfig
from bertkit.modeling.encoder import BertModel, BertPreTrainedModel
from bertkit.modeling.heads import (HEAD_CLASSES, BertForMaskedLM, BertForNextSentencePrediction,
                                    BertForPreTraining, BertForQuestionAnswering,
                                    BertForSequenceClassification, BertForTokenClassification)

__all__ = ["BertConfig", "BertModel", "BertPreTrainedModel", "BertForPreTraining", "BertForMaskedLM",
           "BertForNextSentencePrediction", "BertForSequenceClassification", "BertForTokenClassification",
           "BertForQuestionAnswering", "HEAD_CLASSES"]
