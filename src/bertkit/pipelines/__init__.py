"""User-facing inference: `pipeline(task, model=DIR)(inputs, **options)`.

Every pipeline loads a tokenizer and a model from one checkpoint directory,
batches and truncates for you, places tensors on the model's device, and
returns plain Python results whose names follow the reference pipelines
(`score`, `token`, `token_str`, `sequence`; QA: `answer`, `score`, `start`, `end`).

    >>> fill = pipeline("fill-mask", model="runs/quickstart/bert/model")
    >>> fill("Love is like the [MASK].", top_k=5)
"""
from __future__ import annotations

import importlib

# task name -> "module:ClassName" (modules under bertkit.pipelines)
_REGISTRY = {
    "feature-extraction": "features:FeatureExtractionPipeline",
    "fill-mask": "fill_mask:FillMaskPipeline",
    "next-sentence": "next_sentence:NextSentencePipeline",
    "text-classification": "classify:TextClassificationPipeline",
    "token-classification": "tokens:TokenClassificationPipeline",
    "question-answering": "qa:QuestionAnsweringPipeline",
    "sentence-similarity": "similarity:SentenceSimilarityPipeline",
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
        raise ValueError(f"unknown pipeline task {task!r}; choose one of: {', '.join(available_tasks())}")
    if model is None:
        raise ValueError(f"pipeline({task!r}) needs model=: a checkpoint directory or a loaded bertkit model")
    module_name, class_name = _REGISTRY[name].split(":")
    module = importlib.import_module(f"bertkit.pipelines.{module_name}")
    return getattr(module, class_name)(model=model, tokenizer=tokenizer, device=device, **kwargs)


__all__ = ["pipeline", "available_tasks"]
