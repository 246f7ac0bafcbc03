"""Frequency vs likelihood WordPiece, carried through to a task: same pretraining budget, NSMC accuracy.

bench_vocab_algorithms.py compares the two vocabs by how they cut text.  This goes one step
further, as the lecture notes' comparison asks: for each algorithm, train the vocab on Korean
reviews, pretrain the same small BERT with it for the same number of steps (MLM, packed
rows of reviews), fine-tune on the same NSMC subset, and report held-out MLM accuracy and
NSMC accuracy beside the vocab's tokens per word.

    python bench/bench_vocab_pretrain.py [--size tiny] [--steps 600] [--vocab-size 8000]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _common import DATA, set_threads

from bertkit.tasks import get_task
from bertkit.text.coverage import vocab_coverage
from bertkit.text.vocab import train_vocab
from bertkit.training.finetune import FinetuneSettings, FinetuneTraining, read_splits, run_finetune
from bertkit.training.pretrain import PretrainSettings, PretrainTraining, run_pretraining

REVIEWS = DATA / "ko_corpus" / "nsmc_raw_reviews_unlabeled.txt"
NSMC = DATA / "nsmc" / "ratings_train.txt"


def one_algorithm(algorithm: str, corpus: Path, work: Path, args) -> dict:
    t0 = time.process_time()
    tok = train_vocab([corpus], vocab_size=args.vocab_size, do_lower_case=False, strip_accents=False,
                      min_frequency=args.min_frequency, algorithm=algorithm, out_dir=work / "vocab")
    vocab_cpu = time.process_time() - t0
    settings = FinetuneSettings(task="nsmc", model="-", train=str(NSMC), out="-",
                                max_train_examples=args.train_examples, max_eval_examples=args.eval_examples,
                                training=FinetuneTraining(seed=args.seed))
    _, valid, _ = read_splits(get_task("nsmc"), settings)
    coverage = vocab_coverage(tok, [ex.text for ex in valid], max_texts=2000)
    pre = run_pretraining(PretrainSettings(
        files=[str(corpus)], out_dir=str(work / "bert"), size=args.size, vocab=str(work / "vocab"),
        max_seq_length=args.max_seq_length, nsp=False, pack=True, one_doc_per_line=True, do_lower_case=False,
        strip_accents=False, training=PretrainTraining(steps=args.steps, batch_size=32, learning_rate=1e-3, save_every=0,
                                                       seed=args.seed, progress=False)))
    fine = run_finetune(FinetuneSettings(
        task="nsmc", model=pre["model_dir"], train=str(NSMC), out=str(work / "nsmc"),
        max_seq_length=args.max_seq_length, max_train_examples=args.train_examples,
        max_eval_examples=args.eval_examples,
        training=FinetuneTraining(epochs=args.epochs, learning_rate=1e-4, patience=0, seed=args.seed, progress=False)))
    return {"algorithm": algorithm, "vocab_size": tok.vocab_size, "vocab_cpu_s": round(vocab_cpu, 1),
            "pieces_per_word": coverage["pieces_per_word"], "unk_share": coverage["unk_share"],
            "single_char_share": coverage["single_char_share"], "mlm_accuracy": pre.get("mlm_accuracy"),
            "nsmc_accuracy": fine["best"]["accuracy"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="tiny")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument("--min-frequency", type=int, default=2)
    p.add_argument("--reviews", type=int, default=40000, help="reviews of the unlabelled corpus used")
    p.add_argument("--max-seq-length", type=int, default=64)
    p.add_argument("--train-examples", type=int, default=10000)
    p.add_argument("--eval-examples", type=int, default=2000)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    set_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "reviews.txt"
        lines = REVIEWS.read_text(encoding="utf-8").splitlines()[:args.reviews]
        corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
        for algorithm in ("frequency", "likelihood"):
            rows.append(one_algorithm(algorithm, corpus, Path(tmp) / algorithm, args))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n| algorithm (vocab {args.vocab_size}, min_frequency {args.min_frequency}) | pieces/word | [UNK] | "
          f"spelled out | held-out MLM acc ({args.size}, {args.steps} steps) | NSMC acc ({args.train_examples} "
          "train) |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['algorithm']} | {r['pieces_per_word']:.2f} | {r['unk_share']:.1%} | {r['single_char_share']:.1%}"
              f" | {r['mlm_accuracy']:.1%} | {r['nsmc_accuracy']:.3f} |")


if __name__ == "__main__":
    main()
