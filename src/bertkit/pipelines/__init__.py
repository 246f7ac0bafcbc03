"""User-facing inference: `pipeline(task, model=DIR)(inputs, **options)`.

Every pipeline loads a tokenizer and a model from one checkpoint directory,
batches and truncates for you, places tensors on the model's device, and
returns plain Python results whose names follow the reference pipelines
(`score`, `token`, `token_str`, `sequence`; QA: `answer`, `score`, `start`, `end`).

    >>> fill = pipeline("fill-mask", model="runs/quickstart/bert/model")
    >>> fill("Love is like the [MASK].", top_k=5)
"""
from __future__ import annotations

from bertkit.common.errors import InputError
from bertkit.pipelines.classify import TextClassificationPipeline
from bertkit.pipelines.features import FeatureExtractionPipeline
from bertkit.pipelines.fill_mask import FillMaskPipeline
from bertkit.pipelines.next_sentence import NextSentencePipeline
from bertkit.pipelines.qa import QuestionAnsweringPipeline
from bertkit.pipelines.similarity import SentenceSimilarityPipeline
from bertkit.pipelines.tokens import TokenClassificationPipeline

# task name -> pipeline class
_REGISTRY = {
    "feature-extraction": FeatureExtractionPipeline,
    "fill-mask": FillMaskPipeline,
    "next-sentence": NextSentencePipeline,
    "text-classification": TextClassificationPipeline,
    "token-classification": TokenClassificationPipeline,
    "question-answering": QuestionAnsweringPipeline,
    "sentence-similarity": SentenceSimilarityPipeline,
}
_ALIASES = {"ner": "token-classification", "nsp": "next-sentence", "embed": "feature-extraction",
            "sentiment-analysis": "text-classification", "qa": "question-answering",
            "similarity": "sentence-similarity", "classify": "text-classification", "tag": "token-classification"}


def available_tasks() -> list[str]:
    return sorted(_REGISTRY)


def pipeline(task: str, model=None, tokenizer=None, device=None, **kwargs):
    """Build the pipeline for `task` from a checkpoint directory (or loaded objects)."""
    name = _ALIASES.get(task, task)
    if name not in _REGISTRY:
        raise InputError(f"unknown pipeline task {task!r}; choose one of: {', '.join(available_tasks())}")
    if model is None:
        raise InputError(f"pipeline({task!r}) needs model=: a checkpoint directory or a loaded bertkit model")
    return _REGISTRY[name](model=model, tokenizer=tokenizer, device=device, **kwargs)


__all__ = ["pipeline", "available_tasks"]
