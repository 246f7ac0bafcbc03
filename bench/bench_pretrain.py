"""Pretraining, side by side: bertkit vs the reference `transformers.BertForPreTraining` (sdpa).

Same config, same initial weights, same batches (real text, BERT's 30,522-token
uncased vocab, seq 128, dynamic MLM 15% + NSP), same AdamW and LR schedule, in
one process, steps interleaved so that machine load hits both alike.  Prints:

- tokens/s of a full training step (forward + backward + AdamW) for each, and the ratio;
- the two loss curves (max |difference|) — they must match: same maths, different code;
- peak RSS; a PNG of both curves (bench/results/pretrain_loss_<size>.png).

    python bench/bench_pretrain.py --sizes mini small --steps 60 --threads 2
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (bert_training_flops, fail_if_different, markdown_table, matmul_peak_gflops, peak_rss_mb,  # noqa: E402
                     pyplot, set_threads)

import torch  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
#: max |loss difference| allowed at any step: same maths, different code (measured ≤2.9e-6 on BERT-Mini)
LOSS_TOLERANCE = 1e-5


def make_batches(tokenizer, n_batches: int, batch_size: int, seq_len: int, workdir: Path) -> list[dict]:
    """Real pretraining batches from the built-in corpus (Python's docs), masked once, reused by both."""
    from bertkit.data.builtin_corpus import write_builtin_corpus
    from bertkit.data.masking import MlmCollator
    from bertkit.data.nsp import PretrainingDataset
    from bertkit.data.shards import build_shards

    corpus = workdir / "corpus.txt"
    write_builtin_corpus(corpus, include_docstrings=True)
    build_shards([corpus], tokenizer, workdir / "shards", num_workers=2)
    dataset = PretrainingDataset(workdir / "shards", max_seq_length=seq_len, seed=0)
    collate = MlmCollator(tokenizer, seed=0)
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0)).tolist()
    return [collate([dataset[i] for i in order[b * batch_size:(b + 1) * batch_size]]) for b in range(n_batches)]


def make_models(size: str, vocab_size: int, workdir: Path):
    from transformers import BertForPreTraining as HFBertForPreTraining

    from bertkit import BertConfig, BertForPreTraining

    torch.manual_seed(0)
    config = BertConfig.preset(size, vocab_size=vocab_size, hidden_dropout_prob=0.0,
                               attention_probs_dropout_prob=0.0)
    ours = BertForPreTraining(config)
    ours.save_pretrained(workdir / size)
    theirs = HFBertForPreTraining.from_pretrained(workdir / size, attn_implementation="sdpa")
    return ours.train(), theirs.train()


def make_optimizer(model, lr: float, steps: int):
    from bertkit.training.trainer import linear_warmup_decay, param_groups
    opt = torch.optim.AdamW(param_groups(model, 0.01), lr=lr, eps=1e-6)
    return opt, linear_warmup_decay(opt, max(1, steps // 10), steps)


def train_step(model, opt, sched, batch) -> float:
    loss = model(**batch).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    return float(loss.detach())


def run_size(size: str, batches: list[dict], vocab_size: int, workdir: Path, lr: float, warmup: int,
             ablate_unpad: bool = False) -> dict:
    ours, theirs = make_models(size, vocab_size, workdir)
    models = {"bertkit": ours, "reference": theirs}
    if ablate_unpad:            # bertkit with every pad token computed, as the reference does
        models["bertkit padded"] = copy.deepcopy(ours)
        models["bertkit padded"].bert.unpad = False
    steps = len(batches)
    contestants = [(name, model, *make_optimizer(model, lr, steps)) for name, model in models.items()]
    losses = {name: [] for name in models}
    times = {name: [] for name in models}
    for i, batch in enumerate(batches):
        for name, model, opt, sched in contestants:
            t0 = time.perf_counter()
            losses[name].append(train_step(model, opt, sched, batch))
            if i >= warmup:
                times[name].append(time.perf_counter() - t0)
    tokens = sum(int(b["attention_mask"].sum()) for b in batches[warmup:])
    tps = {name: tokens / sum(t) for name, t in times.items()}
    flops = sum(bert_training_flops(ours.config, int(b["attention_mask"].sum()), b["input_ids"].shape[1],
                                    int((b["labels"] != -100).sum()), b["input_ids"].shape[0])
                for b in batches[warmup:])
    gflops = {name: flops / sum(t) / 1e9 for name, t in times.items()}
    diffs = [abs(a - b) for a, b in zip(losses["bertkit"], losses["reference"])]
    plot_curves(size, losses)
    return {"size": size, "tps": tps, "gflops": gflops, "losses": losses, "max_diff": max(diffs),
            "first10_max_diff": max(diffs[:10]), "params": sum(p.numel() for p in ours.parameters())}


def plot_curves(size: str, losses: dict) -> None:
    plt = pyplot()
    if plt is None:
        return
    RESULTS.mkdir(exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, values in losses.items():
        ax.plot(values, label=name, linestyle="-" if name == "bertkit" else "--")
    ax.set_title(f"BERT-{size} pretraining loss, same batches and init")
    ax.set_xlabel("step")
    ax.set_ylabel("MLM + NSP loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / f"pretrain_loss_{size}.png", dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["mini", "small"])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--ablate-unpad", action="store_true",
                        help="also time bertkit with unpad=False (what skipping the pad tokens is worth)")
    args = parser.parse_args()
    set_threads(args.threads)
    peak = matmul_peak_gflops()
    from bertkit import BertTokenizer
    from bertkit.modeling.checkpoint import find_minilm

    tokenizer = BertTokenizer.from_pretrained(find_minilm())
    rows, curves = [], []
    with tempfile.TemporaryDirectory() as tmp:
        batches = make_batches(tokenizer, args.steps, args.batch_size, args.seq_len, Path(tmp))
        for size in args.sizes:
            r = run_size(size, batches, tokenizer.vocab_size, Path(tmp), args.lr, args.warmup, args.ablate_unpad)
            rows.append([f"BERT-{size} ({r['params'] / 1e6:.1f}M)", f"{r['tps']['bertkit']:,.0f}",
                         f"{r['tps']['reference']:,.0f}", f"{r['tps']['bertkit'] / r['tps']['reference']:.2f}x",
                         f"{r['gflops']['bertkit'] / peak:.0%}", f"{r['gflops']['reference'] / peak:.0%}",
                         f"{r['first10_max_diff']:.1e}", f"{r['max_diff']:.1e}"])
            curves.append(r)
            if args.ablate_unpad:
                padded = r["tps"]["bertkit padded"]
                print(f"BERT-{size}: bertkit padded (unpad=False) {padded:,.0f} tokens/s = "
                      f"{padded / r['tps']['reference']:.2f}x the reference; unpadding adds "
                      f"{r['tps']['bertkit'] / padded:.2f}x", flush=True)
        real = sum(int(b["attention_mask"].sum()) for b in batches)
        print(f"padding in these batches: {1 - real / sum(b['input_ids'].numel() for b in batches):.1%} of positions")
    print(f"\npretraining step (fwd+bwd+AdamW), seq {args.seq_len}, batch {args.batch_size}, vocab "
          f"{tokenizer.vocab_size}, {args.threads} threads, {args.steps} steps ({args.warmup} untimed), "
          f"torch {torch.__version__}, {os.cpu_count()} CPUs")
    print(f"matmul peak (fp32 1024², {args.threads} threads): {peak:,.1f} GFLOP/s; MFU = useful model FLOPs "
          "(MLM head at masked positions only, same count for both) / peak")
    print(markdown_table(["model", "bertkit tokens/s", "reference tokens/s", "ratio", "bertkit MFU", "reference MFU",
                          "max |Δloss| first 10 steps", f"max |Δloss| {args.steps} steps"], rows))
    for r in curves:
        pairs = list(zip(r["losses"]["bertkit"], r["losses"]["reference"]))
        shown = ", ".join(f"{a:.3f}/{b:.3f}" for a, b in pairs[:: max(1, len(pairs) // 8)])
        print(f"loss curve BERT-{r['size']} (bertkit/reference): {shown}")
    print(f"peak RSS of this process: {peak_rss_mb():,.0f} MiB")
    fail_if_different((f"BERT-{r['size']} loss curve, {args.steps} steps", r["max_diff"], LOSS_TOLERANCE)
                      for r in curves)


if __name__ == "__main__":
    main()
