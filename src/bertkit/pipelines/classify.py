"""Text classification: one label for a text, or for a pair of texts.

BERT reads ``[CLS] text [SEP]`` (or ``[CLS] text_a [SEP] text_b [SEP]`` for a pair),
the classifier looks at the pooled [CLS] vector and gives one logit per label.
The logits become scores the way the reference pipeline does it:

* ``problem_type="regression"`` (or a single output, bertkit's regression head) → the raw
  number (e.g. an STS-B similarity 0..5) under ``score``;
* ``problem_type="multi_label_classification"`` → a sigmoid per label;
* otherwise → a softmax over the labels.

``function_to_apply="sigmoid"|"softmax"|"none"`` overrides that choice.

    >>> clf = pipeline("text-classification", model="runs/sst2/best")
    >>> clf("a gorgeous, witty film")
    [{'label': 'positive', 'score': 0.98}]

Labels are the names in the model's config (``id2label``): `bertkit finetune` saves the
task's label names there (``--label-names 0=negative,1=positive`` for your own data); a
config without names gives the reference's placeholders ``LABEL_0``, ``LABEL_1`` ...
    >>> clf({"text": "He is playing", "text_pair": "He is sleeping"}, top_k=None)
    [{'label': 'contradiction', 'score': 0.91}, ...]

As in the reference, a single string without ``top_k`` gives a one-element list (a single
dict or tuple gives the dict itself); with
``top_k=k`` (or ``None`` = every label) each input gives its k best labels, best first.
"""
from __future__ import annotations

import numpy as np
import torch

from bertkit.common.errors import InputError
from bertkit.modeling import BertForSequenceClassification
from bertkit.pipelines.base import Pipeline

FUNCTIONS = ("sigmoid", "softmax", "none")
_UNSET = object()          # top_k not given: the reference's "legacy" output shape


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class TextClassificationPipeline(Pipeline):
    """`pipe(texts, text_pair=None, top_k=<1>, function_to_apply=None)`.

    Inputs: a string, a ``(text, text_pair)`` tuple, a ``{"text", "text_pair"}`` dict, or a
    list of any of these; or strings plus ``text_pair=`` (string or list of strings).
    """

    model_class = BertForSequenceClassification

    @torch.no_grad()
    def __call__(self, inputs, text_pair=None, top_k=_UNSET, function_to_apply: str | None = None):
        texts, pairs, single = self._split_inputs(inputs, text_pair)
        function = self._function(function_to_apply)
        scores = [None] * len(texts)
        for indices in self.length_batches(texts, pairs):          # longest first; back in input order below
            enc = self.encode([texts[i] for i in indices], None if pairs is None else [pairs[i] for i in indices])
            logits = self.model(**self.model_inputs(enc)).logits.float().cpu().numpy()   # [B,C]
            for i, row in zip(indices, self._apply(function, logits)):
                scores[i] = row
        results = [self._format(row, top_k) for row in scores]
        if single:   # the reference wraps a lone string's best label in a list (not a dict input's)
            return [results[0]] if top_k is _UNSET and isinstance(inputs, str) else results[0]
        return results

    # -- inputs
    def _split_inputs(self, inputs, text_pair):
        """→ (texts, pairs or None, single?) whatever form the caller used."""
        items, single = self.as_list(inputs)
        if text_pair is not None:
            seconds = [text_pair] if isinstance(text_pair, str) else list(text_pair)
            if len(seconds) != len(items):
                raise InputError(f"got {len(items)} text(s) but {len(seconds)} text_pair(s); give one pair per text")
            items = [(a, b) for a, b in zip(items, seconds)]
        texts, pairs = [], []
        for item in items:
            a, b = self._one(item)
            texts.append(a)
            pairs.append(b)
        has_pair = [b is not None for b in pairs]
        if any(has_pair) and not all(has_pair):
            raise InputError("mix of single texts and text pairs in one call; classify them in separate calls")
        return texts, (pairs if all(has_pair) and pairs else None), single

    @staticmethod
    def _one(item):
        if isinstance(item, str):
            return item, None
        if isinstance(item, dict):
            if "text" not in item:
                raise InputError(f"a dict input needs a 'text' key (and optionally 'text_pair'), got keys {sorted(item)}")
            return item["text"], item.get("text_pair")
        if isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(x, str) for x in item):
            return item[0], item[1]
        raise TypeError(f"cannot classify {type(item).__name__} {item!r}: give a string, a (text, text_pair) "
                        "tuple or a {'text': ..., 'text_pair': ...} dict")

    # -- scores
    def _function(self, requested: str | None) -> str:
        if requested is not None:
            name = str(getattr(requested, "value", requested)).lower()
            if name not in FUNCTIONS:
                raise InputError(f"function_to_apply={requested!r}: choose one of {FUNCTIONS}")
            return name
        config = self.model.config
        if config.problem_type == "regression":
            return "none"
        if config.problem_type == "multi_label_classification":
            return "sigmoid"
        if config.num_labels == 1:
            # bertkit's one-output head is an MSE regression head (the reference would apply
            # a sigmoid here unless problem_type="regression" is set).
            return "none"
        return "softmax"

    @staticmethod
    def _apply(function: str, logits: np.ndarray) -> list[np.ndarray]:
        if function == "sigmoid":
            return list(sigmoid(logits))
        if function == "softmax":
            return list(softmax(logits))
        return list(logits)

    def _label(self, index: int) -> str:
        id2label = self.model.config.id2label or {}
        return id2label.get(index, id2label.get(str(index), f"LABEL_{index}"))

    def _format(self, row: np.ndarray, top_k):
        if top_k is _UNSET:                       # the best label only
            best = int(row.argmax())
            return {"label": self._label(best), "score": float(row[best])}
        ranked = sorted(({"label": self._label(i), "score": float(s)} for i, s in enumerate(row)),
                        key=lambda d: d["score"], reverse=True)
        if top_k is not None:
            if not isinstance(top_k, int) or top_k < 1:
                raise InputError(f"top_k must be a positive integer or None (all labels), got {top_k!r}")
            ranked = ranked[:top_k]
        return ranked
