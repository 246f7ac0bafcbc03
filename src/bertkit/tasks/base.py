"""What every task family shares: labels, config checks, batching and the evaluation loop.

A task object is the data side of fine-tuning.  The training loop only needs
`task.encode(...)` (features), `task.collate(features)` (tensors for `model(**batch)`),
and for evaluation `task.gather` → `task.predict` → `task.metrics`.

Everything else that differs between families is a method here too, so that training/,
pipelines/ and cli/ never ask which family a task is: `use_tokenizer` (once, before
batching: the padding id), `default_max_seq_length`, `texts_of` (what the model reads,
for the vocabulary-coverage check), `examples_from_inputs` (command-line strings →
examples), `format_prediction` (a JSON record) and `format_lines` (the table people see).
A new family is one module (a `Task` subclass) plus a registry entry in `tasks/__init__.py`.
"""
from __future__ import annotations

import json
from typing import Iterator, Sequence

import numpy as np
import torch

from bertkit.common.defaults import MAX_SEQ_LENGTH
from bertkit.common.errors import InputError

from .readers import ExampleList, ReadReport, train_valid_split

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


def source_file(examples) -> str:
    """The file an ExampleList was read from ("" for plain lists): encode reports name it."""
    report = getattr(examples, "report", None)
    return (report.file or "") if report is not None else ""


def place(example):
    """Where an example is, for a report: its file line (int), else its id."""
    line = getattr(example, "line", None)
    return line if line is not None else getattr(example, "guid", "")


def place_with(example, value):
    """A place that also shows a value found there: (line, value), or "id: 'value'"."""
    line = getattr(example, "line", None)
    return (line, value) if line is not None else f"{getattr(example, 'guid', '')}: {value!r}"


def real_lengths(batch: dict) -> list[int]:
    return batch["attention_mask"].sum(dim=1).tolist()


def to_numpy(t) -> np.ndarray:
    return t.detach().float().cpu().numpy() if torch.is_tensor(t) else np.asarray(t, dtype=np.float32)


class Task:
    """Base class.  Subclasses set `family`, `model_class`, `main_metric` and the methods below.

    Labels have two spellings.  `labels` are the values as the data files write them
    ("0", "1" for SST-2): reading and encoding map them to ids.  `names` are what people
    see ("negative", "positive"): they go into the model's config (`id2label`), so that
    `bertkit predict`, the pipelines, the web demo and Hugging Face transformers all show
    them.  `label_names` sets the names: ``"0=negative,1=positive"``, a dict value → name,
    or a list in id order; without it a label's name is its value.
    """

    name = "task"
    family = ""
    model_class = ""
    main_metric = ""
    problem_type: str | None = None
    pipeline_tag = "text-classification"         # the Hub's pipeline tag of a model fine-tuned for it
    default_max_seq_length = MAX_SEQ_LENGTH      # BERT's usual length for the family (QA: 384-token windows)

    def __init__(self, labels: Sequence[str] | None = None, pad_token_id: int = 0, label_names=None):
        self.labels = list(labels) if labels is not None else None
        self.pad_token_id = pad_token_id
        self.label_names = label_names

    # -- labels ------------------------------------------------------------------
    @property
    def num_labels(self) -> int:
        if self.labels is None:
            raise InputError(f"task {self.name!r} has no label set yet: call task.fit_labels(train_examples) "
                             "or task.use_labels_from_config(model.config)")
        return len(self.labels)

    @property
    def names(self) -> list[str] | None:
        """The display name of each label, in id order (None while the task has no labels)."""
        if self.labels is None:
            return None
        return resolve_label_names(self.label_names, self.labels, self.name)

    @property
    def label2id(self) -> dict[str, int]:
        """Label value (as in the files) → id; a label's name is accepted too, e.g. "positive"."""
        by_value = {label: i for i, label in enumerate(self.labels or [])}
        by_name = {name: i for i, name in enumerate(self.names or []) if name not in by_value}
        return {**by_name, **by_value}

    @property
    def id2label(self) -> dict[int, str]:
        """Id → display name: what the model's config saves."""
        return dict(enumerate(self.names or []))

    def value_of(self, label):
        """The label value for a value or a name ("positive" → "1"); unknown labels as they are."""
        k = self.label2id.get(label) if label is not None else None
        return label if k is None else self.labels[k]

    def display(self, label):
        """The display name of a label value (or of its name); unknown labels as they are."""
        k = self.label2id.get(label) if label is not None else None
        return label if k is None else self.names[k]

    def labels_text(self) -> str:
        """"0=negative, 1=positive" (or "a, b, c" when the names are the values): for messages."""
        if self.labels is None:
            return "(none yet)"
        return ", ".join(v if v == n else f"{v}={n}" for v, n in zip(self.labels, self.names))

    def config_overrides(self) -> dict:
        """What the model config must say for this task (saved with the fine-tuned model)."""
        names = self.names
        out = {"num_labels": self.num_labels, "id2label": dict(enumerate(names)),
               "label2id": {n: i for i, n in enumerate(names)}}
        if self.problem_type:
            out["problem_type"] = self.problem_type
        return out

    def use_labels_from_config(self, config, labels: Sequence[str] | None = None) -> None:
        """Take the labels saved with a fine-tuned model, for eval/predict.

        `labels`: the label values recorded in task.json (models fine-tuned since label
        names exist); the names come from config.id2label.  A model saved before that
        has the values themselves as names (id2label {0: "0", 1: "1"}): it still loads,
        and a built-in task keeps its own names for it.
        """
        if labels is not None:
            self.labels = list(labels)
        saved = _config_names(config)
        if saved:
            if self.labels is None:
                self.labels = saved                       # an old generic model: the names are the values
            elif saved != self.labels and saved != self.names and self.label_names is None:
                self.label_names = saved                  # names chosen at fine-tuning (--label-names)
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
        saved = _config_names(config)
        if saved and self.labels is not None and saved not in (self.labels, self.names):
            raise InputError(f"task/model mismatch: the model was fine-tuned for labels {saved} but task "
                             f"{self.name!r} has labels {self.labels_text()}; use the task the model was "
                             "trained on.")

    def start_encoding(self, examples, n: int, training: bool):
        """What every `encode` does first: a report that names the examples' file and the length `n`,
        and with training=True the labels checked.  (`encode(max_length=)`, the old name of
        max_seq_length, goes through `bertkit.text.names.renamed` like every retired keyword.)"""
        file = source_file(examples)
        report = ReadReport(source=f"{self.name}: {file or 'examples'} encoded (max_seq_length={n})", file=file)
        if training:
            self.check_training_labels(examples)
        return n, report

    def check_training_labels(self, examples) -> None:
        """Raise, naming lines and values, if training data has labels the task cannot learn."""

    def check_label_names(self) -> None:
        """Raise now (before any model is loaded) if `label_names` does not fit the labels."""
        _ = self.names

    # -- what orchestration asks of every family --------------------------------------
    def use_tokenizer(self, tokenizer) -> None:
        """Hand the task its tokenizer once, before batching: `collate` pads with its [PAD] id."""
        self.tokenizer = tokenizer
        self.pad_token_id = tokenizer.pad_token_id

    def texts_of(self, examples) -> Iterator[str]:
        """The text the model reads from each example (for the vocabulary-coverage check)."""
        for ex in examples:
            yield ex.text + (" " + ex.text_pair if getattr(ex, "text_pair", None) else "")

    def examples_from_inputs(self, inputs: Sequence[str]) -> ExampleList:
        """Unlabelled examples from the strings of `bertkit predict TEXT ...` (each family says how)."""
        raise InputError(f"task {self.name!r} cannot predict from command-line texts: use --file FILE")

    def format_lines(self, rows: Sequence[dict]) -> list[str]:
        """Prediction records (`format_prediction`) as lines for people; here one JSON object a line."""
        return [json.dumps(row, ensure_ascii=False) for row in rows]

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


def _config_names(config) -> list[str] | None:
    """The label names a fine-tuned config saved, in id order (None for LABEL_0, LABEL_1 ...)."""
    id2label = _id2label_of(config)
    if not id2label or _generic_names(id2label):
        return None
    return [id2label[i] for i in range(len(id2label))]


def parse_label_names(spec) -> dict[str, str] | list[str] | None:
    """--label-names text → {value: name} ("0=negative,1=positive") or [names] ("negative,positive")."""
    if spec is None or isinstance(spec, (dict, list, tuple)):
        return dict(spec) if isinstance(spec, dict) else (list(spec) if spec is not None else None)
    parts = [p.strip() for p in str(spec).split(",") if p.strip()]
    if not any("=" in p for p in parts):
        return parts
    pairs = {}
    for part in parts:
        value, sep, name = (x.strip() for x in part.partition("="))
        if not sep or not value or not name:
            raise InputError(f"--label-names: {part!r} is not VALUE=NAME; write e.g. 0=negative,1=positive")
        pairs[value] = name
    return pairs


def resolve_label_names(spec, labels: list[str], task_name: str) -> list[str]:
    """The name of each label (in id order) from a label_names spec; errors say what to write."""
    given = parse_label_names(spec)
    if given is None:
        return list(labels)
    if isinstance(given, list):
        if len(given) != len(labels):
            raise InputError(f"--label-names gives {len(given)} name(s) for the {len(labels)} labels "
                             f"{labels} of task {task_name!r}; give one per label, or VALUE=NAME pairs")
        names = given
    else:
        unknown = [v for v in given if v not in labels]
        if unknown:
            raise InputError(f"--label-names names {', '.join(map(repr, unknown))}, which "
                             f"{'is' if len(unknown) == 1 else 'are'} not a label of task {task_name!r} "
                             f"(its labels: {', '.join(labels)}); use the values as the data writes them")
        missing = [v for v in labels if v not in given]
        if missing:
            raise InputError(f"--label-names gives no name for label(s) {', '.join(map(repr, missing))} of task "
                             f"{task_name!r}; add {','.join(f'{v}=NAME' for v in missing)}")
        names = [given[v] for v in labels]
    if len(set(names)) != len(names):
        raise InputError(f"--label-names: the names {names} are not all different")
    return list(names)


def number_header(rows: Sequence[dict]) -> str:
    """The first column of a prediction table: "line" (in its file) or "#" (command-line inputs)."""
    return "line" if any("line" in row for row in rows) else "#"


def clip(text: str, width: int) -> str:
    """`text` on one line, at most `width` characters (… marks a cut)."""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[:width - 1] + "…"


def _example_fields(example) -> dict:
    fields = dict(vars(example))
    fields.pop("answer_ok", None)
    return {k: v for k, v in fields.items() if v is not None and v != ""}
