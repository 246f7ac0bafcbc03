"""Sentence-level tasks: one text or a text pair → one label (or one number).

BERT reads ``[CLS] text [SEP]`` or ``[CLS] text [SEP] pair [SEP]`` (token types 0 then 1)
and the head classifies the pooled [CLS] vector: `BertForSequenceClassification`.
With `num_labels=1` the same head is a regressor trained with MSE (STS-B).

    task = get_task("sst2")
    train = task.read("glue/SST-2/train.tsv")          # ExampleList of TextExample
    features = task.encode(train, tokenizer, max_length=128, training=True)
    batch = task.collate(features[:32])                 # tensors for model(**batch)
    ...
    predictions = task.predict(task.run_model(model, features), features, examples)
    task.metrics(predictions, examples)                 # {"accuracy": ...}
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from bertkit.common.defaults import IGNORE_INDEX
from bertkit.common.errors import InputError

from . import metrics as M
from .base import FeatureList, PredictionList, Task, collate_inputs, to_numpy
from .readers import ExampleList, ReadReport, TextExample, read_table



class ClassificationTask(Task):
    """Single-text or text-pair classification.

    `text_column`, `text_pair_column`, `label_column`: names or 0-based numbers of the
    columns (`header=False` for files without a header row); `labels`: the fixed label
    set in id order, or None to take the sorted labels of the training data
    (`fit_labels`).  `metric_names` from: accuracy, f1 (binary, positive = labels[1]), mcc.
    """

    family = "classification"
    model_class = "BertForSequenceClassification"
    problem_type = "single_label_classification"

    def __init__(self, name: str = "classification", labels: Sequence[str] | None = None, *,
                 text_column: str | int = "text", text_pair_column: str | int | None = None,
                 label_column: str | int | None = "label", header: bool = True,
                 delimiter: str | None = None, quoting: str = "auto", guid_column: str | int | None = None,
                 metric_names: Sequence[str] = ("accuracy",), main_metric: str | None = None,
                 pad_token_id: int = 0):
        super().__init__(labels, pad_token_id)
        self.name = name
        self.columns = dict(text_column=text_column, text_pair_column=text_pair_column,
                            label_column=label_column, header=header, delimiter=delimiter,
                            quoting=quoting, guid_column=guid_column)
        self.metric_names = tuple(metric_names)
        self.main_metric = main_metric or self.metric_names[0]

    # -- reading -----------------------------------------------------------------------
    label_type = str

    def read(self, path, **column_options) -> ExampleList:
        """Read a TSV/CSV/JSONL file; keyword options override the task's column settings."""
        options = {**self.columns, **column_options}
        examples = read_table(path, label_type=self.label_type, **options)
        self._note_unknown_labels(examples, examples.report)
        return examples

    def examples_from_texts(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> ExampleList:
        """Unlabelled examples from raw strings (for `predict`)."""
        pairs = pairs if pairs is not None else [None] * len(texts)
        return ExampleList(TextExample(t, p, None, str(i)) for i, (t, p) in enumerate(zip(texts, pairs)))

    def fit_labels(self, examples) -> list[str]:
        """Set the label set from training data when the task has none (sorted; numbers numerically)."""
        if self.labels is None:
            seen = {ex.label for ex in examples if ex.label is not None}
            if not seen:
                raise InputError(f"task {self.name!r}: the training data has no labels")
            numeric = all(s.lstrip("-").isdigit() for s in seen)
            self.labels = sorted(seen, key=int if numeric else str)
        return self.labels

    def _note_unknown_labels(self, examples, report: ReadReport) -> int:
        if self.labels is None:
            return 0
        known, unknown = self.label2id, 0
        for ex in examples:
            if ex.label is not None and ex.label not in known:
                unknown += 1
                report.note(f"label not in the task's labels {self.labels} (scored as wrong, ignored by the loss)",
                            f"{ex.guid}: {ex.label!r}")
        return unknown

    # -- encoding ----------------------------------------------------------------------
    def encode(self, examples: Sequence[TextExample], tokenizer, max_length: int = 128,
               training: bool = False) -> FeatureList:
        """Tokenize into features {input_ids, token_type_ids, labels, example_index}.

        Pairs are truncated longest-first to `max_length`.  With `training=True` an
        unknown label is an error (the model could not learn it); otherwise it gets the
        ignored label id IGNORE_INDEX (-100) and is noted in `features.report`.
        """
        report = ReadReport(source=f"{self.name} encode (max_length={max_length})")
        self._check_labels_for(examples, training, report)
        texts = [ex.text for ex in examples]
        pairs = [ex.text_pair or "" for ex in examples] if any(ex.text_pair is not None for ex in examples) else None
        enc = tokenizer(texts, pairs, truncation=True, max_length=max_length) if examples else \
            {"input_ids": [], "token_type_ids": []}
        features = FeatureList(report=report)
        for i, (ids, types) in enumerate(zip(enc["input_ids"], enc["token_type_ids"])):
            if len(ids) >= max_length:
                report.note("text reached max_length (the rest was cut off)", examples[i].guid)
            features.append({"input_ids": list(ids), "token_type_ids": list(types),
                             "labels": self._label_id(examples[i].label), "example_index": i})
        report.examples = len(features)
        return features

    def _check_labels_for(self, examples, training: bool, report: ReadReport) -> None:
        unknown = self._note_unknown_labels(examples, report)
        if training and unknown:
            raise InputError(f"task {self.name!r}: {unknown} training example(s) have labels outside "
                             f"{self.labels}; fix the data, or use the generic 'classification' task whose "
                             "labels come from the training data.")

    def _label_id(self, label):
        if label is None:
            return None
        return self.label2id.get(label, IGNORE_INDEX)

    def collate(self, features: Sequence[dict]) -> dict:
        batch = collate_inputs(features, self.pad_token_id)
        if all(f["labels"] is not None for f in features):
            dtype = torch.float if self.num_labels == 1 else torch.long
            batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=dtype)   # [B]
        return batch

    # -- prediction and scoring ----------------------------------------------------------
    def gather(self, output, batch) -> list[np.ndarray]:
        """Model output of one batch → one [C] logits vector per feature."""
        return list(to_numpy(output.logits))                    # logits [B, C]

    def predict(self, outputs: Sequence[np.ndarray], features, examples) -> PredictionList:
        """{"label", "probability"} per example (softmax over the logits of its feature)."""
        predictions = PredictionList([None] * len(examples), ReadReport(source=f"{self.name} predict"))
        for logits, feature in zip(outputs, features):
            p = np.exp(logits - logits.max())
            p /= p.sum()
            k = int(p.argmax())
            predictions[feature["example_index"]] = {"label": self.labels[k], "probability": float(p[k])}
        _require_all(predictions, self.name)
        predictions.report.examples = len(predictions)
        return predictions

    def metrics(self, predictions: Sequence[dict], examples: Sequence[TextExample]) -> dict:
        gold = _gold_labels(examples, self.name)
        pred = [p["label"] for p in predictions]
        out = {}
        for name in self.metric_names:
            if name == "accuracy":
                out["accuracy"] = M.accuracy(pred, gold)
            elif name == "f1":
                out["f1"] = M.binary_f1(pred, gold, positive=self.labels[-1])
            elif name == "mcc":
                out["mcc"] = M.matthews_corrcoef(pred, gold)
            else:
                raise InputError(f"unknown metric {name!r} for task {self.name!r}")
        out["num_examples"] = len(gold)
        return out


class RegressionTask(ClassificationTask):
    """Text-pair regression (STS-B): one output, MSE loss, scored by Pearson and Spearman."""

    family = "regression"
    problem_type = "regression"
    label_type = float

    def __init__(self, name: str = "regression", **options):
        options.setdefault("metric_names", ("pearson", "spearman"))
        super().__init__(name, None, **options)

    @property
    def num_labels(self) -> int:
        return 1

    def config_overrides(self) -> dict:
        return {"num_labels": 1, "problem_type": self.problem_type}

    def fit_labels(self, examples) -> None:
        return None

    def use_labels_from_config(self, config) -> None:
        self.check_config(config)

    def _note_unknown_labels(self, examples, report) -> int:
        return 0

    def _label_id(self, label):
        return None if label is None else float(label)

    def gather(self, output, batch) -> list[float]:
        return to_numpy(output.logits)[:, 0].tolist()          # logits [B, 1] → B scores

    def predict(self, outputs, features, examples) -> PredictionList:
        predictions = PredictionList([None] * len(examples), ReadReport(source=f"{self.name} predict"))
        for score, feature in zip(outputs, features):
            predictions[feature["example_index"]] = {"score": float(score)}
        _require_all(predictions, self.name)
        predictions.report.examples = len(predictions)
        return predictions

    def metrics(self, predictions, examples) -> dict:
        gold = [float(g) for g in _gold_labels(examples, self.name)]
        pred = [p["score"] for p in predictions]
        out = {}
        for name in self.metric_names:
            if name == "pearson":
                out["pearson"] = M.pearson(pred, gold)
            elif name == "spearman":
                out["spearman"] = M.spearman(pred, gold)
            elif name == "mse":
                out["mse"] = sum((p - g) ** 2 for p, g in zip(pred, gold)) / len(gold)
            else:
                raise InputError(f"unknown metric {name!r} for task {self.name!r}")
        out["num_examples"] = len(gold)
        return out


def _gold_labels(examples, task_name: str) -> list:
    missing = sum(ex.label is None for ex in examples)
    if missing:
        raise InputError(f"task {task_name!r}: {missing} of {len(examples)} examples have no label, so they "
                         "cannot be scored; use `bertkit predict` for unlabelled data.")
    return [ex.label for ex in examples]


def _require_all(predictions: list, task_name: str) -> None:
    missing = sum(p is None for p in predictions)
    if missing:
        raise InputError(f"task {task_name!r}: {missing} examples got no prediction; pass the features "
                         "made by task.encode(examples, ...) for exactly these examples.")
