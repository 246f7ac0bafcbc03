"""Pretraining under torchrun, every mode, as a user runs it: exit codes, lines printed, and the weights
compared with one process (2 CPU processes over gloo; the same code runs NCCL on GPUs).

    python bench/bench_ddp.py [--lines 3000]

Corpus: the first `--lines` Korean reviews of shared/data (one review per line: `--one-doc-per-line
--keep-accents`, the issue's scenario).  For every mode, with dropout off (`--dropout 0`):

* **fresh**: `torchrun --nproc_per_node 2 -m bertkit.cli pretrain ... --batch-size 4` from an empty folder,
  6 steps, checkpoints every 3;
* **resumed**: that run's folder with its last checkpoint (step 6) and model deleted — as if killed after
  step 3 — run again by the same command;
* **other world size**: the same, run again by one process with `--batch-size 8`;
* the reference: one process, `--batch-size 8`, 6 steps.  "max |Δw|" is the largest difference between
  the final weights and the reference's (0 would mean bit-identical; float sums in another order differ).

"lines" counts what the job printed (progress-bar refreshes excluded; torchrun's own lines included),
beside what one process prints for the same run.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, REPO, fail_if_different  # noqa: E402

COMMON = ["--one-doc-per-line", "--keep-accents", "--size", "tiny", "--vocab-size", "2000", "--steps", "6",
          "--max-seq-length", "64", "--save-every", "3", "--dropout", "0", "--workers", "1", "--eval-batches", "2",
          "--held-out-every", "20"]
MODES = {"nsp": [], "no-nsp": ["--no-nsp"], "pack": ["--no-nsp", "--pack"], "wwm": ["--whole-word-mask"],
         "grad-accum": ["--grad-accum", "2"], "bf16": ["--bf16", "--bf16-weights"], "from": ["--from", "FROM"]}


def run(cmd: list, processes: int) -> tuple[int, int]:
    """(exit code, lines printed) of `bertkit ...` with 1 process or under torchrun."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    if processes > 1:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                    "--master_port", str(port), "-m", "bertkit.cli"]
    else:
        launcher = [sys.executable, "-m", "bertkit.cli"]
    proc = subprocess.run(launcher + [str(c) for c in cmd], env=env, capture_output=True, text=True)
    text = re.sub(r"[^\n]*\r", "", proc.stdout + proc.stderr)             # progress-bar refreshes
    lines = [line for line in text.splitlines() if line.strip() and "%|" not in line]
    if proc.returncode not in (0,):
        sys.stderr.write("\n".join(lines[-20:]) + "\n")
    return proc.returncode, len(lines)


def max_diff(a: Path, b: Path) -> float:
    from safetensors.torch import load_file
    x, y = load_file(str(a / "model" / "model.safetensors")), load_file(str(b / "model" / "model.safetensors"))
    return max(float((x[k].float() - y[k].float()).abs().max()) for k in x)


def killed_after_step_3(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    shutil.rmtree(dst / "run" / "step-6")
    shutil.rmtree(dst / "model")
    (dst / "run" / "latest").write_text("step-3")
    return dst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=3000, help="Korean reviews in the corpus")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        corpus = work / "reviews.txt"
        source = DATA / "ko_corpus" / "nsmc_raw_reviews_unlabeled.txt"
        corpus.write_text("".join(source.read_text(encoding="utf-8").splitlines(True)[:args.lines]), encoding="utf-8")
        print(f"{args.lines:,} Korean reviews; BERT-Tiny, 6 steps × 8 rows × 64 tokens, dropout 0; "
              "2 processes over gloo, 1 torch thread each\n")
        print("| mode | fresh: exit, lines (1 process) | max abs Δw | resumed: exit, lines | max abs Δw | "
              "other world size (1 process): exit, lines | max abs Δw |")
        print("|---|---|---|---|---|---|---|")
        base, comparisons = None, []
        for mode, flags in MODES.items():
            flags = [base if f == "FROM" else f for f in flags]
            pre = lambda out, batch: ["pretrain", corpus, "--out", out, "--batch-size", batch, *COMMON, *flags]  # noqa: E731
            ref_code, ref_lines = run(pre(work / f"{mode}-one", 8), 1)
            code, lines = run(pre(work / f"{mode}-two", 4), 2)
            fresh = max_diff(work / f"{mode}-one", work / f"{mode}-two")
            r_code, r_lines = run(pre(killed_after_step_3(work / f"{mode}-two", work / f"{mode}-res"), 4), 2)
            o_code, o_lines = run(pre(killed_after_step_3(work / f"{mode}-two", work / f"{mode}-w1"), 8), 1)
            print(f"| {mode} | {code}, {lines} ({ref_code}, {ref_lines}) | {fresh:.1e} | {r_code}, {r_lines} | "
                  f"{max_diff(work / f'{mode}-one', work / f'{mode}-res'):.1e} | {o_code}, {o_lines} | "
                  f"{max_diff(work / f'{mode}-one', work / f'{mode}-w1'):.1e} |", flush=True)
            base = base or str(work / "nsp-one" / "model")
            comparisons += verdicts(mode, [(ref_code, ref_lines), (code, lines), (r_code, r_lines), (o_code, o_lines)],
                                    [fresh, max_diff(work / f"{mode}-one", work / f"{mode}-res"),
                                     max_diff(work / f"{mode}-one", work / f"{mode}-w1")])
    fail_if_different(comparisons)


def verdicts(mode: str, runs: list[tuple[int, int]], diffs: list[float]) -> list[tuple[str, float, float]]:
    """What must hold for `mode`: every run exits 0, the fresh 2-process run prints as many lines as one
    process, and the weights of the fresh, resumed and other-world-size runs equal one process's
    (within float reordering: 1e-5 in fp32, 5e-3 with bf16 weights)."""
    tolerance = 5e-3 if mode == "bf16" else 1e-5
    (_, ref_lines), (_, lines) = runs[0], runs[1]
    return ([(f"{mode}: exit code of run {i}", float(c), 0.0) for i, (c, _) in enumerate(runs)]
            + [(f"{mode}: lines printed, 2 processes vs 1", float(abs(lines - ref_lines)), 0.0)]
            + [(f"{mode}: weights, {what}", d, tolerance) for what, d in zip(("fresh", "resumed", "other world size"), diffs)])


if __name__ == "__main__":
    main()
