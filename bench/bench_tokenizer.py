"""Batch-encoding throughput: bertkit (pure Python) vs the HF Rust fast tokenizer on ONE thread.

    python bench/bench_tokenizer.py [--lines 20000] [--batch 1000] [--repeats 3]

Encodes the same real lines (WikiText-2 valid + SST-2 + NSMC, from ../shared/data)
with both tokenizers, checks that the ids are identical, and prints lines/s,
tokens/s and the ratio (bertkit / HF; > 1 means bertkit is faster). Settings:
"english" = uncased all-MiniLM-L6-v2 vocab on English lines; "multilingual" = the
same vocab on English + Korean lines (Korean exercises the non-ASCII path).
Each run uses a fresh bertkit tokenizer (its per-word cache starts empty) and
reports the best of --repeats runs for both sides.
"""
from __future__ import annotations

import os

os.environ["RAYON_NUM_THREADS"] = "1"          # the Rust tokenizer on one thread,
os.environ["TOKENIZERS_PARALLELISM"] = "false"  # set before `tokenizers` is imported

import argparse  # noqa: E402
import csv  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BERTKIT_DATA", REPO.parent / "shared" / "data"))


def read_lines(n: int) -> dict[str, list[str]]:
    def col(path, c):
        with open(path, encoding="utf-8") as f:
            rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            next(rows)
            return [r[c] for r in rows if len(r) > c]

    wiki = [ln for ln in (DATA / "wikitext2" / "valid.txt").read_text(encoding="utf-8").split("\n") if ln.strip()]
    sst = col(DATA / "glue" / "SST-2" / "train.tsv", 0)
    nsmc = col(DATA / "nsmc" / "ratings_train.txt", 1)
    english = (wiki + sst)[:n]
    half = n // 2
    return {"english": english, "multilingual": english[:half] + nsmc[: n - half]}


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import warnings

    import transformers
    from transformers import BertTokenizerFast

    transformers.logging.set_verbosity_error()  # both sides warn about lines > 512 tokens
    warnings.filterwarnings("ignore", message="Token indices sequence length")

    from bertkit.modeling.checkpoint import find_minilm
    from bertkit.text.tokenizer import BertTokenizer

    path = find_minilm()
    ref = BertTokenizerFast.from_pretrained(str(path))
    print(f"data: {DATA}  vocab: all-MiniLM-L6-v2 (uncased)  batch={args.batch}  best of {args.repeats}")
    print(f"{'setting':<13}{'lines':>7}{'tokens':>9}{'HF lines/s':>12}{'ours lines/s':>14}"
          f"{'HF tok/s':>11}{'ours tok/s':>12}{'ratio':>7}  ids")
    for name, lines in read_lines(args.lines).items():
        batches = [lines[i:i + args.batch] for i in range(0, len(lines), args.batch)]

        def run_ref():
            return [ids for b in batches for ids in ref(b)["input_ids"]]

        def run_ours():
            ours = BertTokenizer.from_pretrained(path)  # fresh: empty word cache every run
            return [ids for b in batches for ids in ours(b)["input_ids"]]

        same = run_ref() == run_ours()
        n_tokens = sum(len(ids) for ids in run_ref())
        t_ref, t_ours = best_time(run_ref, args.repeats), best_time(run_ours, args.repeats)
        print(f"{name:<13}{len(lines):>7}{n_tokens:>9}{len(lines) / t_ref:>12.0f}{len(lines) / t_ours:>14.0f}"
              f"{n_tokens / t_ref:>11.0f}{n_tokens / t_ours:>12.0f}{t_ref / t_ours:>7.2f}  "
              f"{'identical' if same else 'DIFFERENT'}")
        if not same:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
