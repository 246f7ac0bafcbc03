"""Pretraining data preparation: throughput (MB/s) and peak memory as the corpus grows.

What is measured, on the real corpora under shared/data:

1. Throughput of `build_shards` (raw text → sentences → WordPiece ids → memmaps
   + manifest) with 1 and 2 worker processes, for English (WikiText-2 valid,
   one paragraph per line) and Korean (NSMC raw reviews, one review per line),
   each with a vocab trained on that corpus. For scale, the reference row is
   HF `tokenizers` (Rust, 1 thread) only *encoding* the same sentences, with
   nothing written.
2. Peak resident memory of the whole process tree (parent + workers, sampled
   from /proc every 20 ms) for the Korean corpus repeated 1x, 2x, 4x into a
   temporary file: it should stay flat, since every process streams its
   byte range and flushes bounded buffers.

Each build runs in a fresh subprocess, so memory numbers are not polluted by
the benchmark itself. Run:  python bench/bench_data.py  [--quick]
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

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, REPO  # noqa: E402  (one definition of where the data lives)

sys.path.insert(0, str(REPO / "src"))

CORPORA = {
    # name: (file, strip_accents)
    "english": (DATA / "wikitext2" / "valid.txt", None),
    "korean": (DATA / "ko_corpus" / "nsmc_raw_reviews_unlabeled.txt", False),
}


# ----------------------------------------------------------------- the measured child process

def child(args) -> None:
    """Build shards once and print a JSON line with the time taken and the counts."""
    from bertkit.data.shards import build_shards
    from bertkit.text.tokenizer import BertTokenizer
    tok = BertTokenizer.from_pretrained(args.vocab)
    t0, c0 = time.perf_counter(), os.times()
    manifest = build_shards([args.file], tok, args.out, num_workers=args.workers, one_doc_per_line=True)
    seconds, c1 = time.perf_counter() - t0, os.times()
    cpu = sum(c1[:4]) - sum(c0[:4])                  # user + system, this process and its (joined) workers
    m = json.loads(Path(manifest).read_text())
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "bytes": m["bytes"], "tokens": m["tokens"],
                      "sentences": m["sentences"], "documents": m["documents"], "shards": len(m["shards"])}))


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of `pid` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            pass
        stack.extend(children.get(p, []))
    return total


def measure(file: Path, vocab: Path, workers: int, out: Path) -> dict:
    """Run one build in a subprocess; return its report plus the peak RSS of its process tree."""
    cmd = [sys.executable, __file__, "--child", "--file", str(file), "--vocab", str(vocab),
           "--workers", str(workers), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss_bytes(proc.pid))
        time.sleep(0.02)
    report = json.loads(proc.stdout.read().strip().splitlines()[-1])
    if proc.returncode:
        raise RuntimeError(f"build failed: {' '.join(cmd)}")
    report["peak_rss_mb"] = peak / 2**20
    report["mb_per_s"] = report["bytes"] / 1e6 / report["seconds"]
    report["mb_per_cpu_s"] = report["bytes"] / 1e6 / report["cpu_seconds"]
    return report


def reference_encode_mb_per_s(file: Path, vocab: Path, strip_accents) -> tuple[float, float]:
    """HF tokenizers (Rust) encoding the same sentences, 1 thread, nothing written: (MB/s, MB/CPU-s)."""
    from tokenizers import BertWordPieceTokenizer
    from bertkit.text.corpus import iter_documents
    ref = BertWordPieceTokenizer(str(vocab / "vocab.txt"), lowercase=True, strip_accents=strip_accents)
    sentences = [s for doc in iter_documents(file, one_doc_per_line=True) for s in doc]
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(0, len(sentences), 1000):
        ref.encode_batch(sentences[i:i + 1000], add_special_tokens=False)
    mb = file.stat().st_size / 1e6
    return mb / (time.perf_counter() - t0), mb / (time.process_time() - c0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: the first ~2 MB of each corpus")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--file"), parser.add_argument("--vocab"), parser.add_argument("--out")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    if args.child:
        return child(args)

    from bertkit.text.vocab import train_vocab
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows, files, vocabs = [], {}, {}
        for name, (path, strip) in CORPORA.items():
            if not path.exists():
                print(f"skip {name}: {path} not found (set BERTKIT_DATA)")
                continue
            if args.quick:                                   # first ~2 MB, cut at a line end
                text = path.read_bytes()[: 2 << 20]
                path = work / f"{name}.txt"
                path.write_bytes(text[: text.rfind(b"\n") + 1])
            files[name] = path
            vocabs[name] = work / f"vocab_{name}"
            train_vocab([path], vocab_size=16000, strip_accents=strip, out_dir=vocabs[name])
            ref = reference_encode_mb_per_s(path, vocabs[name], strip)
            for workers in (1, 2):
                r = measure(path, vocabs[name], workers, work / f"shards_{name}_{workers}")
                rows.append((name, f"bertkit build_shards, {workers} proc", r))
            rows.append((name, "tokenizers encode only, 1 thread", {"mb_per_s": ref[0], "mb_per_cpu_s": ref[1]}))

        print("MB/s = wall clock; MB/cpu-s = per CPU-second of all processes (robust on a busy machine)")
        print(f"{'corpus':8} {'what':34} {'MB':>6} {'MB/s':>7} {'MB/cpu-s':>9} {'tokens':>10} {'sentences':>10} "
              f"{'docs':>8} {'peak RSS MB':>12}")
        for name, what, r in rows:
            mb = r.get("bytes", files[name].stat().st_size) / 1e6
            print(f"{name:8} {what:34} {mb:6.1f} {r['mb_per_s']:7.2f} {r['mb_per_cpu_s']:9.2f} {r.get('tokens', ''):>10} "
                  f"{r.get('sentences', ''):>10} {r.get('documents', ''):>8} "
                  f"{(format(r['peak_rss_mb'], '12.1f') if 'peak_rss_mb' in r else ''):>12}")
        for name in files:
            one, two, ref = [r for n, _, r in rows if n == name]
            print(f"{name}: wall MB/s 2 proc / 1 proc = {two['mb_per_s'] / one['mb_per_s']:.2f}x; "
                  f"MB/cpu-s bertkit 1 proc / tokenizers encode = {one['mb_per_cpu_s'] / ref['mb_per_cpu_s']:.2f}x")

        if "korean" in files:
            print("\npeak memory as the corpus grows (korean, repeated into one file, 2 processes):")
            print(f"{'copies':>6} {'MB':>7} {'seconds':>8} {'MB/s':>7} {'MB/cpu-s':>9} {'tokens':>11} {'peak RSS MB':>12}")
            base = files["korean"].read_bytes()
            for copies in (1, 2, 4):
                big = work / f"korean_x{copies}.txt"
                with open(big, "wb") as f:                   # written piecewise: never 4 copies in memory
                    for _ in range(copies):
                        f.write(base)
                r = measure(big, vocabs["korean"], 2, work / f"shards_x{copies}")
                print(f"{copies:6d} {r['bytes'] / 1e6:7.1f} {r['seconds']:8.2f} {r['mb_per_s']:7.2f} {r['mb_per_cpu_s']:9.2f} "
                      f"{r['tokens']:11d} {r['peak_rss_mb']:12.1f}")
                big.unlink()


if __name__ == "__main__":
    main()
