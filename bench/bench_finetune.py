"""Fine-tuning, side by side: bertkit vs the reference `transformers` heads (sdpa attention).

For each task both models start from the same checkpoint (the real all-MiniLM-L6-v2
weights) with the *same* freshly initialised classifier (copied from bertkit's into the
reference's), and are trained in one process, in the same loop, on the same batches:

* data: the task's reader, a validation split carved from train (`task.train_valid_split`,
  10 %, seed 42), then fixed-seed subsamples — exactly what `bertkit finetune` does
  (`bertkit.training.finetune.read_splits`), so the printed CLI command trains on the same examples;
* features: bertkit's `task.encode` and `task.collate` (padding to the longest in the batch);
* batches: the order of bertkit's `Trainer` (a permutation per epoch from (seed, epoch));
* optimisation: AdamW as BERT (no decay on biases/LayerNorm, eps 1e-6), linear warm-up
  (10 %) and decay, gradient clipping at 1.0 — the `Trainer`'s settings;
* scoring: the task's own `evaluate` (same post-processing and metric code for both).

Steps are timed interleaved (bertkit, reference, reference, bertkit, ...), so load from
other processes on a shared machine hits both alike; collation is not timed.  Each step
is split into forward, backward and optimizer (clip + AdamW + schedule) time.

    python bench/bench_finetune.py                           # all five tasks, defaults below
    python bench/bench_finetune.py --train-examples 640 --eval-examples 300   # a busy machine
    python bench/bench_finetune.py --tasks sst2 conll2003 --train-examples 8000 --epochs 3

Defaults: 2,000 training examples per task (CoNLL: sentences), 500 validation examples,
2 epochs, batch 32, lr 1e-4, max_length 64 (CoNLL-2003: 128), 1 thread.  CPU cost of the
whole default run: about 25 min of one idle core (both models together); on 2 cores shared
with other work use fewer examples (`--train-examples 640 --eval-examples 300`).
With 2 threads on a busy machine the threads mostly wait for each other (~4x slower).

Prints a markdown table (validation score and train examples/s for both, ratio) and the
`bertkit finetune ...` command that reproduces the bertkit side of each row (same data,
same hyper-parameters; dropout draws differ because the two models share one RNG here).
Results go to bench/results/finetune.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, fail_if_different, markdown_table, peak_rss_mb, set_threads  # noqa: E402

import torch  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
#: "scores within noise": the two best validation scores (accuracy, F1, Pearson or MCC, on a 0-1 scale)
#: may differ by this much — dropout draws differ, and 500 validation examples give ±0.02 of sampling noise
SCORE_TOLERANCE = 0.03

# task → (data file under ../shared/data, metric in the table, max_length, default train examples)
TASKS = {
    "sst2": ("glue/SST-2/train.tsv", "accuracy", 64, 2000),
    "cola": ("glue/CoLA/train.tsv", "mcc", 64, 2000),
    "stsb": ("glue/STS-B/train.tsv", "pearson", 64, 2000),
    "mrpc": ("glue/MRPC/train.tsv", "f1", 64, 2000),
    "conll2003": ("conll2003/train.txt", "f1", 128, 2000),
}
LABEL = {"sst2": "SST-2 accuracy", "cola": "CoLA MCC", "stsb": "STS-B Pearson", "mrpc": "MRPC F1",
         "conll2003": "CoNLL-2003 entity F1"}


# ----------------------------------------------------------------------------- setup

def settings_for(name: str, args, checkpoint: Path):
    """The `FinetuneSettings` of the bertkit side (also turned into the CLI command)."""
    from bertkit.training.finetune import FinetuneSettings, FinetuneTraining
    path, _, max_length, default_n = TASKS[name]
    n_train = args.train_examples or default_n
    return FinetuneSettings(
        task=name, model=str(checkpoint), train=str(DATA / path), out=f"runs/bench_{name}",
        eval_fraction=0.1, max_seq_length=args.max_length or max_length, max_train_examples=n_train,
        max_eval_examples=args.eval_examples,
        training=FinetuneTraining(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr, patience=0,
                                  seed=args.seed, progress=False))


def cli_command(s) -> str:
    parts = ["bertkit", "finetune", "--task", s.task, "--model", s.model, "--train", s.train, "--out", s.out,
             "--eval-fraction", s.eval_fraction, "--epochs", f"{s.epochs:g}", "--batch-size", s.batch_size,
             "--lr", f"{s.learning_rate:g}", "--max-seq-length", s.max_seq_length,
             "--max-train-examples", s.max_train_examples, "--max-eval-examples", s.max_eval_examples,
             "--patience", s.patience, "--seed", s.seed]
    return " ".join(shlex.quote(str(p)) for p in parts)


def load_data(name: str, s, tokenizer):
    """(task, train examples, valid examples, train features, valid features) as `bertkit finetune` makes them."""
    from bertkit.training.finetune import prepare_data
    task, train, valid, _ = prepare_data(s)                   # s.task == name
    task.pad_token_id = tokenizer.pad_token_id
    train_features = task.encode(train, tokenizer, s.max_seq_length, training=True)
    valid_features = task.encode(valid, tokenizer, s.max_seq_length, training=False)
    return task, train, valid, train_features, valid_features


def load_models(task, checkpoint: Path, seed: int):
    """bertkit's head and the reference's, same weights everywhere (the fresh head copied across)."""
    import transformers

    import bertkit
    transformers.logging.set_verbosity_error()               # the load report lists the fresh head: known
    transformers.utils.logging.disable_progress_bar()
    torch.manual_seed(seed)                                   # as run_finetune: same fresh head as the CLI
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = getattr(bertkit, task.model_class).from_pretrained(checkpoint, **task.config_overrides())
        reference_class = getattr(transformers, task.model_class)
        theirs = reference_class.from_pretrained(checkpoint, attn_implementation="sdpa", dtype=torch.float32,
                                                 **task.config_overrides())
    theirs.classifier.load_state_dict(ours.classifier.state_dict())
    return ours, theirs


def check_same_start(ours, theirs, task, features) -> float:
    """Max |logit difference| of the two untrained models on one real batch (eval mode)."""
    from bertkit.tasks.base import MODEL_INPUTS
    batch = task.collate(features[:16])
    inputs = {k: batch[k] for k in MODEL_INPUTS}
    ours.eval(), theirs.eval()
    with torch.no_grad():
        a, b = ours(**inputs).logits, theirs(**inputs).logits
    if a.dim() == 3:                                          # tagging: compare real tokens only
        real = batch["attention_mask"].bool()
        a, b = a[real], b[real]
    return float((a - b).abs().max())


def make_optimizer(model, lr: float, total_steps: int, warmup_ratio: float, weight_decay: float):
    """Exactly the `Trainer`'s optimizer and schedule."""
    from bertkit.training.trainer import linear_warmup_decay, param_groups
    opt = torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=(0.9, 0.999), eps=1e-6)
    return opt, linear_warmup_decay(opt, int(warmup_ratio * total_steps), total_steps)


# ----------------------------------------------------------------------------- training

class Contestant:
    """One model with its optimizer, per-phase timings and per-epoch scores."""

    def __init__(self, name: str, model, s, total_steps: int):
        self.name, self.model = name, model
        self.opt, self.sched = make_optimizer(model, s.learning_rate, total_steps, s.warmup_ratio, s.weight_decay)
        self.times = {"forward": [], "backward": [], "optimizer": []}
        self.losses: list[float] = []
        self.epochs: list[dict] = []

    def step(self, batch: dict, timed: bool) -> None:
        self.model.train()
        t0 = time.perf_counter()
        loss = self.model(**batch).loss
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.sched.step()
        self.opt.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
        self.losses.append(float(loss.detach()))
        if timed:
            for key, dt in zip(self.times, (t1 - t0, t2 - t1, t3 - t2)):
                self.times[key].append(dt)

    def seconds(self) -> float:
        return sum(sum(v) for v in self.times.values())

    def evaluate(self, task, valid, valid_features, step: int) -> None:
        self.model.eval()
        scores = task.evaluate(self.model, valid, valid_features)
        self.epochs.append({"step": step, **scores})

    def best(self, metric: str) -> dict:
        return max(self.epochs, key=lambda r: r[metric])


def padding_fraction(batches: list[dict]) -> float:
    real = sum(int(b["attention_mask"].sum()) for b in batches)
    total = sum(b["attention_mask"].numel() for b in batches)
    return 1 - real / total


def run_task(name: str, args, checkpoint: Path, tokenizer) -> dict:
    from bertkit.training.trainer import epoch_order
    s = settings_for(name, args, checkpoint)
    metric = TASKS[name][1]
    t_start = time.perf_counter()
    task, train, valid, train_features, valid_features = load_data(name, s, tokenizer)
    ours, theirs = load_models(task, checkpoint, s.seed)
    start_diff = check_same_start(ours, theirs, task, valid_features)
    steps_per_epoch = max(1, len(train_features) // s.batch_size)     # as the Trainer: last partial batch dropped
    total_steps = int(s.epochs * steps_per_epoch)
    contestants = [Contestant("bertkit", ours, s, total_steps), Contestant("reference", theirs, s, total_steps)]
    print(f"[{name}] {len(train)} train / {len(valid)} valid examples, {steps_per_epoch} steps/epoch, "
          f"{total_steps} steps; max |Δlogits| at start {start_diff:.1e}", flush=True)
    step, all_batches, examples_timed = 0, [], 0
    epoch = 0
    while step < total_steps:
        order = epoch_order(len(train_features), s.seed, epoch)
        for b in range(steps_per_epoch):
            if step >= total_steps:
                break
            batch = task.collate([train_features[int(i)] for i in order[b * s.batch_size:(b + 1) * s.batch_size]])
            all_batches.append(batch)
            timed = step >= args.untimed_steps
            examples_timed += len(batch["input_ids"]) if timed else 0
            for c in (contestants if step % 2 == 0 else contestants[::-1]):    # A B, B A, A B ...
                c.step(batch, timed)
            step += 1
            if step % steps_per_epoch == 0 or step == total_steps:
                for c in contestants:
                    c.evaluate(task, valid, valid_features, step)
                row = "  ".join(f"{c.name} {c.epochs[-1][metric]:.4f}" for c in contestants)
                print(f"[{name}] step {step}/{total_steps}: {metric} {row}  "
                      f"loss {contestants[0].losses[-1]:.3f}/{contestants[1].losses[-1]:.3f}", flush=True)
        epoch += 1
    result = {
        "task": name, "metric": metric, "train_examples": len(train), "eval_examples": len(valid),
        "train_features": len(train_features), "steps": total_steps, "timed_steps": total_steps - args.untimed_steps,
        "padding_fraction": padding_fraction(all_batches), "start_max_abs_logit_diff": start_diff,
        "settings": {k: v for k, v in vars(s).items() if k not in ("task_options", "progress")},
        "threads": torch.get_num_threads(), "cli": cli_command(s), "wall_seconds": time.perf_counter() - t_start,
    }
    for c in contestants:
        result[c.name] = {
            "examples_per_s": examples_timed / c.seconds(),
            "ms_per_step": {k: 1000 * statistics.fmean(v) for k, v in c.times.items()},
            "final": c.epochs[-1], "best": c.best(metric), "epochs": c.epochs,
            "loss_first_last": [c.losses[0], c.losses[-1]],
        }
    result["ratio"] = result["bertkit"]["examples_per_s"] / result["reference"]["examples_per_s"]
    return result


# ----------------------------------------------------------------------------- report

def print_report(results: list[dict], args) -> None:
    rows = []
    for r in results:
        a, b = r["bertkit"], r["reference"]
        rows.append([LABEL[r["task"]], f"{r['train_examples']:,}", f"{r['eval_examples']:,}",
                     f"{a['best'][r['metric']]:.4f}", f"{b['best'][r['metric']]:.4f}",
                     f"{a['final'][r['metric']]:.4f}", f"{b['final'][r['metric']]:.4f}",
                     f"{a['examples_per_s']:.1f}", f"{b['examples_per_s']:.1f}", f"{r['ratio']:.2f}x",
                     f"{100 * r['padding_fraction']:.0f}%"])
    print(f"\nfine-tuning all-MiniLM-L6-v2, same init/data/batches/optimizer; {args.epochs:g} epochs, batch "
          f"{args.batch_size}, lr {args.lr:g} (10% warm-up, linear decay), AdamW wd 0.01, clip 1.0, "
          f"seed {args.seed}, {args.threads} thread(s), torch {torch.__version__}, {os.cpu_count()} CPUs")
    print(markdown_table(["task (validation)", "train", "valid", "bertkit best", "reference best",
                          "bertkit last", "reference last", "bertkit ex/s", "reference ex/s", "ratio",
                          "padding"], rows))
    print("\nper step (ms, mean over timed steps): forward / backward / optimizer")
    prof = []
    for r in results:
        a, b = r["bertkit"]["ms_per_step"], r["reference"]["ms_per_step"]
        prof.append([r["task"], *(f"{a[k]:.0f} / {b[k]:.0f} ({b[k] / a[k]:.2f}x)" for k in a)])
    print(markdown_table(["task", "forward bertkit / reference", "backward", "optimizer"], prof))
    print("\nreproduce the bertkit side of each row:")
    for r in results:
        print(f"  {r['cli']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--train-examples", type=int, default=None,
                        help="training subsample (default per task: " +
                             ", ".join(f"{k} {v[3]}" for k, v in TASKS.items()) + ")")
    parser.add_argument("--eval-examples", type=int, default=500, help="validation subsample")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--max-length", type=int, default=None, help="default: 64 (CoNLL-2003: 128)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (on a machine shared with other work, more threads mostly wait)")
    parser.add_argument("--untimed-steps", type=int, default=2, help="first steps not timed (warm-up)")
    parser.add_argument("--out", default=str(RESULTS / "finetune.json"))
    args = parser.parse_args()
    set_threads(args.threads)
    from bertkit.modeling.checkpoint import find_minilm
    from bertkit.text.tokenizer import BertTokenizer

    checkpoint = find_minilm()
    tokenizer = BertTokenizer.from_pretrained(checkpoint)
    missing = [n for n in args.tasks if not (DATA / TASKS[n][0]).exists()]
    if missing:
        sys.exit(f"data not found for {missing} under {DATA} (set BERTKIT_DATA)")
    results = []
    for name in args.tasks:
        results.append(run_task(name, args, checkpoint, tokenizer))
        _write(results, args)                                # keep what is done if a later task fails
    print_report(results, args)
    print(f"peak RSS of this process: {peak_rss_mb():,.0f} MiB; results in {args.out}")
    fail_if_different(score_comparisons(results))


def score_comparisons(results: list[dict]) -> list[tuple[str, float, float]]:
    """(task and metric, |bertkit best − reference best|, SCORE_TOLERANCE) per task."""
    return [(f"{r['task']} best {r['metric']}", abs(r["bertkit"]["best"][r["metric"]] - r["reference"]["best"][r["metric"]]),
             SCORE_TOLERANCE) for r in results]


def _write(results: list[dict], args) -> None:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"threads": args.threads, "torch": torch.__version__, "cpus": os.cpu_count(),
            "time": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2, default=str))


if __name__ == "__main__":
    main()
