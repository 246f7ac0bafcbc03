"""Pretraining data preparation end to end, side by side with `tokenizers` encoding the same text.

    python bench/bench_prepare.py [--repeat 4] [--workers 2]

The corpus is the Korean reviews of shared/data (`ko_corpus/nsmc_raw_reviews_unlabeled.txt`, 12 MB,
one review per line) repeated `--repeat` times (4: 48 MB, the workload of the issue).  A WordPiece vocab
(8,000, cased, accents kept) is trained on one copy first and given to both sides, so that what is timed is:

* **bertkit**: `bertkit.training.pretrain.prepare_data` as `bertkit pretrain --one-doc-per-line` runs it
  (read the corpus in place, cut sentences, WordPiece, write the shards with `--workers` processes, then
  epoch 0's NSP plans), and again for `--no-nsp --pack` (shards reused, the packing plans built);
* **tokenizers** (Rust, `BertWordPieceTokenizer.encode_batch`, `--workers` threads): encoding the same
  sentences (cut beforehand, not timed), nothing written.

MB/s per core = corpus MB / seconds / cores.  The projection for 20 GB on 16 cores assumes the shards
scale with cores (each worker streams its own byte range) and the plans with the number of sentences
(they are built by one process).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, REPO  # noqa: E402

sys.path.insert(0, str(REPO / "src"))
CORPUS = DATA / "ko_corpus" / "nsmc_raw_reviews_unlabeled.txt"


def bertkit_side(corpus: Path, vocab: Path, out: Path, workers: int) -> dict:
    """`prepare_data` as `bertkit pretrain --one-doc-per-line` runs it (shards + epoch 0's NSP plan), then again
    for `--no-nsp --pack` (the shards are reused: only the packing plan is new)."""
    from bertkit.training import pretrain
    from bertkit.training.pretrain import PretrainSettings, open_data, prepare_data
    common = dict(files=[str(corpus)], out_dir=str(out), vocab=str(vocab), one_doc_per_line=True, workers=workers,
                  training=pretrain.PretrainTraining(progress=False))
    timed = {}
    build_shards = pretrain.build_shards

    def timed_build(*args, **kwargs):
        t = time.perf_counter()
        try:
            return build_shards(*args, **kwargs)
        finally:
            timed["shards_s"] = time.perf_counter() - t
    pretrain.build_shards = timed_build
    t0 = time.perf_counter()
    prepare_data(PretrainSettings(**common), out)
    nsp_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    prepare_data(PretrainSettings(**common, nsp=False, pack=True), out)
    pack_s = time.perf_counter() - t1
    manifest = json.loads((out / "shards" / "manifest.json").read_text())
    nsp, packed = (open_data(PretrainSettings(**common, **extra), out) for extra in ({}, {"nsp": False, "pack": True}))
    return {"shards_s": timed["shards_s"], "seconds": nsp_s, "plans_s": nsp_s - timed["shards_s"], "pack_s": pack_s,
            "sentences": manifest["sentences"], "tokens": manifest["tokens"], "nsp_pairs": len(nsp.train_set),
            "packed_rows": len(packed.train_set)}


def reference_side(corpus: Path, vocab: Path, workers: int) -> dict:
    """tokenizers in a child process (its thread count is fixed when it starts)."""
    code = f"""
import json, time
from tokenizers import BertWordPieceTokenizer
from bertkit.text.corpus import iter_documents
ref = BertWordPieceTokenizer({str(vocab / 'vocab.txt')!r}, lowercase=False, strip_accents=False)
sentences = [s for doc in iter_documents({str(corpus)!r}, one_doc_per_line=True) for s in doc]
t0 = time.perf_counter()
for i in range(0, len(sentences), 10000):
    ref.encode_batch(sentences[i:i + 10000], add_special_tokens=False)
print(json.dumps({{"seconds": time.perf_counter() - t0, "sentences": len(sentences)}}))
"""
    env = {**os.environ, "RAYON_NUM_THREADS": str(workers), "TOKENIZERS_PARALLELISM": "true",
           "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=4, help="copies of the 12 MB corpus (4: 48 MB)")
    parser.add_argument("--workers", type=int, default=2, help="processes (bertkit) and threads (tokenizers)")
    args = parser.parse_args()
    from bertkit.text.vocab import train_vocab
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpus = work / "corpus.txt"
        corpus.write_bytes(CORPUS.read_bytes() * args.repeat)
        train_vocab([CORPUS], vocab_size=8000, do_lower_case=False, strip_accents=False, out_dir=work / "vocab")
        mine = bertkit_side(corpus, work / "vocab", work / "out", args.workers)
        ref = reference_side(corpus, work / "vocab", args.workers)
    mb = corpus_mb = CORPUS.stat().st_size * args.repeat / 1e6
    per_core = mb / mine["seconds"] / args.workers
    ref_per_core = mb / ref["seconds"] / args.workers
    shards_per_core = mb / mine["shards_s"] / args.workers
    plan_s_per_mb = mine["plans_s"] / corpus_mb
    projected = 20_000 / (shards_per_core * 16) + plan_s_per_mb * 20_000
    print(f"corpus: {mb:.1f} MB of Korean reviews ({args.repeat}x), {mine['sentences']:,} sentences, "
          f"{mine['tokens']:,} tokens; {args.workers} processes / threads; {os.cpu_count()} cores here\n")
    print("| what | seconds | MB/s per core | vs tokenizers |")
    print("|---|---|---|---|")
    print(f"| bertkit: shards (read in place, cut, WordPiece, write memmaps) | {mine['shards_s']:.1f} | "
          f"{shards_per_core:.2f} | {shards_per_core / ref_per_core:.2f}x |")
    print(f"| bertkit: + epoch 0's NSP plans, train + held out ({mine['nsp_pairs']:,} training pairs) | "
          f"{mine['plans_s']:.1f} | | |")
    print(f"| bertkit: data preparation end to end (`bertkit pretrain --one-doc-per-line`) | {mine['seconds']:.1f} | "
          f"{per_core:.2f} | {per_core / ref_per_core:.2f}x |")
    print(f"| bertkit: `--no-nsp --pack` afterwards (shards reused; packing plans, {mine['packed_rows']:,} rows) | "
          f"{mine['pack_s']:.1f} | | |")
    print(f"| tokenizers, {args.workers} threads: encode_batch only, nothing written | {ref['seconds']:.1f} | "
          f"{ref_per_core:.2f} | 1.00x |")
    print(f"\nprojected for 20 GB on 16 cores: shards {20_000 / (shards_per_core * 16) / 60:.0f} min + NSP plans "
          f"{plan_s_per_mb * 20_000 / 60:.0f} min (one process, linear in sentences) = {projected / 60:.0f} min")

if __name__ == "__main__":
    main()
