"""bertkit — BERT end to end, from scratch: tokenize → pretrain → fine-tune → use.

The public names are imported lazily so that `import bertkit` stays fast and a
missing optional dependency only matters when its feature is used.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "BertConfig": "bertkit.modeling.config",
    "BertTokenizer": "bertkit.text.tokenizer",
    "BertModel": "bertkit.modeling.encoder",
    "BertForPreTraining": "bertkit.modeling.heads",
    "BertForMaskedLM": "bertkit.modeling.heads",
    "BertForNextSentencePrediction": "bertkit.modeling.heads",
    "BertForSequenceClassification": "bertkit.modeling.heads",
    "BertForTokenClassification": "bertkit.modeling.heads",
    "BertForQuestionAnswering": "bertkit.modeling.heads",
    "pipeline": "bertkit.pipelines",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'bertkit' has no attribute {name!r}")
