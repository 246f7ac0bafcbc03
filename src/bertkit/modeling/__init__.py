"""Floor 2 — modeling: the network and its files.

    config.py        BertConfig: sizes, presets (Tiny ... Large, the 24 small BERTs)
    encoder.py       embeddings, multi-head self-attention, feed-forward, pooler: BertModel
    heads.py         thin task layers over the one encoder: BertFor{PreTraining, MaskedLM, ...}
    checkpoint.py    the standard checkpoint layout: read, check and write weights
    quantize.py      int8 dynamic quantization for CPU inference
    onnx_export.py   export to ONNX and run with onnxruntime (optional extra)

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
