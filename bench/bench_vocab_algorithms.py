"""WordPiece vocab training by frequency vs by likelihood, on NSMC movie reviews (Korean).

    python bench/bench_vocab_algorithms.py [--sizes 8000,32000] [--min-frequency 2] [--out vocabs/] [--quick]

The review column of NSMC (../shared/data/nsmc/ratings_train.txt, 150k reviews) is
shuffled with a fixed seed and cut into training text and a held-out slice (10 %).
For each vocab size, `train_vocab` learns a vocab with each merge rule

    frequency    merge the most frequent pair: count(ab)                (HF `tokenizers`)
    likelihood   merge the pair of best count(ab) / (count(a)·count(b))  (original WordPiece)

with the same settings (cased, accents kept — so Hangul syllables stay whole, not
jamo — min_frequency 2 unless --min-frequency, limit_alphabet 1000, BERT's special-token layout).  Then every
held-out word (BERT's BasicTokenizer words, each occurrence counted) is cut by WordPiece
with each vocab:

    train s        wall time of train_vocab (word counting + merges), one thread
    cpu s          its CPU time (steadier than wall time on a busy machine)
    tok/word       WordPieces per word (fewer = the vocab covers the words better)
    unk %          share of words that become [UNK]
    chars %        share of words of 2+ characters cut into single characters only
    whole %        share of words that are one piece (the word itself is in the vocab)

Prints a markdown table and writes JSON + markdown to bench/results/.  `--out DIR`
also saves each vocab as DIR/<algorithm>-<size>/ (vocab.txt, tokenizer_config.json,
...), ready for `bertkit pretrain --vocab DIR/likelihood-8000`.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, REPO  # noqa: E402  (one definition of where the data lives)

sys.path.insert(0, str(REPO / "src"))

from bertkit.text.vocab import ALGORITHMS, count_words, train_vocab  # noqa: E402
from bertkit.text.wordpiece import longest_pieces, wordpiece  # noqa: E402

NSMC = DATA / "nsmc" / "ratings_train.txt"
SETTINGS = {"do_lower_case": False, "strip_accents": False}     # cased, accents kept: Hangul stays whole


def read_reviews(path: Path) -> list[str]:
    """The review column (id, document, label), read with quoting off as the data README says."""
    with open(path, encoding="utf-8") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(rows)
        return [r[1].strip() for r in rows if len(r) > 1 and r[1].strip()]


def split(reviews: list[str], work: Path, held_out: float, seed: int) -> tuple[Path, Path, int, int]:
    reviews = list(reviews)
    random.Random(seed).shuffle(reviews)
    cut = int(len(reviews) * (1 - held_out))
    train, test = work / "train.txt", work / "held_out.txt"
    train.write_text("\n".join(reviews[:cut]) + "\n", encoding="utf-8")
    test.write_text("\n".join(reviews[cut:]) + "\n", encoding="utf-8")
    return train, test, cut, len(reviews) - cut


def evaluate(tok, words: Counter) -> dict:
    """Per held-out word occurrence: pieces, [UNK], single-character cuts, whole words."""
    longest = longest_pieces(tok.ids_to_tokens)
    n = pieces = unk = whole = multi = chars = 0
    for word, count in words.items():
        cut = wordpiece(word, tok.vocab, tok.unk_token_id, longest)
        n += count
        pieces += count * len(cut)
        if cut[0][0] == tok.unk_token_id:
            unk += count
        elif len(cut) == 1:
            whole += count
        if len(word) > 1:
            multi += count
            if cut[0][0] != tok.unk_token_id and all(end - start == 1 for _, start, end in cut):
                chars += count
    return {"words": n, "tok_per_word": pieces / n, "unk_share": unk / n, "whole_share": whole / n,
            "multi_char_words": multi, "single_char_split_share": chars / multi}


def run(args) -> dict:
    reviews = read_reviews(Path(args.data))
    if args.max_lines:
        reviews = reviews[: args.max_lines]
    results = {"data": str(args.data),
               "settings": dict(SETTINGS, min_frequency=args.min_frequency, limit_alphabet=1000),
               "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, 1 thread",
               "seed": args.seed, "held_out": args.held_out, "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        train, test, n_train, n_test = split(reviews, Path(tmp), args.held_out, args.seed)
        results.update(train_reviews=n_train, held_out_reviews=n_test)
        t0 = time.perf_counter()
        train_words = count_words([train], **SETTINGS)
        results["count_words_s"] = time.perf_counter() - t0
        results["distinct_train_words"] = len(train_words)
        held_out = count_words([test], **SETTINGS)
        for size in args.sizes:
            for algorithm in ALGORITHMS:
                name = f"{algorithm}-{size}" + (f"-mf{args.min_frequency}" if args.min_frequency != 2 else "")
                out = Path(args.out) / name if args.out else None
                t0, c0 = time.perf_counter(), time.process_time()
                tok = train_vocab([train], size, algorithm=algorithm, out_dir=out,
                                  min_frequency=args.min_frequency, **SETTINGS)
                row = {"vocab_size": size, "algorithm": algorithm, "train_s": time.perf_counter() - t0,
                       "train_cpu_s": time.process_time() - c0,
                       "learned": len(tok), **evaluate(tok, held_out)}
                if out is not None:
                    row["saved_to"] = str(out)
                results["rows"].append(row)
                print(markdown_row(row), flush=True)
    return results


HEADER = ("| vocab | algorithm | train s | cpu s | learned | tok/word | unk % | chars % | whole % |\n"
          "|---:|---|---:|---:|---:|---:|---:|---:|---:|")


def markdown_row(r: dict) -> str:
    return (f"| {r['vocab_size']} | {r['algorithm']} | {r['train_s']:.1f} | {r['train_cpu_s']:.1f} | {r['learned']} | "
            f"{r['tok_per_word']:.3f} | {100 * r['unk_share']:.2f} | {100 * r['single_char_split_share']:.2f} | "
            f"{100 * r['whole_share']:.2f} |")


def markdown(results: dict) -> str:
    lines = [f"# WordPiece merges by frequency vs by likelihood — NSMC reviews\n",
             f"{results['train_reviews']} training reviews ({results['distinct_train_words']} distinct words, "
             f"counted in {results['count_words_s']:.1f} s), {results['held_out_reviews']} held-out reviews; "
             f"cased, accents kept, min_frequency {results['settings']['min_frequency']}, limit_alphabet 1000; "
             f"{results['machine']}.\n",
             HEADER] + [markdown_row(r) for r in results["rows"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(NSMC))
    parser.add_argument("--sizes", default="8000,32000", help="comma-separated vocab sizes")
    parser.add_argument("--held-out", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-lines", type=int, default=None, help="use only the first N reviews")
    parser.add_argument("--min-frequency", type=int, default=2, help="a pair seen fewer times is never merged")
    parser.add_argument("--out", default=None, help="also save every vocab as OUT/<algorithm>-<size>/")
    parser.add_argument("--results", default=str(REPO / "bench" / "results"), help="folder for JSON + markdown")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20k reviews, vocab 4000")
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    if args.quick:
        args.max_lines, args.sizes = args.max_lines or 20_000, [4000]
    if not Path(args.data).is_file():
        print(f"NSMC not found at {args.data} (set BERTKIT_DATA or --data)", file=sys.stderr)
        return 2
    print(HEADER, flush=True)
    results = run(args)
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    stem = "vocab_algorithms" + (f"_mf{args.min_frequency}" if args.min_frequency != 2 else "") + \
        ("_quick" if args.quick else "")
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    (out / f"{stem}.md").write_text(markdown(results), encoding="utf-8")
    print(f"\n{markdown(results)}wrote {out / stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
