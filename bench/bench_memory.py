"""Peak memory of every path, bertkit vs the reference (transformers + tokenizers), side by side.

    python bench/bench_memory.py                      # all five paths (the figures to report)
    python bench/bench_memory.py --quick              # smoke run: fewer lines, passes and steps
    python bench/bench_memory.py --paths pretrain finetune --json bench/results/memory.json

Paths (CPU, fp32, `--threads` torch threads, default 2)
  tokenizer        encode 20,000 real lines (SST-2 + NSMC) in batches of 1,000 with the MiniLM vocab:
                   bertkit.text.tokenizer.BertTokenizer vs transformers.BertTokenizerFast (Rust)
  inference-fixed  all-MiniLM-L6-v2 (real weights), 32 x 128 random ids, 3 forward passes, inference mode
  inference-mixed  all-MiniLM-L6-v2 on real sentences, batches of 32 padded to the longest (<= 128)
  pretrain         BertForPreTraining, BERT-Mini shape (L4 H256, vocab 30,522), real batches of 32 x 128
                   with 15 % MLM + NSP labels (bench_pretrain.make_batches), forward + backward + clip + AdamW,
                   3 steps; the same random init for both (saved once by bertkit, loaded by both)
  finetune         BertForSequenceClassification from MiniLM (the same fresh classifier for both),
                   batches of 32 SST-2 sentences (max_length 64), forward + backward + clip + AdamW, 3 steps

How it measures
  Every (path, implementation) runs in its own fresh subprocess (`--child PATH IMPL`), so that
  peaks do not mix.  The inputs are built once here, in the parent, and saved to a temp dir;
  the bertkit child never imports transformers/tokenizers and the reference child never
  imports bertkit (each child reports the other side's modules it found loaded: none expected).
  In the child:
    1. imports, load the model/tokenizer and the inputs;
    2. baseline = resident memory now (VmRSS); load peak = high-water mark so far (VmHWM);
    3. reset the high-water mark (Linux: write 5 to /proc/self/clear_refs);
    4. run the path; path peak = VmHWM now.
  peak    = max(load peak, path peak): what the process needed in all (what ru_maxrss reports)
  working = path peak - baseline: the memory of the path itself, above the loaded model
  The reference's baseline includes importing transformers (tens of MiB); compare the working
  column for the path itself.  Creating torch.optim.AdamW imports torch._dynamo (~70 MiB): it is
  in both training baselines alike.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, markdown_table, peak_rss_mb, real_sentences  # noqa: E402

PATHS = ("tokenizer", "inference-fixed", "inference-mixed", "pretrain", "finetune")
IMPLS = ("bertkit", "reference")
FOREIGN = {"bertkit": ("transformers", "tokenizers"), "reference": ("bertkit",)}


# ----------------------------------------------------------------------------- memory readings

def _proc_status_mb(field: str) -> float | None:
    """A VmXXX line of /proc/self/status in MiB (None off Linux)."""
    status = Path("/proc/self/status")
    if not status.exists():
        return None
    for line in status.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return None


def current_rss_mb() -> float:
    """Resident memory of this process now, in MiB."""
    rss = _proc_status_mb("VmRSS")
    if rss is not None:
        return rss
    return peak_rss_mb()                                   # no /proc: the best figure there is


def reset_peak_rss() -> bool:
    """Reset this process's high-water mark (VmHWM) to its current RSS; False where impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# ----------------------------------------------------------------------------- inputs (parent)

def prepare(paths, workdir: Path, args) -> None:
    """Build every input the children need, once, and save it under workdir."""
    import torch

    from bertkit.modeling.checkpoint import find_minilm
    from bertkit.text.tokenizer import BertTokenizer
    minilm = find_minilm()
    (workdir / "spec.json").write_text(json.dumps({"minilm": str(minilm)}))
    tokenizer = BertTokenizer.from_pretrained(minilm)
    if "tokenizer" in paths:
        (workdir / "texts.json").write_text(json.dumps(real_sentences(args.lines, seed=0)))
    if "inference-fixed" in paths:
        g = torch.Generator().manual_seed(0)
        ids = torch.randint(1000, 30000, (args.batch, args.seq), generator=g)
        ids[:, 0], ids[:, -1] = tokenizer.cls_token_id, tokenizer.sep_token_id
        torch.save(dict(input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids)),
                   workdir / "inference-fixed.pt")
    if "inference-mixed" in paths:
        texts = real_sentences(args.batch * args.mixed_batches, seed=1)
        torch.save([dict(tokenizer(texts[i:i + args.batch], padding=True, truncation=True, max_length=args.seq,
                                   return_tensors="pt")) for i in range(0, len(texts), args.batch)],
                   workdir / "inference-mixed.pt")
    if "pretrain" in paths:
        prepare_pretrain(tokenizer, workdir, args)
    if "finetune" in paths:
        prepare_finetune(tokenizer, minilm, workdir, args)


def prepare_pretrain(tokenizer, workdir: Path, args) -> None:
    """BERT-Mini with a random init (saved by bertkit), and real MLM + NSP batches."""
    import torch
    from bench_pretrain import make_batches

    from bertkit import BertConfig, BertForPreTraining
    torch.manual_seed(0)
    BertForPreTraining(BertConfig.preset("mini", vocab_size=tokenizer.vocab_size)).save_pretrained(
        workdir / "pretrain-model")
    corpus_dir = workdir / "pretrain-corpus"
    corpus_dir.mkdir()
    batches = make_batches(tokenizer, args.steps, args.batch, args.seq, corpus_dir)
    torch.save([dict(b) for b in batches], workdir / "pretrain.pt")


def prepare_finetune(tokenizer, minilm: Path, workdir: Path, args) -> None:
    """MiniLM + one fresh 2-way classifier (saved by bertkit), and SST-2 batches padded to the longest."""
    import random

    import torch

    from bertkit import BertForSequenceClassification
    torch.manual_seed(0)
    BertForSequenceClassification.from_pretrained(minilm, num_labels=2).save_pretrained(workdir / "finetune-model")
    sst2 = DATA / "glue" / "SST-2" / "train.tsv"
    if not sst2.exists():
        sys.exit(f"SST-2 not found at {sst2}; set BERTKIT_DATA to the shared data directory, "
                 f"or leave out the finetune path (--paths ...).")
    rows = [line.split("\t") for line in sst2.read_text(encoding="utf-8").splitlines()[1:] if "\t" in line]
    random.Random(0).shuffle(rows)
    batches = []
    for s in range(args.steps):
        chunk = rows[s * args.batch:(s + 1) * args.batch]
        enc = dict(tokenizer([r[0] for r in chunk], padding=True, truncation=True, max_length=args.finetune_len,
                             return_tensors="pt"))
        enc["labels"] = torch.tensor([int(r[1]) for r in chunk])
        batches.append(enc)
    torch.save(batches, workdir / "finetune.pt")


# ----------------------------------------------------------------------------- the paths (child)
# Each loader returns `run`, a function that runs the path once and returns a small dict of checks.

def load_tokenizer_path(impl: str, workdir: Path, spec: dict, args):
    texts = json.loads((workdir / "texts.json").read_text())
    if impl == "bertkit":
        from bertkit.text.tokenizer import BertTokenizer
        tok = BertTokenizer.from_pretrained(spec["minilm"])
    else:
        from transformers import BertTokenizerFast
        tok = BertTokenizerFast.from_pretrained(spec["minilm"])

    def run() -> dict:
        tokens = id_sum = 0
        for i in range(0, len(texts), args.tok_batch):
            ids = tok(texts[i:i + args.tok_batch])["input_ids"]       # list of lists, as a data loader keeps
            tokens += sum(map(len, ids))
            id_sum += sum(map(sum, ids))
        return {"lines": len(texts), "tokens": tokens, "id_sum": id_sum}
    return run


def _encoder(impl: str, path: str):
    if impl == "bertkit":
        from bertkit.modeling import BertModel
        return BertModel.from_pretrained(path).eval()
    import torch
    import transformers
    return transformers.BertModel.from_pretrained(path, attn_implementation="sdpa", dtype=torch.float32).eval()


def load_inference_fixed(impl: str, workdir: Path, spec: dict, args):
    import torch
    enc = torch.load(workdir / "inference-fixed.pt", weights_only=True)
    model = _encoder(impl, spec["minilm"])

    def run() -> dict:
        with torch.inference_mode():
            for _ in range(args.passes):
                h = model(**enc).last_hidden_state                      # [B, T, H]
                checksum = float(h[:, 0].abs().mean())
                del h
        return {"shape": list(enc["input_ids"].shape), "cls_abs_mean": checksum}
    return run


def load_inference_mixed(impl: str, workdir: Path, spec: dict, args):
    import torch
    batches = torch.load(workdir / "inference-mixed.pt", weights_only=True)
    model = _encoder(impl, spec["minilm"])

    def run() -> dict:
        total = 0.0
        with torch.inference_mode():
            for enc in batches:
                h = model(**enc).last_hidden_state                      # [B, T, H]
                total += float(h[:, 0].abs().mean())
                del h
        return {"batches": len(batches), "max_T": max(b["input_ids"].shape[1] for b in batches),
                "cls_abs_mean": total / len(batches)}
    return run


def _train_run(model, batches):
    """forward + backward + clip + AdamW on each batch; the optimizer state is made on the first step."""
    import torch
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, eps=1e-6, weight_decay=0.01)
    model.train()

    def run() -> dict:
        losses = []
        for batch in batches:
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(round(float(loss.detach()), 4))
        return {"steps": len(batches), "losses": losses}
    return run


def _load_training(impl: str, workdir: Path, name: str, class_name: str):
    """A training-step run of `class_name` on workdir/{name}.pt, from workdir/{name}-model."""
    import torch
    batches = torch.load(workdir / f"{name}.pt", weights_only=True)
    if impl == "bertkit":
        import bertkit.modeling.encoder
        model = getattr(bertkit.modeling.encoder, class_name).from_pretrained(workdir / f"{name}-model")
    else:
        import transformers
        model = getattr(transformers, class_name).from_pretrained(
            workdir / f"{name}-model", attn_implementation="sdpa", dtype=torch.float32)
    return _train_run(model, batches)


def load_pretrain(impl: str, workdir: Path, spec: dict, args):
    return _load_training(impl, workdir, "pretrain", "BertForPreTraining")


def load_finetune(impl: str, workdir: Path, spec: dict, args):
    return _load_training(impl, workdir, "finetune", "BertForSequenceClassification")


LOADERS = {"tokenizer": load_tokenizer_path, "inference-fixed": load_inference_fixed,
           "inference-mixed": load_inference_mixed, "pretrain": load_pretrain, "finetune": load_finetune}


def child_main(path: str, impl: str, args) -> None:
    """One (path, implementation) in this fresh process; prints one JSON line of MiB figures."""
    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)                                          # dropout draws
    if impl == "reference":
        import transformers
        transformers.logging.set_verbosity_error()
    workdir = Path(args.workdir)
    spec = json.loads((workdir / "spec.json").read_text())
    run = LOADERS[path](impl, workdir, spec, args)
    gc.collect()
    baseline, load_peak = current_rss_mb(), peak_rss_mb()
    reset = reset_peak_rss()
    t0 = time.perf_counter()
    checks = run()
    seconds = time.perf_counter() - t0
    path_peak = peak_rss_mb()
    foreign = sorted(m for m in FOREIGN[impl] if m in sys.modules)
    print(json.dumps({
        "path": path, "impl": impl, "threads": args.threads, "baseline_mb": baseline, "load_peak_mb": load_peak,
        "path_peak_mb": path_peak, "peak_mb": max(load_peak, path_peak),
        "working_mb": path_peak - baseline if reset else max(0.0, path_peak - baseline),
        "hwm_reset": reset, "end_rss_mb": current_rss_mb(), "seconds": seconds,
        "foreign_modules": foreign, "checks": checks}))


# ----------------------------------------------------------------------------- parent

def child_command(path: str, impl: str, workdir: Path, args) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--child", path, impl, "--workdir", str(workdir),
            "--threads", str(args.threads), "--tok-batch", str(args.tok_batch), "--passes", str(args.passes)]


def run_child(path: str, impl: str, workdir: Path, args) -> dict:
    """Run one child (with --threads for torch, OpenMP and the Rust tokenizer) and parse its JSON line."""
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), RAYON_NUM_THREADS=str(args.threads))
    result = subprocess.run(child_command(path, impl, workdir, args), capture_output=True, text=True, env=env)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"child {path}/{impl} failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(lines[-1])


def median_run(runs: list[dict]) -> dict:
    """The run with the median peak (all runs are kept in the JSON)."""
    runs = sorted(runs, key=lambda r: r["peak_mb"])
    return runs[(len(runs) - 1) // 2]


def verdict(ours: dict, ref: dict) -> str:
    """'OK' when neither bertkit's peak nor its working memory is above the reference's (tolerance:
    2 % or 2 MiB, whichever is larger); otherwise what is above and by how much."""
    problems = []
    for key, label in (("peak_mb", "peak"), ("working_mb", "working")):
        excess = ours[key] - ref[key]
        if excess > max(2.0, 0.02 * ref[key]):
            problems.append(f"{label} ABOVE ref by {excess:,.0f} MiB")
    return "; ".join(problems) or "OK"


def report(results: dict[str, dict[str, dict]]) -> tuple[str, str]:
    """The markdown tables: the summary, then where each figure comes from."""
    rows, detail = [], []
    for path, pair in results.items():
        ours, ref = pair["bertkit"], pair["reference"]
        rows.append([path, f"{ours['peak_mb']:,.0f}", f"{ref['peak_mb']:,.0f}",
                     f"{ref['peak_mb'] / ours['peak_mb']:.2f}x", f"{ours['working_mb']:,.0f}",
                     f"{ref['working_mb']:,.0f}", verdict(ours, ref)])
        for impl, r in pair.items():
            detail.append([path, impl, f"{r['baseline_mb']:,.0f}", f"{r['load_peak_mb']:,.0f}",
                           f"{r['path_peak_mb']:,.0f}", f"{r['end_rss_mb']:,.0f}", f"{r['seconds']:.1f}",
                           _checks(r["checks"])])
    summary = markdown_table(["path", "bertkit peak MiB", "reference peak MiB", "ratio (ref/ours)",
                              "bertkit working MiB", "reference working MiB", "verdict"], rows)
    where = markdown_table(["path", "impl", "baseline (after load)", "load peak", "path peak", "RSS at end",
                            "path s", "checks"], detail)
    return summary, where


def _checks(checks: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in checks.items())


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--paths", nargs="+", default=list(PATHS), choices=PATHS)
    p.add_argument("--threads", type=int, default=2, help="torch / OpenMP / Rust tokenizer threads in each child")
    p.add_argument("--lines", type=int, default=20000, help="tokenizer: real lines to encode")
    p.add_argument("--tok-batch", type=int, default=1000, help="tokenizer: lines per call")
    p.add_argument("--batch", type=int, default=32, help="sequences per batch (inference, pretrain, finetune)")
    p.add_argument("--seq", type=int, default=128, help="T of the fixed and pretraining batches; mixed truncation")
    p.add_argument("--passes", type=int, default=3, help="inference-fixed: forward passes")
    p.add_argument("--mixed-batches", type=int, default=10, help="inference-mixed: real-sentence batches")
    p.add_argument("--steps", type=int, default=3, help="pretrain / finetune: optimizer steps")
    p.add_argument("--finetune-len", type=int, default=64, help="finetune: max_length")
    p.add_argument("--repeats", type=int, default=1, help="children per (path, impl); the median peak is reported")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 3,000 lines, 2 passes, 3 mixed batches, 2 steps (batch shapes unchanged)")
    p.add_argument("--json", default=None, help="write the raw numbers (every child's JSON) here")
    p.add_argument("--child", nargs=2, metavar=("PATH", "IMPL"), default=None, help=argparse.SUPPRESS)
    p.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.lines, args.passes, args.mixed_batches, args.steps = 3000, 2, 3, 2
    if args.child and (args.child[0] not in PATHS or args.child[1] not in IMPLS):
        p.error(f"--child takes a path of {PATHS} and an implementation of {IMPLS}, got {args.child}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        return child_main(*args.child, args)
    results: dict[str, dict[str, dict]] = {}
    raw: dict[str, dict[str, list]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print(f"preparing inputs for {', '.join(args.paths)} ...", file=sys.stderr, flush=True)
        prepare(args.paths, workdir, args)
        for path in args.paths:
            raw[path] = {impl: [] for impl in IMPLS}
            for _ in range(args.repeats):
                for impl in IMPLS:                             # one fresh process each, one at a time
                    raw[path][impl].append(run_child(path, impl, workdir, args))
                    r = raw[path][impl][-1]
                    print(f"  {path:16s} {impl:9s} peak {r['peak_mb']:7.0f} MiB  working {r['working_mb']:7.0f} MiB"
                          f"  {r['seconds']:.1f}s", file=sys.stderr, flush=True)
            results[path] = {impl: median_run(runs) for impl, runs in raw[path].items()}
    summary, where = report(results)
    versions = _versions()
    print(f"\n## Peak memory per path (RSS, CPU, fp32, {args.threads} threads), bertkit vs {versions}\n")
    print(summary)
    print("\npeak = the child process's high-water mark (loading included); working = peak while running the "
          "path minus RSS after imports + load (the path's own memory). ratio > 1 = bertkit uses less. "
          "The reference's baseline includes importing transformers + tokenizers.")
    print(f"settings: {args.lines:,} lines in calls of {args.tok_batch:,}; batch {args.batch}, seq {args.seq}; "
          f"{args.passes} fixed passes; {args.mixed_batches} mixed batches; {args.steps} training steps; "
          f"finetune max_length {args.finetune_len}; {args.repeats} child(ren) per cell\n")
    print(where)
    for path, pair in results.items():
        for impl, r in pair.items():
            if r["foreign_modules"]:
                print(f"WARNING: {path}/{impl} child had {r['foreign_modules']} loaded; its figure is not clean")
            if not r["hwm_reset"]:
                print(f"note: {path}/{impl}: could not reset the high-water mark; working = peak - baseline")
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"settings": {k: v for k, v in vars(args).items() if k not in ("child", "workdir")},
                                   "versions": versions, "cpus": os.cpu_count(),
                                   "time": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                                   "median": results, "runs": raw}, indent=2))
        print(f"\nraw numbers in {out}")


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version
    parts = []
    for name in ("transformers", "tokenizers", "torch"):
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    return ", ".join(parts)


if __name__ == "__main__":
    main()
