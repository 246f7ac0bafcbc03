"""Frozen features vs full fine-tuning on the same split: score and time.

The lecture notes describe two ways to use BERT for a task: fine-tune every weight, or
keep BERT frozen and train a small classifier on its features.  Three contestants, same
model (MiniLM by default), same training subset, same carved validation split:

    full         bertkit finetune                      (every weight trained, AdamW)
    frozen head  bertkit finetune --freeze-encoder     (BERT frozen, the usual head trained)
    probe        bertkit.pipelines.linear_probe        (mean-pooled vectors + logistic regression)

    python bench/bench_frozen.py --task sst2 --train-examples 4000 --eval-examples 1000
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time

from _common import DATA, set_threads

from bertkit.pipelines.linear_probe import LinearProbe
from bertkit.tasks import get_task
from bertkit.training.finetune import FinetuneSettings, FinetuneTraining, read_splits, run_finetune

FILES = {"sst2": "glue/SST-2/train.tsv", "nsmc": "nsmc/ratings_train.txt"}


def finetune(args, out: str, freeze: bool) -> dict:
    settings = FinetuneSettings(task=args.task, model=args.model, train=str(DATA / FILES[args.task]), out=out,
                                max_seq_length=args.max_seq_length, max_train_examples=args.train_examples,
                                max_eval_examples=args.eval_examples, freeze_encoder=freeze,
                                training=FinetuneTraining(epochs=args.epochs, batch_size=32, patience=0,
                                                          learning_rate=args.head_lr if freeze else args.lr,
                                                          seed=args.seed, progress=False))
    t0 = time.perf_counter()
    result = run_finetune(settings)
    return {"accuracy": result["best"]["accuracy"], "seconds": round(time.perf_counter() - t0, 1)}


def probe(args) -> dict:
    settings = FinetuneSettings(task=args.task, model=args.model, train=str(DATA / FILES[args.task]), out="-",
                                max_train_examples=args.train_examples, max_eval_examples=args.eval_examples,
                                training=FinetuneTraining(seed=args.seed, progress=False))
    task = get_task(args.task)
    train, valid, _ = read_splits(task, settings)
    t0 = time.perf_counter()
    model = LinearProbe(model=args.model, device="cpu", max_length=args.max_seq_length)
    model.fit([ex.text for ex in train], [ex.label for ex in train])
    accuracy = model.score([ex.text for ex in valid], [ex.label for ex in valid])
    return {"accuracy": accuracy, "seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=sorted(FILES), default="sst2")
    p.add_argument("--model", default="minilm")
    p.add_argument("--train-examples", type=int, default=4000)
    p.add_argument("--eval-examples", type=int, default=1000)
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--head-lr", type=float, default=2e-3, help="learning rate of the head on a frozen encoder")
    p.add_argument("--max-seq-length", type=int, default=64)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    set_threads(args.threads)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        rows["full fine-tuning"] = finetune(args, f"{tmp}/full", freeze=False)
        rows["frozen encoder + head (--freeze-encoder)"] = finetune(args, f"{tmp}/frozen", freeze=True)
    rows["frozen features + logistic regression (LinearProbe)"] = probe(args)
    print(json.dumps({"task": args.task, "model": args.model, "train": args.train_examples,
                      "eval": args.eval_examples, "epochs": args.epochs, "rows": rows}, indent=2))
    print(f"\n| {args.task}, {args.model}, {args.train_examples} train / {args.eval_examples} eval | accuracy | "
          "seconds | vs full |\n|---|---|---|---|")
    full = rows["full fine-tuning"]["seconds"]
    for name, r in rows.items():
        print(f"| {name} | {r['accuracy']:.3f} | {r['seconds']:.0f} | {full / max(r['seconds'], 1e-9):.1f}× faster |")


if __name__ == "__main__":
    main()
