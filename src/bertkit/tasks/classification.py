"""Sentence-level tasks: one text or a text pair → one label (or one number).

BERT reads ``[CLS] text [SEP]`` or ``[CLS] text [SEP] pair [SEP]`` (token types 0 then 1)
and the head classifies the pooled [CLS] vector: `BertForSequenceClassification`.
With `num_labels=1` the same head is a regressor trained with MSE (STS-B).

    task = get_task("sst2")
    train = task.read("glue/SST-2/train.tsv")          # ExampleList of TextExample
    features = task.encode(train, tokenizer, max_seq_length=128, training=True)
    batch = task.collate(features[:32])                 # tensors for model(**batch)
    ...
    predictions = task.predict(task.run_model(model, features), features, examples)
    task.metrics(predictions, examples)                 # {"accuracy": ...}
"""
from __future__ import annotations

import shlex
from typing import Sequence

import numpy as np
import torch

from bertkit.common.defaults import IGNORE_INDEX, MAX_SEQ_LENGTH
from bertkit.common.errors import InputError
from bertkit.text.names import renamed

from . import metrics as M
from .base import (FeatureList, PredictionList, Task, clip, collate_inputs, number_header, place, place_with,
                   source_file, to_numpy)
from .readers import ExampleList, ReadReport, TextExample, header_of, quoted_columns, read_table


class ClassificationTask(Task):
    """Single-text or text-pair classification.

    `text_column`, `text_pair_column`, `label_column`: names or 0-based numbers of the
    columns (`header=False` for files without a header row; `label_column` may be a
    tuple of names, the first one present is used); `labels`: the fixed label values in
    id order, or None to take the sorted labels of the training data (`fit_labels`);
    `label_names`: what people see for each label (see `Task`); `skip_labels`: label
    values that mean "no gold label" (SNLI's "-"): such rows are left out, counted.
    `metric_names` from: accuracy, f1 (binary, positive = labels[1]), mcc.
    """

    family = "classification"
    model_class = "BertForSequenceClassification"
    problem_type = "single_label_classification"

    def __init__(self, name: str = "classification", labels: Sequence[str] | None = None, *,
                 text_column: str | int = "text", text_pair_column: str | int | None = None,
                 label_column: str | int | tuple | None = "label", header: bool = True,
                 delimiter: str | None = None, quoting: str = "auto", guid_column: str | int | None = None,
                 metric_names: Sequence[str] = ("accuracy",), main_metric: str | None = None,
                 label_names=None, skip_labels: Sequence[str] = (), pad_token_id: int = 0):
        super().__init__(labels, pad_token_id, label_names)
        self.name = name
        self.columns = dict(text_column=text_column, text_pair_column=text_pair_column,
                            label_column=label_column, header=header, delimiter=delimiter,
                            quoting=quoting, guid_column=guid_column)
        self.skip_labels = tuple(skip_labels)
        self.metric_names = tuple(metric_names)
        self.main_metric = main_metric or self.metric_names[0]

    # -- reading -----------------------------------------------------------------------
    label_type = str

    def read(self, path, **column_options) -> ExampleList:
        """Read a TSV/CSV/JSONL file; keyword options override the task's column settings.

        Labels are kept as label values: a label written as its name ("positive") becomes
        its value ("1"); labels outside the task's set are kept and noted (scored as wrong).
        """
        options = {**self.columns, **column_options}
        examples = read_table(path, label_type=self.label_type, **options)
        if self.skip_labels:
            examples = self._drop_skip_labels(examples)
        if self.labels is not None and self.label_type is str:
            for ex in examples:
                ex.label = self.value_of(ex.label)
        self._note_unknown_labels(examples, examples.report)
        return examples

    def _drop_skip_labels(self, examples) -> ExampleList:
        kept = ExampleList(report=examples.report)
        for ex in examples:
            if ex.label in self.skip_labels:
                examples.report.skip(f"rows without a gold label ({ex.label!r}: the annotators did not agree)",
                                     place(ex), one=f"row without a gold label ({ex.label!r})")
            else:
                kept.append(ex)
        kept.report.examples = len(kept)
        return kept

    def examples_from_texts(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> ExampleList:
        """Unlabelled examples from raw strings (for `predict`)."""
        pairs = pairs if pairs is not None else [None] * len(texts)
        return ExampleList(TextExample(t, p, None) for t, p in zip(texts, pairs))

    def examples_from_inputs(self, inputs: Sequence[str]) -> ExampleList:
        """Command-line strings: one text each, or text, pair, text, pair ... for a pair task."""
        if self.columns.get("text_pair_column") is not None:
            if len(inputs) % 2:
                raise InputError(f"task {self.name!r} classifies pairs: give 'text' 'pair' ['text' 'pair' ...]")
            return self.examples_from_texts(inputs[0::2], inputs[1::2])
        return self.examples_from_texts(inputs)

    def fit_labels(self, examples) -> list[str]:
        """Set the label set from training data when the task has none (sorted; numbers numerically)."""
        self.require_labels(examples)
        if self.labels is None:
            seen = {ex.label for ex in examples if ex.label is not None}
            if not seen:
                raise InputError(f"task {self.name!r}: the training data has no labels")
            numeric = all(s.lstrip("-").isdigit() for s in seen)
            self.labels = sorted(seen, key=int if numeric else str)
        return self.labels

    def require_labels(self, examples) -> None:
        """Refuse training data without any label: name the label column and the file's header.

        (A file without the label column reads as unlabelled examples, which `predict` wants;
        training cannot use them.)"""
        if not len(examples) or any(ex.label is not None for ex in examples):
            return
        column, file = self.columns["label_column"], source_file(examples)
        where = f"{file}: " if file else ""
        header = header_of(file, self.columns["delimiter"]) if file else None
        has = f"; its header has {header}" if header else ""
        raise InputError(f"{where}task {self.name!r} needs a label, and no training example has one: the data "
                         f"has no column {quoted_columns(column)}{has}. Name the label column with --label-column "
                         "(bertkit finetune)")

    def train_valid_split(self, examples, valid_fraction: float = 0.1, seed: int = 42):
        """Fixed-seed split of labelled training examples (unlabelled: the error of `require_labels`)."""
        self.require_labels(examples)
        return super().train_valid_split(examples, valid_fraction, seed)

    def _unknown(self, examples) -> list:
        known = self.label2id
        return [ex for ex in examples if ex.label is not None and ex.label not in known]

    def _note_unknown_labels(self, examples, report: ReadReport) -> int:
        if self.labels is None:
            return 0
        unknown = self._unknown(examples)
        for ex in unknown:
            report.note(f"labels outside the labels of task {self.name!r} ({self.labels_text()}): scored as "
                        "wrong, ignored by the loss", place_with(ex, ex.label),
                        one=f"label outside the labels of task {self.name!r} ({self.labels_text()}): scored "
                            "as wrong, ignored by the loss")
        return len(unknown)

    def check_training_labels(self, examples) -> None:
        """Refuse training data with labels the task does not have: the lines, the values, the way out."""
        if self.labels is None:
            return
        unknown = self._unknown(examples)
        if not unknown:
            return
        report = ReadReport(file=source_file(examples))
        for ex in unknown:
            report.note("x", place_with(ex, ex.label))
        values = sorted({str(ex.label) for ex in unknown})
        raise InputError(
            f"task {self.name!r}: {len(unknown)} training example(s) have labels outside its labels "
            f"{self.labels_text()}: {report.places('x', len(unknown))} (values: {', '.join(map(repr, values[:10]))}). "
            f"Fix the data, or train on the labels the data has: {self._generic_command()}")

    def _generic_command(self) -> str:
        """The generic-task flags that read this task's columns, labels taken from the data."""
        c = self.columns
        pair = c["text_pair_column"] is not None
        flags = [f"--task {'pair-classification' if pair else 'classification'}"]
        for flag, key in (("--text-column", "text_column"), ("--pair-column", "text_pair_column"),
                          ("--label-column", "label_column")):
            value = c[key][0] if isinstance(c[key], (tuple, list)) else c[key]
            if isinstance(value, str):
                flags.append(f"{flag} {shlex.quote(value)}")
        return " ".join(flags) + " (name the labels with --label-names VALUE=NAME,...)"

    # -- encoding ----------------------------------------------------------------------
    @renamed(max_length="max_seq_length")
    def encode(self, examples: Sequence[TextExample], tokenizer, max_seq_length: int = MAX_SEQ_LENGTH,
               training: bool = False) -> FeatureList:
        """Tokenize into features {input_ids, token_type_ids, labels, example_index}.

        Pairs are truncated longest-first to `max_seq_length` tokens (the cut examples are
        noted with their lines).  With `training=True` a label outside the task's labels
        is an error (the model could not learn it); otherwise it gets the ignored label id
        IGNORE_INDEX (-100) and is noted in `features.report`.  (`max_length=` is the old,
        deprecated name of `max_seq_length`.)
        """
        n, report = self.start_encoding(examples, max_seq_length, training)
        self._note_unknown_labels(examples, report)
        ids, types, cut = _tokenize(examples, tokenizer, n)
        what = "text pairs" if any(ex.text_pair is not None for ex in examples) else "texts"
        for i in cut:
            report.note(f"{what} longer than max_seq_length={n} tokens were cut", place(examples[i]),
                        one=f"{what[:-1]} longer than max_seq_length={n} tokens was cut",
                        hint="raise --max-seq-length to keep more (BERT reads at most 512)")
        label_ids = self.label2id
        features = FeatureList(report=report)
        for i, ex in enumerate(examples):
            label = None if ex.label is None else self._label_id(ex.label, label_ids)
            features.append({"input_ids": ids[i], "token_type_ids": types[i], "labels": label, "example_index": i})
        report.examples = len(features)
        return features

    def _label_id(self, label, label_ids: dict | None = None):
        if label is None:
            return None
        return (label_ids if label_ids is not None else self.label2id).get(label, IGNORE_INDEX)

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
        """{"label" (the label value), "probability"} per example (softmax over its logits)."""
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
        gold = [self.value_of(g) for g in _gold_labels(examples, self.name)]
        pred = [self.value_of(p["label"]) for p in predictions]
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

    def format_prediction(self, prediction: dict, example: TextExample) -> dict:
        """One record for `bertkit predict`: line (or id), text(s), label *name*, probability, gold."""
        record = _where_fields(example)
        record["text"] = example.text
        if example.text_pair is not None:
            record["text_pair"] = example.text_pair
        record["label"] = self.display(prediction["label"])
        record["probability"] = prediction["probability"]
        if example.label is not None:
            record["gold"] = self.display(example.label)
        return record

    def format_lines(self, rows: Sequence[dict]) -> list[str]:
        """The table `bertkit predict` and `bertkit classify` print (`format_classification_lines`)."""
        return format_classification_lines(rows)


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
        self.require_labels(examples)

    def use_labels_from_config(self, config, labels=None) -> None:
        self.check_config(config)

    def _note_unknown_labels(self, examples, report) -> int:
        return 0

    def _label_id(self, label, label_ids=None):
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

    def format_prediction(self, prediction: dict, example: TextExample) -> dict:
        """One record for `bertkit predict`: line (or id), text(s), predicted score, gold score."""
        record = {**_where_fields(example), "text": example.text}
        if example.text_pair is not None:
            record["text_pair"] = example.text_pair
        record["score"] = prediction["score"]
        if example.label is not None:
            record["gold"] = example.label
        return record


def format_classification_lines(rows: Sequence[dict]) -> list[str]:
    """Classification and regression records (``text``, ``label`` + ``probability``, or ``score``):

         line  label      prob  gold          text
            2  negative  0.912  negative ✓    a gorgeous, witty film

    `line` is the example's line in its file (1-based, the header counted, as an editor
    shows it); inputs from the command line are numbered 1, 2, ... under `#`.  `gold`
    (the file's own label) appears when the file has one, ✓/✗ against the prediction.
    Rows with ``others`` (classify --top-k) list the next labels after the text.
    """
    if not rows:
        return []
    has_gold = any("gold" in row for row in rows)
    value_key = "probability" if "probability" in rows[0] else "score"
    has_label = any("label" in row for row in rows)
    width = max(5, *(len(str(row.get("label", ""))) for row in rows))
    gold_width = max(4, *(len(_fmt(row.get("gold", "-"))) for row in rows)) + 2 if has_gold else 0
    head = f"{number_header(rows):>5}  " + (f"{'label':<{width}}  " if has_label else "")
    head += f"{'prob' if value_key == 'probability' else 'score':>7}"
    head += f"  {'gold':<{gold_width}}" if has_gold else ""
    lines = [head + "  text"]
    for n, row in enumerate(rows, 1):
        line = f"{row.get('line', n):>5}  " + (f"{str(row.get('label', '')):<{width}}  " if has_label else "")
        line += f"{row[value_key]:>7.3f}"
        if has_gold:
            line += f"  {_gold_mark(row, value_key):<{gold_width}}"
        text = row["text"] + (f" ||| {row['text_pair']}" if row.get("text_pair") else "")
        line += f"  {clip(text, 100)}"
        if row.get("others"):
            line += "   (next: " + ", ".join(f"{o['label']} {o['score']:.3f}" for o in row["others"]) + ")"
        lines.append(line)
    return lines


def _gold_mark(row: dict, value_key: str) -> str:
    if "gold" not in row:
        return "-"
    if value_key == "score":
        return _fmt(row["gold"])
    return f"{row['gold']} {'✓' if str(row['gold']) == str(row.get('label')) else '✗'}"


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _tokenize(examples, tokenizer, max_seq_length: int) -> tuple[list, list, list[int]]:
    """(input_ids, token_type_ids, indexes of the examples that were cut) at `max_seq_length`.

    One token more is asked for first: an example longer than max_seq_length comes back
    with max_seq_length + 1 tokens (whatever the pair split), so the cut ones are known
    exactly; only those are tokenized again at max_seq_length.
    """
    if not len(examples):
        return [], [], []
    texts = [ex.text for ex in examples]
    pairs = [ex.text_pair or "" for ex in examples] if any(ex.text_pair is not None for ex in examples) else None
    enc = tokenizer(texts, pairs, truncation=True, max_length=max_seq_length + 1)
    ids, types = [list(x) for x in enc["input_ids"]], [list(x) for x in enc["token_type_ids"]]
    cut = [i for i, row in enumerate(ids) if len(row) > max_seq_length]
    if cut:
        again = tokenizer([texts[i] for i in cut], [pairs[i] for i in cut] if pairs else None,
                          truncation=True, max_length=max_seq_length)
        for i, row, row_types in zip(cut, again["input_ids"], again["token_type_ids"]):
            ids[i], types[i] = list(row), list(row_types)
    return ids, types, cut


def _where_fields(example) -> dict:
    """{"line": N} for an example from a file, {"id": ...} when the file has an id column."""
    out = {}
    if getattr(example, "line", None) is not None:
        out["line"] = example.line
    if getattr(example, "guid", ""):
        out["id"] = example.guid
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
