"""SQuAD 2.0-style fine-tuning (unanswerable questions) on KorQuAD, for a CPU budget.

There is no SQuAD 2.0 or KorQuAD 2.0 data here, so unanswerable questions are *made*:

* data: the KorQuAD 1.0 dev half (../shared/data/korquad1/KorQuAD_v1.0_dev_half_a.json);
  its articles are split by a fixed seed into train / eval (`--eval-fraction`, by article, so
  no paragraph is on both sides);
* on each side a fixed-seed share of the questions (`--impossible`, default 1/3) is moved to
  a random paragraph of *another article of the same side*: ``"is_impossible": true``,
  ``"answers": []`` — the paragraph almost surely does not answer it (a different Wikipedia
  article; not checked by hand, so a few may be answerable after all);
* both sides are written in the official SQuAD 2.0 format and read back with the ``squad2``
  task's reader, the file that `bertkit finetune --task squad2` would read.

Training: the ``squad2`` task's windows (`--max-seq-length`, `--doc-stride`; every window of
an unanswerable question, and every window of an answerable one that misses the answer,
targets [CLS]), AdamW as BERT (no decay on biases/LayerNorm, eps 1e-6, clip 1.0), linear
warm-up (10 %) and decay.  The budget `--minutes` is *CPU time of this process* for training
(`time.process_time`, so other load on a shared machine does not eat it): one timed probe
step gives the step count for the schedule, and training stops when the budget is spent.

Evaluation: a fixed-seed subset of the eval side (`--eval-questions`), predicted once; the
official evaluate-v2.0 numbers at null_score_diff_threshold 0, the threshold tuned on this
same set (best_f1_thresh, the official script's method — an optimistic figure, as in the
SQuAD 2.0 papers that tune on dev), and the numbers again at the tuned threshold.  Two
reference rows: "always the best span" (threshold +inf: how good the spans alone are) and
"always no answer" (every answer "").  Scores
come twice from the same predictions: the official v2.0 (words) and KorQuAD's character F1
with the same v2.0 rules.

Model: `--model` (default the bundled all-MiniLM-L6-v2, an *English uncased* vocabulary that
reads Hangul as jamo pieces: answers are many pieces long and the model has never seen
Korean, so HasAns is expected to be weak — this measures the machinery, not Korean QA).

    nice -n 5 python bench/bench_squad2.py                     # 10 CPU-minutes of training
    python bench/bench_squad2.py --minutes 1 --eval-questions 40   # a smoke run (figures not for reporting)

Prints a markdown table and writes bench/results/squad2.json (+ squad2.md).
"""
from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
import os
import random
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, markdown_table, set_threads  # noqa: E402

import torch  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
KORQUAD = DATA / "korquad1" / "KorQuAD_v1.0_dev_half_a.json"


# ----------------------------------------------------------------------------- data

def split_articles(articles: list[dict], eval_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Articles shuffled with `seed`; the first ⌈fraction⌉ of them are the eval side."""
    order = list(range(len(articles)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, round(eval_fraction * len(articles)))
    chosen = set(order[:n_eval])
    return ([a for i, a in enumerate(articles) if i not in chosen],
            [a for i, a in enumerate(articles) if i in chosen])


def make_unanswerable(articles: list[dict], fraction: float, seed: int) -> list[dict]:
    """A SQuAD 2.0 copy of `articles`: a `fraction` of the questions moved to a paragraph of
    another article (``is_impossible: true``, no answers); the rest ``is_impossible: false``.

    Needs at least two articles.  Deterministic for a seed.
    """
    if len(articles) < 2:
        raise ValueError("making unanswerable questions needs at least two articles")
    out = copy.deepcopy(articles)
    places = [(a, p, q) for a, art in enumerate(out) for p, par in enumerate(art["paragraphs"])
              for q in range(len(par["qas"]))]
    rng = random.Random(seed)
    moved = set(rng.sample(range(len(places)), round(fraction * len(places))))
    kept: dict[tuple[int, int], list] = {}
    arrivals: list[tuple[int, int, dict]] = []
    for k, (a, p, q) in enumerate(places):
        qa = out[a]["paragraphs"][p]["qas"][q]
        if k not in moved:
            kept.setdefault((a, p), []).append({**qa, "is_impossible": False})
            continue
        other = rng.choice([i for i in range(len(out)) if i != a])
        target = rng.randrange(len(out[other]["paragraphs"]))
        arrivals.append((other, target, {"id": f"{qa['id']}-neg", "question": qa["question"], "answers": [],
                                         "plausible_answers": [], "is_impossible": True}))
    for a, art in enumerate(out):
        for p, par in enumerate(art["paragraphs"]):
            par["qas"] = kept.get((a, p), [])
    for a, p, qa in arrivals:
        out[a]["paragraphs"][p]["qas"].append(qa)
    return out


def write_squad2(path: Path, articles: list[dict]) -> Path:
    path.write_text(json.dumps({"version": "v2.0", "data": articles}, ensure_ascii=False), encoding="utf-8")
    return path


def build_files(source: Path, out_dir: Path, eval_fraction: float, impossible: float, seed: int) -> dict:
    """train.json / eval.json in the SQuAD 2.0 format under `out_dir`."""
    articles = json.loads(source.read_text(encoding="utf-8"))["data"]
    train, valid = split_articles(articles, eval_fraction, seed)
    return {"train": write_squad2(out_dir / "train.json", make_unanswerable(train, impossible, seed)),
            "eval": write_squad2(out_dir / "eval.json", make_unanswerable(valid, impossible, seed + 1))}


# ----------------------------------------------------------------------------- training

def batch_stream(task, features, batch_size: int, seed: int):
    """Batches in the Trainer's order (a fixed-seed permutation per epoch), epoch after epoch."""
    from bertkit.training.trainer import epoch_order
    for epoch in itertools.count():
        order = epoch_order(len(features), seed, epoch)
        for s in range(0, len(order) - batch_size + 1, batch_size):
            yield task.collate([features[int(i)] for i in order[s:s + batch_size]])


def train_for_budget(model, task, features, args) -> dict:
    """AdamW + linear warm-up/decay until `args.minutes` of process CPU time are spent."""
    from bertkit.training.trainer import linear_warmup_decay, param_groups
    optimizer = torch.optim.AdamW(param_groups(model, 0.01), lr=args.lr, eps=1e-6)
    model.train()
    batches = batch_stream(task, features, args.batch_size, args.seed)
    cpu0 = time.process_time()
    probe = next(batches)
    model(**probe).loss.backward()                       # one timed step, not applied
    optimizer.zero_grad(set_to_none=True)
    step_cpu = time.process_time() - cpu0
    budget = args.minutes * 60 - step_cpu
    steps = max(1, int(budget / step_cpu))
    scheduler = linear_warmup_decay(optimizer, max(1, steps // 10), steps)
    losses, start_cpu, start_wall = [], time.process_time(), time.perf_counter()
    for step, batch in zip(range(steps), itertools.chain([probe], batches)):
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        if step % 5 == 0:
            print(f"  step {step + 1}/{steps}  loss {sum(losses[-5:]) / len(losses[-5:]):.3f}", file=sys.stderr)
        if time.process_time() - start_cpu > budget:
            break
    return {"planned_steps": steps, "steps": len(losses), "windows_seen": len(losses) * args.batch_size,
            "probe_step_cpu_s": round(step_cpu, 2), "train_cpu_s": round(time.process_time() - cpu0, 1),
            "train_wall_s": round(time.perf_counter() - start_wall, 1),
            "loss_first5": sum(losses[:5]) / len(losses[:5]), "loss_last5": sum(losses[-5:]) / len(losses[-5:])}


# ----------------------------------------------------------------------------- evaluation

SCORE_KEYS = ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1")


def evaluate(model, task, examples, tokenizer, args) -> dict:
    """Predict once; official v2.0 scores at threshold 0, the tuned threshold, and at it."""
    from bertkit.tasks import get_task
    from bertkit.tasks import metrics as M
    features = task.encode(examples, tokenizer, max_seq_length=args.max_seq_length)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    predictions = task.predict(task.run_model(model, features, batch_size=32), features, examples)
    timing = {"eval_windows": len(features), "eval_cpu_s": round(time.process_time() - cpu0, 1),
              "eval_wall_s": round(time.perf_counter() - wall0, 1)}
    references = [[a["text"] for a in ex.answers] for ex in examples]
    rows = {}
    for metric in ("squad", "korquad"):
        scorer = get_task("squad2", metric=metric)
        at_zero = scorer.metrics(predictions, examples)
        tuned = scorer.tune_threshold(predictions, examples, by="f1")
        rows[metric] = {"threshold_0": at_zero, "tuned_threshold": tuned,
                        "at_tuned": scorer.metrics(scorer.apply_threshold(predictions), examples),
                        "never_no_answer": scorer.metrics(scorer.apply_threshold(predictions, math.inf), examples),
                        "always_no_answer": M.squad_v2_scores([""] * len(examples), references, metric=metric)}
    return {**timing, "scores": rows,
            "null_predicted_at_0": sum(p["answer"] == "" for p in predictions)}


def table(scores: dict) -> str:
    lines = []
    for metric, label in (("squad", "official v2.0 (words)"), ("korquad", "KorQuAD char F1, v2.0 rules")):
        s = scores[metric]
        rows = [("threshold 0", *(s["threshold_0"][k] for k in SCORE_KEYS)),
                (f"tuned {s['tuned_threshold']:.3f}", *(s["at_tuned"][k] for k in SCORE_KEYS)),
                ("always the best span", *(s["never_no_answer"][k] for k in SCORE_KEYS)),
                ("always no answer", *(s["always_no_answer"].get(k, 0.0) for k in SCORE_KEYS))]
        lines.append(f"**{label}** — best_exact {s['threshold_0']['best_exact']:.2f} "
                     f"(thresh {s['threshold_0']['best_exact_thresh']:.3f}), best_f1 "
                     f"{s['threshold_0']['best_f1']:.2f} (thresh {s['threshold_0']['best_f1_thresh']:.3f})\n")
        lines.append(markdown_table(["", "EM", "F1", "HasAns EM", "HasAns F1", "NoAns EM", "NoAns F1"], rows))
        lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main

def parse_args(argv=None):
    from bertkit.modeling.checkpoint import find_minilm
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="checkpoint directory (default: the bundled MiniLM)")
    p.add_argument("--data", default=str(KORQUAD))
    p.add_argument("--minutes", type=float, default=10.0, help="training budget, CPU minutes of this process")
    p.add_argument("--impossible", type=float, default=1 / 3, help="share of questions made unanswerable")
    p.add_argument("--eval-fraction", type=float, default=0.2, help="share of articles for evaluation")
    p.add_argument("--eval-questions", type=int, default=150, help="eval questions scored (fixed-seed subset)")
    p.add_argument("--max-seq-length", type=int, default=256)
    p.add_argument("--doc-stride", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", default=str(RESULTS / "squad2.json"))
    args = p.parse_args(argv)
    args.model = args.model or str(find_minilm())
    return args


def run(args) -> dict:
    from bertkit import BertForQuestionAnswering, BertTokenizer
    from bertkit.tasks import get_task
    from bertkit.training.finetune import subsample
    set_threads(args.threads)
    torch.manual_seed(args.seed)
    task = get_task("squad2", doc_stride=args.doc_stride, max_seq_length=args.max_seq_length)
    with tempfile.TemporaryDirectory() as tmp:
        files = build_files(Path(args.data), Path(tmp), args.eval_fraction, args.impossible, args.seed)
        train, valid = task.read(files["train"]), task.read(files["eval"])
    valid = subsample(valid, args.eval_questions, args.seed + 1)
    tokenizer = BertTokenizer.from_pretrained(args.model)
    task.pad_token_id = tokenizer.pad_token_id
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)          # "qa_outputs newly initialized"
        model = BertForQuestionAnswering.from_pretrained(args.model, **task.config_overrides())
    features = task.encode(train, tokenizer, max_seq_length=args.max_seq_length, training=True)
    print(features.report.summary(), file=sys.stderr)
    load_start = os.getloadavg()
    training = train_for_budget(model, task, features, args)
    result = {"model": args.model, "settings": {k: v for k, v in vars(args).items() if k != "out"},
              "train_questions": len(train), "train_impossible": sum(ex.is_impossible for ex in train),
              "train_windows": len(features), "eval_questions": len(valid),
              "eval_impossible": sum(ex.is_impossible for ex in valid), "training": training,
              **evaluate(model, task, valid, tokenizer, args),
              "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                          "loadavg_start": load_start, "loadavg_end": os.getloadavg()},
              "process_cpu_s": round(time.process_time(), 1)}
    return result


def main(argv=None) -> dict:
    args = parse_args(argv)
    result = run(args)
    text = (f"squad2 on KorQuAD made unanswerable: {result['train_questions']} train questions "
            f"({result['train_impossible']} unanswerable, {result['train_windows']} windows), "
            f"{result['training']['steps']} steps × {args.batch_size} in {result['training']['train_cpu_s']} CPU s; "
            f"eval {result['eval_questions']} questions ({result['eval_impossible']} unanswerable)\n\n"
            + table(result["scores"]))
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    out.with_suffix(".md").write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
