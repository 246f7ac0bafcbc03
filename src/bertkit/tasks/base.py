"""What every task family shares: labels, config checks, batching and the evaluation loop.

A task object is the data side of fine-tuning.  The training loop only needs
`task.encode(...)` (features), `task.collate(features)` (tensors for `model(**batch)`),
and for evaluation `task.gather` → `task.predict` → `task.metrics`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from bertkit.common.errors import InputError

from .readers import ExampleList, train_valid_split

MODEL_INPUTS = ("input_ids", "token_type_ids", "attention_mask")


class FeatureList(ExampleList):
    """Encoded features (dicts of lists) plus the `ReadReport` of the encoding (`.report`)."""


class PredictionList(ExampleList):
    """Predictions (one dict per example) plus a `ReadReport` of what prediction had to make up."""


def pad_to_longest(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    """[B] lists of different lengths → one [B, T] long tensor, T = the longest row."""
    longest = max(len(r) for r in rows)
    out = torch.full((len(rows), longest), value, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.as_tensor(r, dtype=torch.long)
    return out


def collate_inputs(features: Sequence[dict], pad_token_id: int = 0) -> dict:
    """input_ids / token_type_ids padded to the longest feature, attention_mask 1 on real tokens."""
    ids = pad_to_longest([f["input_ids"] for f in features], pad_token_id)
    types = pad_to_longest([f["token_type_ids"] for f in features], 0)
    mask = pad_to_longest([[1] * len(f["input_ids"]) for f in features], 0)
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}   # each [B, T]


def real_lengths(batch: dict) -> list[int]:
    return batch["attention_mask"].sum(dim=1).tolist()


def to_numpy(t) -> np.ndarray:
    return t.detach().float().cpu().numpy() if torch.is_tensor(t) else np.asarray(t, dtype=np.float32)


class Task:
    """Base class.  Subclasses set `family`, `model_class`, `main_metric` and the methods below."""

    name = "task"
    family = ""
    model_class = ""
    main_metric = ""
    problem_type: str | None = None

    def __init__(self, labels: Sequence[str] | None = None, pad_token_id: int = 0):
        self.labels = list(labels) if labels is not None else None
        self.pad_token_id = pad_token_id

    # -- labels ------------------------------------------------------------------
    @property
    def num_labels(self) -> int:
        if self.labels is None:
            raise InputError(f"task {self.name!r} has no label set yet: call task.fit_labels(train_examples) "
                             "or task.use_labels_from_config(model.config)")
        return len(self.labels)

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels or [])}

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.labels or []))

    def config_overrides(self) -> dict:
        """What the model config must say for this task (saved with the fine-tuned model)."""
        out = {"num_labels": self.num_labels, "id2label": self.id2label, "label2id": self.label2id}
        if self.problem_type:
            out["problem_type"] = self.problem_type
        return out

    def use_labels_from_config(self, config) -> None:
        """Take the label set saved with a fine-tuned model (config.id2label), e.g. for eval/predict."""
        id2label = _id2label_of(config)
        if id2label and not _generic_names(id2label):
            self.labels = [id2label[i] for i in range(len(id2label))]
        self.check_config(config)

    def check_config(self, config) -> None:
        """Refuse a model whose head does not fit the task (wrong number or names of labels)."""
        want = self.num_labels
        have = getattr(config, "num_labels", None)
        if have is not None and have != want:
            raise InputError(
                f"task/model mismatch: the model's head has num_labels={have} but task {self.name!r} has "
                f"{want} label(s) {self.labels}. Fine-tune a model for this task, or start from a "
                "pretrained (not fine-tuned) checkpoint so that a fresh head is made.")
        id2label = _id2label_of(config)
        if id2label and not _generic_names(id2label) and self.labels is not None:
            names = [id2label[i] for i in range(len(id2label))]
            if names != self.labels:
                raise InputError(f"task/model mismatch: the model was fine-tuned for labels {names} but task "
                                 f"{self.name!r} has labels {self.labels}; use the task the model was trained on.")

    # -- batching and evaluation ------------------------------------------------------
    def collate(self, features: Sequence[dict]) -> dict:
        return collate_inputs(features, self.pad_token_id)

    def train_valid_split(self, examples, valid_fraction: float = 0.1, seed: int = 42):
        """Fixed-seed split of training examples (QA overrides it to split by article)."""
        return train_valid_split(examples, valid_fraction, seed)

    @torch.no_grad()
    def run_model(self, model, features: Sequence[dict], batch_size: int = 64, device=None) -> list:
        """Forward all features in order (eval mode, no labels) and `gather` per-feature outputs."""
        was_training = model.training
        model.eval()
        device = device or next(model.parameters()).device
        outputs = []
        for i in range(0, len(features), batch_size):
            batch = self.collate(features[i:i + batch_size])
            inputs = {k: batch[k].to(device) for k in MODEL_INPUTS}
            outputs.extend(self.gather(model(**inputs), batch))
        model.train(was_training)
        return outputs

    def evaluate(self, model, examples, features, batch_size: int = 64, device=None) -> dict:
        """Predict every example and score it: the dict of `metrics` (main metric under `main_metric`)."""
        predictions = self.predict(self.run_model(model, features, batch_size, device), features, examples)
        return self.metrics(predictions, examples)

    def format_prediction(self, prediction: dict, example) -> dict:
        """One JSON-able record for `bertkit predict`: the input fields and the prediction."""
        return {**_example_fields(example), **prediction}


def _id2label_of(config) -> dict[int, str]:
    raw = getattr(config, "id2label", None) or {}
    return {int(k): v for k, v in raw.items()}


def _generic_names(id2label: dict[int, str]) -> bool:
    """True for the placeholder names LABEL_0, LABEL_1 ... of a config that was never fine-tuned."""
    return all(v == f"LABEL_{k}" for k, v in id2label.items())


def _example_fields(example) -> dict:
    fields = dict(vars(example))
    fields.pop("answer_ok", None)
    return {k: v for k, v in fields.items() if v is not None and v != ""}
