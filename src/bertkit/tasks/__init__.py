"""Fine-tuning tasks: the data side of the four task families of the BERT paper.

    family           model head                       tasks here
    classification   BertForSequenceClassification    sst2, cola, nsmc, chatbot_intent; mrpc, rte,
                                                      mnli, kornli (pairs)
    regression       BertForSequenceClassification    stsb (num_labels=1, MSE loss)
    tagging          BertForTokenClassification       conll2003, ko_ner
    qa               BertForQuestionAnswering         squad, korquad; squad2 (unanswerable questions)

Generic tasks for your own data: "classification", "pair-classification", "regression"
(TSV/CSV/JSONL with named columns), "tagging" (CoNLL columns or format="kmou"), "qa"
(SQuAD JSON; `version_2_with_negative=True` for SQuAD 2.0 files).

The interface (the same for every family)::

    task = get_task("sst2")                       # or get_task("classification", text_column="review")
    train = task.read(path)                       # ExampleList; train.report.summary() says what was skipped
    train, valid = task.train_valid_split(train, 0.1, seed=42)   # QA: by article
    task.fit_labels(train)                        # generic tasks: labels from the training data
    task.labels, task.names, task.num_labels, task.model_class, task.config_overrides()
    model = BertForSequenceClassification.from_pretrained(ckpt, **task.config_overrides())
    task.check_config(model.config)               # refuses a head that does not fit the labels

    features = task.encode(train, tokenizer, max_seq_length=128, training=True)   # list of dicts of lists
    batch = task.collate(features[:32])           # dict of tensors: model(**batch).loss
    # Trainer(model, features, task.collate, ...) — features are the dataset

    outputs = task.run_model(model, valid_features)            # = task.gather(model(**inputs), batch) per batch
    predictions = task.predict(outputs, valid_features, valid) # one dict per example
    scores = task.metrics(predictions, valid)                  # scores[task.main_metric]
    task.evaluate(model, valid, valid_features)                # the three lines above in one
    task.format_prediction(predictions[0], valid[0])           # JSON record for `bertkit predict`

    task.use_tokenizer(tokenizer)                 # once, before collate: the [PAD] id
    task.default_max_seq_length                   # 128; QA: 384-token windows
    task.texts_of(examples)                       # what the model reads (vocabulary-coverage check)
    task.examples_from_inputs(["a text", ...])    # `bertkit predict TEXT ...` (QA: question, context pairs)
    task.format_lines(records)                    # the table `bertkit predict` prints

Orchestration (training/, pipelines/, cli/, apps/) uses only this interface and never asks
which family a task is: a new family is one module with a `Task` subclass plus its entries
in `_BUILDERS` below.

Labels: `task.labels` are the values the files write ("0", "1"), `task.names` what people
see ("negative", "positive"; `label_names="0=negative,1=positive"` for your own data).
The names go into the model's config (id2label), so every tool that reads the model
shows them; files are still read by their values.

Every reader, `encode` and `predict` returns a list with a `.report` (`ReadReport`):
counts of skipped rows, unknown labels, truncated words, long contexts ... with the
first lines (of which file) where they happen and what to do about them.  Nothing is dropped silently; print `report.summary()`.

Feature keys: `input_ids`, `token_type_ids`, `example_index` always; `labels`
(classification: id or float, tagging: per-piece ids, IGNORE_INDEX on pieces that carry no loss) or `start_positions` /
`end_positions` (QA, None when unknown); bookkeeping: `word_starts` (tagging),
`context_start`, `context_offsets` (QA).  `collate` turns only the model inputs and
targets into tensors (padding to the longest feature; attention_mask from lengths).
"""
from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Callable

from bertkit.common.errors import InputError, NotFoundError

from .base import FeatureList, PredictionList, Task
from .classification import ClassificationTask, RegressionTask
from .qa import QATask
from .readers import (ExampleList, QAExample, ReadReport, TaggedExample, TextExample, read_conll,
                      read_jsonl, read_kmou, read_table, train_valid_split)
from .squad import read_squad
from .tagging import CONLL2003_LABELS, KO_NER_LABELS, TaggingTask

BINARY = ["0", "1"]
SENTIMENT = ["negative", "positive"]
NLI_LABELS = ["contradiction", "entailment", "neutral"]     # the order of BERT's and HF's MNLI processors
NLI = dict(labels=NLI_LABELS, text_column="sentence1", text_pair_column="sentence2",
           label_column=("gold_label", "label"), skip_labels=("-",))

_BUILDERS: dict[str, tuple[Callable, dict, str]] = {
    "sst2": (ClassificationTask, dict(labels=BINARY, label_names=SENTIMENT, text_column="sentence",
                                      label_column="label"),
             "GLUE SST-2 sentiment (TSV: sentence, label 0=negative/1=positive)"),
    "cola": (ClassificationTask, dict(labels=BINARY, label_names=["unacceptable", "acceptable"], header=False,
                                      text_column=3, label_column=1, metric_names=("mcc", "accuracy")),
             "GLUE CoLA acceptability (TSV, no header: source, label, mark, sentence); Matthews corr."),
    "nsmc": (ClassificationTask, dict(labels=BINARY, label_names=SENTIMENT, text_column="document",
                                      label_column="label", guid_column="id"),
             "Naver movie review sentiment (TSV: id, document, label 0=negative/1=positive)"),
    "mrpc": (ClassificationTask, dict(labels=BINARY, label_names=["not_equivalent", "equivalent"],
                                      text_column="#1 String", text_pair_column="#2 String",
                                      label_column="Quality", metric_names=("f1", "accuracy")),
             "GLUE MRPC paraphrase pairs (TSV: Quality, #1 ID, #2 ID, #1 String, #2 String)"),
    "mnli": (ClassificationTask, NLI,
             "GLUE MultiNLI 3-way entailment (TSV with sentence1, sentence2, gold_label or label)"),
    "kornli": (ClassificationTask, NLI,
               "KorNLI (kakaobrain) Korean 3-way entailment (TSV: sentence1, sentence2, gold_label)"),
    "chatbot_intent": (ClassificationTask, dict(labels=["0", "1", "2"], label_names=["daily", "breakup", "love"],
                                                text_column="Q", label_column="label"),
                       "Korean chatbot intent, songys/Chatbot_data ChatbotData.csv (Q, A, label "
                       "0=daily/1=breakup/2=love)"),
    "rte": (ClassificationTask, dict(labels=["entailment", "not_entailment"], text_column="sentence1",
                                     text_pair_column="sentence2", label_column="label", guid_column="index"),
            "GLUE RTE entailment pairs (TSV: index, sentence1, sentence2, label)"),
    "stsb": (RegressionTask, dict(text_column="sentence1", text_pair_column="sentence2", label_column="score",
                                  guid_column="index"),
             "GLUE STS-B similarity 0-5 (TSV: ..., sentence1, sentence2, score); Pearson/Spearman"),
    "conll2003": (TaggingTask, dict(labels=CONLL2003_LABELS, format="conll"),
                  "CoNLL-2003 English NER (word ... tag columns, IOB2)"),
    "ko_ner": (TaggingTask, dict(labels=KO_NER_LABELS, format="kmou"),
               "KMOU Korean NER (morpheme rows; tags → IOB2 PS/LC/OG/DT/TI)"),
    "squad": (QATask, dict(metric="squad"), "SQuAD v1.1 JSON; official EM/F1"),
    "korquad": (QATask, dict(metric="korquad"), "KorQuAD 1.0 JSON; official EM/character F1"),
    "squad2": (QATask, dict(metric="squad", version_2_with_negative=True),
               "SQuAD 2.0 JSON (unanswerable questions); official v2.0 EM/F1, HasAns/NoAns, best null threshold"),
    "classification": (ClassificationTask, dict(),
                       "your single-text classification (text_column, label_column; labels from train data)"),
    "pair-classification": (ClassificationTask, dict(text_column="text", text_pair_column="text_pair"),
                            "your text-pair classification (text_column, text_pair_column, label_column)"),
    "regression": (RegressionTask, dict(text_column="text", text_pair_column="text_pair"),
                   "your (pair) regression, one number per example (set text_pair_column=None for single text)"),
    "tagging": (TaggingTask, dict(), "your token tagging (CoNLL columns: word_column, tag_column; or format='kmou')"),
    "qa": (QATask, dict(), "your extractive QA in SQuAD JSON (metric='squad' or 'korquad'; "
                           "version_2_with_negative=True for unanswerable questions)"),
}

TASK_NAMES = tuple(_BUILDERS)
_ALIASES = {"sst-2": "sst2", "sts-b": "stsb", "ko-ner": "ko_ner", "conll": "conll2003",
            "pair_classification": "pair-classification", "multinli": "mnli", "chatbot": "chatbot_intent",
            "chatbot-intent": "chatbot_intent", "squad_v2": "squad2", "squad-v2": "squad2"}


def get_task(name: str, **options) -> Task:
    """A fresh task object by name; `options` override its defaults (columns, labels, QA settings)."""
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in _BUILDERS:
        raise InputError(f"unknown task {name!r}{did_you_mean(name)}; the tasks are: {', '.join(TASK_NAMES)} "
                         "(`bertkit finetune --help` describes each)")
    cls, defaults, _ = _BUILDERS[key]
    try:
        return cls(key, **{**defaults, **options})
    except TypeError as e:                      # an option this family does not have: say which
        match = re.search(r"unexpected keyword argument '(\w+)'", str(e))
        if not match:
            raise
        option = match.group(1)
        raise InputError(f"task {key!r} ({cls.family}) has no option {option!r} (--{option.replace('_', '-')}); "
                         "leave it out, or choose a task that reads it") from None


def read_file_to_classify(path, task_info: dict | None = None) -> ExampleList:
    """The texts (and pairs) of a file for a classifier: what `bertkit classify --file` reads.

    `task_info` is the model's task.json (None for a model without one): a plain text file
    is one text per line; a table is read with the columns of that task (without task.json:
    the generic task's 'text' column).  A QA or tagging model is refused (see answer, tag).
    """
    if not Path(path).is_file():
        raise NotFoundError(f"file not found: {path}")
    task = get_task(task_info["task"], **(task_info.get("options") or {})) if task_info else get_task("classification")
    if task.family not in ("classification", "regression"):
        raise InputError(f"the model was fine-tuned for {task.name!r} ({task.family}), not classification: "
                         f"use bertkit {'answer' if task.family == 'qa' else 'tag'}")
    examples = task.read(path)
    if not len(examples):
        raise InputError(f"{path}: no text to classify in it")
    return examples


def did_you_mean(name: str) -> str:
    """" (did you mean 'sst2'?)" for a name close to a task name or alias ("" when none is close)."""
    names = {**{t: t for t in TASK_NAMES}, **_ALIASES}
    close = difflib.get_close_matches(name.lower(), list(names), n=1, cutoff=0.6)
    if not close:
        close = [n for n in names if n.startswith(name.lower()) or name.lower().startswith(n)][:1]
    return f" (did you mean {names[close[0]]!r}?)" if close and name else ""


def pipeline_tag_of(family: str | None) -> str:
    """The Hub's pipeline tag for a model fine-tuned for a task family (the `pipeline_tag` of its Task class)."""
    tags = {cls.family: cls.pipeline_tag for cls, _, _ in _BUILDERS.values()}
    return tags.get(family, Task.pipeline_tag)


def describe_tasks() -> dict[str, str]:
    """Task name → one-line description (for `bertkit finetune --help`)."""
    return {name: text for name, (_, _, text) in _BUILDERS.items()}


__all__ = ["get_task", "describe_tasks", "TASK_NAMES", "Task", "ClassificationTask", "RegressionTask",
           "TaggingTask", "QATask", "ExampleList", "FeatureList", "PredictionList", "ReadReport",
           "TextExample", "TaggedExample", "QAExample", "read_table", "read_jsonl", "read_conll",
           "read_kmou", "read_squad", "train_valid_split", "CONLL2003_LABELS", "KO_NER_LABELS", "NLI_LABELS",
           "did_you_mean", "read_file_to_classify", "pipeline_tag_of"]
