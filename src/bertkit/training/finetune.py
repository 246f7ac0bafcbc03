"""Fine-tuning, evaluation and prediction for the four task families.

    bertkit finetune --task sst2 --model CKPT --train train.tsv --out runs/sst2
    bertkit eval     --model runs/sst2/best --data held_out.tsv
    bertkit predict  --model runs/sst2/best "a gorgeous, witty film"

`finetune` reads the data with the task's reader (counting anything it had to
skip), carves a validation split from train when no --eval file is given (QA:
by article), puts a fresh head on the checkpoint, trains with the same loop as
pretraining, evaluates after every epoch; the Trainer keeps the best model in
`out/best` (model + tokenizer + `task.json`, through `KeepBest`) and stops early
when the main metric has not improved for `patience` evaluations.  `out/results.json` records the
settings, every epoch's metrics, the best score, and examples/s.
"""
from __future__ import annotations

import dataclasses
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from bertkit.common.defaults import (DOC_STRIDE, MAX_ANSWER_LENGTH, MAX_QUERY_LENGTH, MAX_SEQ_LENGTH, N_BEST_SIZE,
                                     QA_MAX_SEQ_LENGTH)
from bertkit.common.devices import resolve_device
from bertkit.common.errors import InputError, NotFoundError
from bertkit.common.files import atomic_write_text, removed_on_failure
from bertkit.common.settings import option
from bertkit.data.named import EVAL_SPLITS, open_split
from bertkit.modeling.onnx_runtime import onnx_model
from bertkit.modeling.pretrained import TASK_FILE, open_checkpoint
from bertkit.tasks import TASK_NAMES, get_task
from bertkit.text.coverage import check_coverage
from bertkit.training.distributed import process_info
from bertkit.training.progress import TRAINING_COLUMNS
from bertkit.training.settings import nested, with_defaults
from bertkit.training.trainer import KeepBest, Trainer

# The training settings of fine-tuning: TrainingSettings' fields with fine-tuning's defaults
# (3 epochs at 5e-5, an evaluation every epoch, early stopping, resume checkpoints removed at the end).
FinetuneTraining = with_defaults("FinetuneTraining", epochs=3.0, learning_rate=5e-5, patience=2, max_checkpoints=1,
                                 keep_checkpoints=False, eval_at_start=False)

COLUMN_OPTIONS = ("text_column", "text_pair_column", "label_column", "tag_column", "label_names",  # → task options
                  "doc_stride", "max_query_length", "max_answer_length", "n_best_size", "null_score_diff_threshold",
                  "version_2_with_negative")


@dataclass
class FinetuneSettings:
    """Everything `bertkit finetune` takes; each field is also its command-line option."""

    task: str = option(None, "task: " + ", ".join(TASK_NAMES), required=True)
    model: str = option("minilm", "the pretrained model: a folder, 'minilm' (bundled) or a Hub name "
                        "(bert-base-uncased, klue/bert-base)")
    train: str | None = option(None, "training file: .tsv .csv .json .jsonl .parquet, CoNLL, SQuAD JSON (also "
                               "compressed: .gz .bz2 .xz .zst); or --dataset")
    out: str = option(None, "output folder: best/ (model + tokenizer + task.json), results.json", required=True)
    eval: str | None = option(None, "evaluation file (default: carve --eval-fraction of the training file)")
    eval_fraction: float = option(0.1, "share of the training file held out for evaluation when no --eval")
    max_seq_length: int | None = option(None, f"tokens per example, [CLS] and [SEP] included; longer texts are "
                                        f"cut (default: {MAX_SEQ_LENGTH}; QA windows {QA_MAX_SEQ_LENGTH})",
                                        aliases=("--max-length",))
    max_train_examples: int | None = option(None, "use a fixed-seed random subset of the training set")
    max_eval_examples: int | None = option(None, "use a fixed-seed random subset of the evaluation set")
    freeze_encoder: bool = option(False, "train only the task head on frozen BERT features (the notes' "
                                  "feature-based approach)")
    text_column: str | None = option(None, "your data: the column holding the text")
    text_pair_column: str | None = option(None, "your data: the column holding the second text of a pair",
                                          aliases=("--pair-column",))
    label_column: str | None = option(None, "your data: the column holding the label")
    tag_column: int | None = option(None, "tagging: the column (0-based, -1 = last) holding the tag; "
                                    "CoNLL-2003: 1 = part of speech, 3 = named entity")
    label_names: str | None = option(None, "names for the label values, e.g. 0=negative,1=positive (or "
                                     "negative,positive in label order): saved in the model, shown by "
                                     "predict/classify/serve", metavar="VALUE=NAME,...")
    doc_stride: int | None = option(None, f"QA: tokens between the starts of a long context's windows "
                                    f"(default: {DOC_STRIDE})")
    max_query_length: int | None = option(None, f"QA: questions are cut to this many tokens (default: {MAX_QUERY_LENGTH})")
    max_answer_length: int | None = option(None, f"QA: longest answer considered, in tokens (default: "
                                           f"{MAX_ANSWER_LENGTH})")
    n_best_size: int | None = option(None, f"QA: start/end candidates per window (default: {N_BEST_SIZE})")
    version_2_with_negative: bool | None = option(None, "--task qa: the data has unanswerable questions "
                                                  "(SQuAD 2.0; --task squad2 sets it)")
    null_score_diff_threshold: float | None = option(None, "SQuAD 2.0: answer '' when null score - best span > "
                                                     "this (default: tuned on the evaluation set)")
    training: FinetuneTraining = nested(FinetuneTraining)
    task_options: dict = option(dict, "extra task options (library only)", cli=False)
    dataset: str | None = option(None, "train on a data set by name instead of --train: NAME or NAME:CONFIG (nsmc, "
                                 "glue:sst2, klue:ynat) through the datasets library (pip install 'bertkit[datasets]'),"
                                 " or a local folder (save_to_disk, or data files); columns as for files",
                                 metavar="NAME[:CONFIG]")
    dataset_split: str = option("train", "--dataset: the split to train on")
    dataset_eval_split: str | None = option(None, "--dataset: the split to evaluate on (default: validation, else "
                                            "test, else --eval-fraction of the training split)")

    def __post_init__(self) -> None:
        if not self.task or not (self.train or self.dataset) or not self.out:
            raise InputError("fine-tuning needs --task, training data (--train FILE or --dataset NAME[:CONFIG]) "
                             "and --out FOLDER")
        if self.train and self.dataset:
            raise InputError("give the training data once: --train FILE or --dataset NAME, not both")

    def all_task_options(self) -> dict:
        """Task options from the column flags plus `task_options`."""
        options = {k: getattr(self, k) for k in COLUMN_OPTIONS if getattr(self, k) is not None}
        return {**options, **self.task_options}


# ----------------------------------------------------------------------------- data

def load_task(name: str, options: dict | None = None):
    return get_task(name, **(options or {}))


def subsample(examples, limit: int | None, seed: int):
    """A fixed-seed random subset of `limit` examples (all of them when limit is None)."""
    if not limit or limit >= len(examples):
        return examples
    picked = sorted(random.Random(seed).sample(range(len(examples)), limit))
    out = type(examples)([examples[i] for i in picked])
    if hasattr(examples, "report"):
        out.report = examples.report
    return out


def training_source(s: FinetuneSettings):
    """What the task reads for training: the --train file, or the --dataset split."""
    return s.train or open_split(s.dataset, s.dataset_split)


def evaluation_source(s: FinetuneSettings):
    """The --eval file; with --dataset, its evaluation split (validation, else test); None: carve one."""
    if s.eval or not s.dataset:
        return s.eval
    fallbacks = tuple(name for name in EVAL_SPLITS if name != s.dataset_split)
    return open_split(s.dataset, s.dataset_eval_split, fallbacks=fallbacks)


def read_splits(task, s: FinetuneSettings):
    """(train, valid, reports): the training file read, validation read or carved from it, subsets."""
    train = task.read(training_source(s))
    reports = {"train": train.report.summary()}
    evaluation = evaluation_source(s)
    if evaluation is not None:
        valid = task.read(evaluation)
        reports["eval"] = valid.report.summary()
    else:
        train, valid = task.train_valid_split(train, s.eval_fraction, s.training.seed)
    train = subsample(train, s.max_train_examples, s.training.seed)
    valid = subsample(valid, s.max_eval_examples, s.training.seed + 1)
    if not len(train):
        raise InputError(f"no usable training examples in {s.train or s.dataset}: {reports['train']}")
    if not len(valid):
        raise InputError("the validation split is empty: give --eval FILE or a larger --eval-fraction")
    return train, valid, reports


def prepare_data(s: FinetuneSettings):
    """(task, train, valid, reports) with the labels checked, all before any model is loaded.

    A task name with a typo, a missing or malformed file, training labels the task does
    not have, or --label-names that do not fit the labels: each is an error here, in a
    second, not after a model has been fetched and loaded.
    """
    task = load_task(s.task, s.all_task_options())
    train, valid, reports = read_splits(task, s)
    task.fit_labels(train if "eval" in reports else [*train, *valid])     # a rare label may fall in the carved split
    task.check_training_labels(train)
    task.check_label_names()
    return task, train, valid, reports


# ----------------------------------------------------------------------------- fine-tune

def say(s: FinetuneSettings, text: str) -> None:
    """A message for the user (rank 0 only under torchrun)."""
    if s.training.progress and process_info().is_main:
        print(text, file=sys.stderr, flush=True)


def prepare_model(s: FinetuneSettings, task, ckpt):
    """The pretrained encoder + a fresh task head (said once, plainly); frozen encoder if asked."""
    model = ckpt.model(task.model_class, new_head_warning=False, **task.config_overrides())
    task.check_config(model.config)
    new = model.loading_info["missing_keys"]
    if new:
        say(s, f"new {task.family} head on {s.model} ({', '.join(new)}), initialised at random: training it now")
    if s.freeze_encoder:
        for p in model.bert.parameters():
            p.requires_grad_(False)
        say(s, "encoder frozen: only the task head is trained (feature-based fine-tuning)")
    return model.train()


def run_finetune(s: FinetuneSettings) -> dict:
    """Fine-tune `s.model` on `s.task`; the Trainer keeps the best model in out/best; writes out/results.json.
    A run that fails takes back the folders it made (`removed_on_failure`)."""
    with removed_on_failure(s.out, enabled=process_info().is_main):
        return _run_finetune(s)


def _run_finetune(s: FinetuneSettings) -> dict:
    torch.manual_seed(s.training.seed)
    task, train, valid, reports = prepare_data(s)
    out = Path(s.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = open_checkpoint(s.model)
    tokenizer = ckpt.tokenizer()
    task.use_tokenizer(tokenizer)
    check_coverage(tokenizer, task.texts_of(train), where=f"finetune {s.model} on {s.train or s.dataset}")
    model = prepare_model(s, task, ckpt)
    max_seq_length = s.max_seq_length or task.default_max_seq_length
    train_features = task.encode(train, tokenizer, max_seq_length, training=True)    # (QA: max_length)
    valid_features = task.encode(valid, tokenizer, max_seq_length, training=False)
    reports.update(train_encode=train_features.report.summary(), eval_encode=valid_features.report.summary())
    _print_reports(reports)
    trainer = make_trainer(s, task, model, tokenizer, train_features, (valid, valid_features), max_seq_length)
    if s.training.resume and trainer.resume():
        say(s, f"resuming from step {trainer.state.step} (of {trainer.total_steps}) in {out / 'run'}")
    t0 = time.perf_counter()
    state = trainer.train()
    seconds = time.perf_counter() - t0
    trainer.remove_checkpoints()           # the best model is in best/; resume checkpoints go unless kept
    result = {
        "task": task.name, "model": s.model, "settings": dataclasses.asdict(s),
        "train_examples": len(train), "eval_examples": len(valid), "train_features": len(train_features),
        "steps": state.step, "train_seconds": round(seconds, 2),
        "train_examples_per_s": round(state.step * s.training.batch_size * trainer.dist.world / seconds, 2),
        "epochs": [scores_of(row) for row in state.history if task.main_metric in row],
        "best": scores_of(state.best) if state.best else None, "best_dir": str(out / "best"), "reports": reports,
    }
    if trainer.dist.is_main:
        atomic_write_text(out / "results.json", json.dumps(result, indent=2, ensure_ascii=False))
    best = result["best"]
    say(s, f"best {task.main_metric} {best[task.main_metric]:.4f} at step {best['step']} → "
        f"{out / 'best'}  (try: bertkit predict --model {out / 'best'} ...)" if best else "no evaluation ran")
    return result


def make_trainer(s: FinetuneSettings, task, model, tokenizer, train_features, valid, max_seq_length: int) -> Trainer:
    """The Trainer of a fine-tuning run: evaluates every epoch (rank 0) and keeps the best model in out/best."""
    out = Path(s.out)
    examples, features = valid

    def evaluate(m) -> dict:
        scores = task.evaluate(m, examples, features)
        shown = "  ".join(f"{k} {v:.4f}" for k, v in scores.items() if isinstance(v, float))
        say(s, f"evaluation at step {trainer.state.step}: {shown}")
        return scores

    def save_best(m, row: dict) -> None:
        say(s, f"      best so far: saved to {out / 'best'}")
        save_finetuned(m, tokenizer, task, s, out / "best", max_seq_length, row)

    keep_best = KeepBest(score=lambda row: row["best_f1" if "best_f1" in row else task.main_metric], save=save_best)
    trainer = Trainer(model, train_features, task.collate, s.training, out / "run", evaluate=evaluate,
                      keep_best=keep_best)
    trainer.eval_every = s.training.eval_every or trainer.micro_batches_per_epoch()   # global batches: every epoch
    return trainer


def scores_of(row: dict) -> dict:
    """An evaluation row of the training log without the training columns: step + the task's scores."""
    return {k: v for k, v in row.items() if k not in TRAINING_COLUMNS}


def save_finetuned(model, tokenizer, task, settings: FinetuneSettings, out_dir: Path, max_seq_length: int,
                   scores: dict | None = None) -> None:
    """Model + tokenizer + task.json: everything `eval`, `predict` and the pipelines need.

    SQuAD 2.0: the null-answer threshold tuned on the evaluation set (best_f1_thresh) is
    saved with the model, so `eval`, `predict` and the pipeline use it."""
    model.save_pretrained(out_dir, tokenizer=tokenizer)
    options = settings.all_task_options()
    if scores and "best_f1_thresh" in scores and settings.null_score_diff_threshold is None:
        options["null_score_diff_threshold"] = scores["best_f1_thresh"]
    info = {"task": task.name, "family": task.family, "options": options, "max_seq_length": max_seq_length}
    if isinstance(task.labels, list):        # the values files write; the names are in config.json
        info.update(labels=task.labels, names=task.names)
    atomic_write_text(Path(out_dir) / TASK_FILE, json.dumps(info, indent=2))


def _print_reports(reports: dict) -> None:
    """What reading and encoding found, each report as its own summary (it names its file)."""
    for text in reports.values():
        if text:
            print(text, file=sys.stderr)


# ----------------------------------------------------------------------------- eval / predict

def load_finetuned(model_dir: str, task_name: str | None = None, device=None):
    """(task, tokenizer, model, max_seq_length) of a fine-tuned folder (or a Hub name)."""
    ckpt = open_checkpoint(model_dir)
    info = ckpt.task or {}
    name = task_name or info.get("task")
    if not name:
        raise InputError(f"{model_dir} has no {TASK_FILE}: pass --task to say what the model was fine-tuned for")
    task = load_task(name, info.get("options"))
    if info.get("family") and info["family"] != task.family:
        raise InputError(f"task/model mismatch: {model_dir} was fine-tuned for {info.get('task')!r} "
                         f"({info['family']}) but task {task.name!r} is {task.family}; leave out --task, or use a "
                         f"model fine-tuned for {task.name!r}.")
    model = ckpt.model(task.model_class)
    saved_labels = {"labels": info["labels"]} if info.get("labels") else {}     # values; names: config
    task.use_labels_from_config(model.config, **saved_labels)
    tokenizer = ckpt.tokenizer()
    task.use_tokenizer(tokenizer)
    device = resolve_device(device)
    return task, tokenizer, model.to(device).eval(), ckpt.max_seq_length or task.default_max_seq_length


def evaluate_file(model_dir: str, data: str, task_name: str | None = None, max_seq_length: int | None = None,
                  device=None, quiet: bool = False) -> dict:
    """Scores of a fine-tuned model on a labelled file (the task's metrics).

    What reading and encoding left out or cut is printed on stderr (unless `quiet`).
    """
    task, tokenizer, model, default_length = load_finetuned(model_dir, task_name, device)
    examples = task.read(data)
    check_coverage(tokenizer, task.texts_of(examples), where=f"eval {model_dir} on {data}")
    features = task.encode(examples, tokenizer, max_seq_length or default_length, training=False)
    if not quiet:
        _print_news(examples.report, features.report)
    scores = task.evaluate(model, examples, features)
    skipped = examples.report.num_skipped()
    return {**scores, "examples": len(examples), "skipped_rows": skipped}


def predict_texts(model_dir: str, inputs: list[str], file: str | None = None, device=None,
                  quiet: bool = False, backend: str = "torch", quantize: str | None = None) -> list[dict]:
    """Predictions of a fine-tuned model for texts (QA: question, context pairs) or a file.

    One record per input (`task.format_prediction`): label *names*, the file's line and
    its gold label when it has one.  Reading/encoding notes go to stderr (unless `quiet`).
    `backend="onnx"` runs the model on ONNX Runtime (exported once and cached, as the pipelines do).
    """
    return predict_with_task(model_dir, inputs, file, device, quiet, backend, quantize)[1]


def predict_with_task(model_dir: str, inputs: list[str], file: str | None = None, device=None,
                      quiet: bool = False, backend: str = "torch", quantize: str | None = None):
    """(task, records) of `predict_texts`: `task.format_lines(records)` is the table people see."""
    task, tokenizer, model, max_seq_length = load_finetuned(model_dir, device=device)
    if backend == "onnx":
        model = onnx_model(open_checkpoint(model_dir), type(model), quantize)
    if file:
        if not Path(file).is_file():
            raise NotFoundError(f"file not found: {file}")
        examples = task.read(file)
    else:
        examples = task.examples_from_inputs(inputs)
    if not len(examples):
        raise InputError("nothing to predict: give texts on the command line or --file FILE")
    features = task.encode(examples, tokenizer, max_seq_length, training=False)
    if not quiet:
        _print_news(examples.report, features.report)
    predictions = task.predict(task.run_model(model, features), features, examples)
    return task, [task.format_prediction(p, ex) for p, ex in zip(predictions, examples)]


def _print_news(*reports) -> None:
    """The reports that skipped or noted something, on stderr."""
    _print_reports({str(i): r.summary() for i, r in enumerate(reports) if r.has_news()})
