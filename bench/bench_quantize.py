"""int8 dynamic quantization on CPU: speed-up and the accuracy it costs, on real tasks.

    python bench/bench_quantize.py                       # SST-2 and STS-B (defaults below)
    python bench/bench_quantize.py --tasks sst2 conll2003 --train-examples 4000

For each task, all-MiniLM-L6-v2 (real weights) is fine-tuned with bertkit on a subsample
of the task's train file (`bertkit finetune`'s own code: validation carved from train, 10 %,
seed 42), then the carved validation set is scored and timed four ways, interleaved:

  bertkit fp32        the fine-tuned model as saved
  bertkit int8        `bertkit.modeling.quantize.quantize_dynamic_int8`: int8 weights (a scale per
                      output row), int8 activations (a scale per token), int32 accumulation
  reference fp32      transformers' head (sdpa) loaded from the same directory
  reference int8      the reference's usual route: `torch.ao.quantization.quantize_dynamic`
                      (per-tensor activation scale) applied to the transformers model

Each column: the task's metric on the validation set and the time to run the whole set
(batches of 64 padded to their longest, the task's own collate), median of --repeats.
Speed ratios are against reference fp32; the metric change is against bertkit fp32.
Results also go to bench/results/quantize.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, REPO, interleaved, markdown_table, set_threads  # noqa: E402

TASKS = {  # name -> (train file under DATA, max_length)
    "sst2": ("glue/SST-2/train.tsv", 64),
    "stsb": ("glue/STS-B/train.tsv", 64),
    "mrpc": ("glue/MRPC/train.tsv", 128),
    "conll2003": ("conll2003/train.txt", 128),
}


def finetuned(task: str, args, workdir: Path) -> Path:
    """Fine-tune MiniLM for `task` with bertkit (cached in workdir) and return the best/ dir."""
    from bertkit.modeling.checkpoint import find_minilm
    from bertkit.training.finetune import FinetuneSettings, FinetuneTraining, run_finetune
    out = workdir / f"{task}-{args.train_examples}"
    if not (out / "best" / "config.json").exists():
        train_file, max_length = TASKS[task]
        run_finetune(FinetuneSettings(
            task=task, model=str(find_minilm()), train=str(DATA / train_file), out=str(out), max_seq_length=max_length,
            max_train_examples=args.train_examples, max_eval_examples=args.eval_examples,
            training=FinetuneTraining(epochs=args.epochs, learning_rate=1e-4, progress=False)))
    return out / "best"


def validation_set(task_name: str, model_dir: Path, args):
    """(task, examples, features): the carved validation split, encoded as `bertkit eval` does."""
    from bertkit.modeling.checkpoint import find_minilm
    from bertkit.training.finetune import FinetuneSettings, load_finetuned, read_splits
    task, tokenizer, _, max_length = load_finetuned(str(model_dir))
    settings = FinetuneSettings(task=task_name, model=str(find_minilm()), train=str(DATA / TASKS[task_name][0]),
                                out="-", max_train_examples=args.train_examples, max_eval_examples=args.eval_examples)
    _, valid, _ = read_splits(task, settings)
    return task, valid, task.encode(valid, tokenizer, max_length, training=False)


def contestants(task, model_dir: Path) -> dict:
    import transformers

    import bertkit
    from bertkit.modeling.quantize import quantize_dynamic_int8
    ours = getattr(bertkit, task.model_class).from_pretrained(model_dir).eval()
    ref = getattr(transformers, task.model_class).from_pretrained(model_dir, attn_implementation="sdpa").eval()
    with warnings.catch_warnings():                       # torch.ao prints deprecation notices
        warnings.simplefilter("ignore")
        ref_int8 = torch.ao.quantization.quantize_dynamic(
            getattr(transformers, task.model_class).from_pretrained(model_dir, attn_implementation="sdpa").eval(),
            {torch.nn.Linear}, dtype=torch.qint8)
    return {"bertkit fp32": ours, "bertkit int8": quantize_dynamic_int8(ours),
            "reference fp32": ref, "reference int8": ref_int8}


def bench_task(name: str, args, workdir: Path) -> list[list]:
    model_dir = finetuned(name, args, workdir)
    task, valid, features = validation_set(name, model_dir, args)
    models = contestants(task, model_dir)
    with torch.inference_mode():
        scores = {who: task.evaluate(m, valid, features)[task.main_metric] for who, m in models.items()}
        times = interleaved({who: (lambda m=m: task.run_model(m, features)) for who, m in models.items()},
                            warmup=1, repeats=args.repeats)
    ref_s, base = times["reference fp32"]["median"], scores["bertkit fp32"]
    rows = []
    for who in models:
        s = times[who]["median"]
        rows.append([name, task.main_metric, who, f"{scores[who]:.4f}", f"{scores[who] - base:+.4f}",
                     f"{s:.2f}", f"{len(features) / s:.0f}", f"{ref_s / s:.2f}x"])
        print("  ", rows[-1], file=sys.stderr, flush=True)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["sst2", "stsb"], choices=sorted(TASKS))
    parser.add_argument("--train-examples", type=int, default=4000)
    parser.add_argument("--eval-examples", type=int, default=1000)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the fine-tuned models here (default: a temporary directory)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bertkit-bench-quantize-"))
    rows = [row for task in args.tasks for row in bench_task(task, args, workdir)]
    headers = ["task", "metric", "model", "score", "Δ vs bertkit fp32", "seconds", "examples/s",
               "speed vs reference fp32"]
    print(f"\nint8 dynamic quantization, CPU, {args.threads} threads, validation sets carved from train "
          f"({args.eval_examples} examples), MiniLM fine-tuned on {args.train_examples}:\n")
    print(markdown_table(headers, rows))
    out = REPO / "bench" / "results" / "quantize.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                               "headers": headers, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
