"""Fine-tuning, evaluation and prediction for the four task families.

    bertkit finetune --task sst2 --model CKPT --train train.tsv --out runs/sst2
    bertkit eval     --model runs/sst2/best --data held_out.tsv
    bertkit predict  --model runs/sst2/best "a gorgeous, witty film"

`finetune` reads the data with the task's reader (counting anything it had to
skip), carves a validation split from train when no --eval file is given (QA:
by article), puts a fresh head on the checkpoint, trains with the same loop as
pretraining, evaluates after every epoch, keeps the best checkpoint in
`out/best` (model + tokenizer + `task.json`) and stops early when the main
metric has not improved for `patience` epochs.  `out/results.json` records the
settings, every epoch's metrics, the best score, and examples/s.
"""
from __future__ import annotations

import dataclasses
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

TASK_FILE = "task.json"
COLUMN_OPTIONS = {"text_column": "text_column", "pair_column": "text_pair_column",   # CLI dest → task option
                  "label_column": "label_column"}


@dataclass
class FinetuneSettings:
    task: str
    model: str
    train: str
    out: str
    eval: str | None = None
    eval_fraction: float = 0.1
    epochs: float = 3.0
    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_length: int = 128
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    patience: int = 2
    seed: int = 42
    bf16: bool = False
    progress: bool = True
    task_options: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- data

def load_task(name: str, options: dict | None = None):
    from bertkit.tasks import get_task
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


def read_splits(task, s: FinetuneSettings):
    train = task.read(s.train)
    reports = {"train": train.report.summary()}
    if s.eval:
        valid = task.read(s.eval)
        reports["eval"] = valid.report.summary()
    else:
        train, valid = task.train_valid_split(train, s.eval_fraction, s.seed)
    train = subsample(train, s.max_train_examples, s.seed)
    valid = subsample(valid, s.max_eval_examples, s.seed + 1)
    if not len(train):
        raise ValueError(f"no usable training examples in {s.train}: {reports['train']}")
    if not len(valid):
        raise ValueError("the validation split is empty: give --eval FILE or a larger --eval-fraction")
    return train, valid, reports


# ----------------------------------------------------------------------------- fine-tune

def run_finetune(s: FinetuneSettings) -> dict:
    import bertkit
    from bertkit.text.tokenizer import BertTokenizer
    from bertkit.training.trainer import TrainConfig, Trainer

    torch.manual_seed(s.seed)
    out = Path(s.out)
    out.mkdir(parents=True, exist_ok=True)
    task = load_task(s.task, s.task_options)
    tokenizer = BertTokenizer.from_pretrained(s.model)
    task.pad_token_id = tokenizer.pad_token_id
    train, valid, reports = read_splits(task, s)
    task.fit_labels(train)
    model = getattr(bertkit, task.model_class).from_pretrained(s.model, **task.config_overrides())
    task.check_config(model.config)
    max_length = s.max_length if task.family != "qa" or s.max_length != 128 else 384
    train_features = task.encode(train, tokenizer, max_length=max_length, training=True)
    valid_features = task.encode(valid, tokenizer, max_length=max_length, training=False)
    reports.update(train_encode=train_features.report.summary(), eval_encode=valid_features.report.summary())

    steps_per_epoch = max(1, len(train_features) // s.batch_size)
    keeper = BestKeeper(out / "best", task, tokenizer, s, patience=s.patience)
    config = TrainConfig(output_dir=str(out / "run"), learning_rate=s.learning_rate, warmup_ratio=s.warmup_ratio,
                         weight_decay=s.weight_decay, max_steps=int(s.epochs * steps_per_epoch),
                         batch_size=s.batch_size, seed=s.seed, bf16=s.bf16, save_every=0, keep_checkpoints=1,
                         log_every=max(1, min(50, steps_per_epoch // 4)), progress=s.progress,
                         eval_at_start=False)
    trainer = Trainer(model, train_features, task.collate, config, eval_every=steps_per_epoch)
    trainer.evaluate = lambda m: keeper.evaluate(m, valid, valid_features, trainer)
    t0 = time.perf_counter()
    state = trainer.train()
    seconds = time.perf_counter() - t0
    result = {
        "task": task.name, "model": s.model, "settings": dataclasses.asdict(s),
        "train_examples": len(train), "eval_examples": len(valid), "train_features": len(train_features),
        "steps": state.step, "train_seconds": round(seconds, 2),
        "train_examples_per_s": round(state.step * s.batch_size / seconds, 2),
        "epochs": keeper.history, "best": keeper.best, "best_dir": str(out / "best"), "reports": reports,
    }
    (out / "results.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    _print_reports(reports)
    return result


class BestKeeper:
    """Evaluates after each epoch, saves the best model, asks the trainer to stop early."""

    def __init__(self, best_dir: Path, task, tokenizer, settings: FinetuneSettings, patience: int):
        self.best_dir, self.task, self.tokenizer, self.settings = best_dir, task, tokenizer, settings
        self.patience = patience
        self.best: dict | None = None
        self.history: list[dict] = []
        self.bad_epochs = 0

    def evaluate(self, model, examples, features, trainer) -> dict:
        scores = self.task.evaluate(model, examples, features)
        main = scores[self.task.main_metric]
        row = {"step": trainer.state.step, **scores}
        self.history.append(row)
        if self.best is None or main > self.best[self.task.main_metric]:
            self.best = row
            self.bad_epochs = 0
            save_finetuned(model, self.tokenizer, self.task, self.settings, self.best_dir)
        else:
            self.bad_epochs += 1
            if self.patience and self.bad_epochs >= self.patience:
                trainer.request_stop()
        return scores


def save_finetuned(model, tokenizer, task, settings: FinetuneSettings, out_dir: Path) -> None:
    """Model + tokenizer + task.json: everything `eval`, `predict` and the pipelines need."""
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    options = {k: v for k, v in settings.task_options.items()}
    info = {"task": task.name, "family": task.family, "options": options, "max_length": settings.max_length}
    (Path(out_dir) / TASK_FILE).write_text(json.dumps(info, indent=2))


def _print_reports(reports: dict) -> None:
    for name, text in reports.items():
        if text and "nothing" not in text.lower():
            print(f"[{name}] {text}", file=sys.stderr)


# ----------------------------------------------------------------------------- eval / predict

def load_finetuned(model_dir: str, task_name: str | None = None):
    """(task, tokenizer, model, max_length) of a fine-tuned directory."""
    import bertkit
    from bertkit.text.tokenizer import BertTokenizer

    path = Path(model_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"model directory not found: {path} (give the best/ directory written by finetune)")
    info = json.loads((path / TASK_FILE).read_text()) if (path / TASK_FILE).exists() else {}
    name = task_name or info.get("task")
    if not name:
        raise ValueError(f"{path} has no {TASK_FILE}: pass --task to say what the model was fine-tuned for")
    task = load_task(name, info.get("options"))
    if info.get("family") and info["family"] != task.family:
        raise ValueError(f"task/model mismatch: {path} was fine-tuned for {info.get('task')!r} ({info['family']}) "
                         f"but task {task.name!r} is {task.family}; leave out --task, or use a model "
                         f"fine-tuned for {task.name!r}.")
    model = getattr(bertkit, task.model_class).from_pretrained(path)
    task.use_labels_from_config(model.config)
    tokenizer = BertTokenizer.from_pretrained(path)
    task.pad_token_id = tokenizer.pad_token_id
    return task, tokenizer, model.eval(), info.get("max_length", 384 if task.family == "qa" else 128)


def evaluate_file(model_dir: str, data: str, task_name: str | None = None, max_length: int | None = None) -> dict:
    task, tokenizer, model, default_length = load_finetuned(model_dir, task_name)
    examples = task.read(data)
    features = task.encode(examples, tokenizer, max_length=max_length or default_length, training=False)
    scores = task.evaluate(model, examples, features)
    skipped = examples.report.num_skipped()
    return {**scores, "examples": len(examples), "skipped_rows": skipped}


def predict_texts(model_dir: str, inputs: list[str], file: str | None = None) -> list[dict]:
    task, tokenizer, model, max_length = load_finetuned(model_dir)
    if file:
        examples = task.read(file)
    elif task.family == "qa":
        examples = _qa_examples(inputs)
    elif task.family == "tagging":
        examples = task.examples_from_texts(inputs)
    else:
        pairs = inputs[1::2] if getattr(task, "columns", {}).get("text_pair_column") else None
        texts = inputs[0::2] if pairs else inputs
        examples = task.examples_from_texts(texts, pairs)
    if not len(examples):
        raise ValueError("nothing to predict: give texts on the command line or --file FILE")
    features = task.encode(examples, tokenizer, max_length=max_length, training=False)
    predictions = task.predict(task.run_model(model, features), features, examples)
    return [task.format_prediction(p, ex) for p, ex in zip(predictions, examples)]


def _qa_examples(inputs: list[str]):
    from bertkit.tasks import ExampleList, QAExample
    if len(inputs) % 2:
        raise ValueError("QA prediction takes pairs: 'question' 'context' ['question' 'context' ...]")
    return ExampleList(QAExample(id=str(i), question=q, context=c)
                       for i, (q, c) in enumerate(zip(inputs[0::2], inputs[1::2])))


# ----------------------------------------------------------------------------- CLI adapters

def finetune_from_args(args) -> dict:
    options = {option: getattr(args, arg) for arg, option in COLUMN_OPTIONS.items()
               if getattr(args, arg, None) is not None}
    settings = FinetuneSettings(
        task=args.task, model=args.model, train=args.train, out=args.out, eval=args.eval,
        eval_fraction=args.eval_fraction, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.lr, max_length=args.max_length, max_train_examples=args.max_train_examples,
        max_eval_examples=args.max_eval_examples, patience=args.patience, seed=args.seed, task_options=options)
    result = run_finetune(settings)
    best = result["best"] or {}
    print(f"best: {json.dumps(best)} → {result['best_dir']}", file=sys.stderr)
    return result


def evaluate_from_args(args) -> dict:
    return evaluate_file(args.model, args.data, args.task, args.max_length)


def predict_from_args(args) -> list[dict]:
    return predict_texts(args.model, args.inputs, args.file)
