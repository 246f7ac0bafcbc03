"""bertkit vs the reference (transformers BertForPreTraining, sdpa) on one GPU, and each speed switch.

    python bench/bench_gpu.py --out bench/results/gpu          # on a GPU box: < 8 minutes on an H100
    python bench/bench_gpu.py --smoke                          # CPU: tiny model, two steps per row

Sections, in the order they run (each one time-boxed; what does not fit in `--budget`
seconds is skipped with a note, and the JSON of what finished is always written):

  env         the card, its bf16 dense spec peak (H100 SXM / H200: 989 TFLOP/s) and a measured
              bf16 matmul peak: the two denominators of every MFU figure
  train       one training step (fwd + bwd + clip + fused AdamW, bf16 autocast) of BERT-Base,
              bertkit vs reference, same init and same batches, measured in interleaved blocks:
              full rows (128x128), ~35% padding, batch 512, 64x512
  inference   bf16 forward, 128 rows of mixed length, sequences/s
  switches    bertkit alone, ~35% padding, each switch on vs the plain step: host-built
              unpadding plan (exact rows / rows rounded to 128), bf16 weights + fp32 masters,
              fused tails by torch.compile / by Triton, all of them
  cli         `bertkit pretrain` through the library function (`run_pretraining`, the CLI's code
              path) on the built-in English corpus and the Korean reviews; then the same data
              through the Trainer with prefetching off, and (Korean, MLM only) packed rows vs not
  compiled    torch.compile of both models (train full/padded rows, inference), and of bertkit
              with static row buckets; last, since compiling costs minutes

tokens/s counts real (non-pad) tokens.  MFU = useful model FLOPs (bench/_common.py's
bert_training_flops: the same count for both implementations) / peak.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
try:
    import bertkit  # noqa: F401
except ImportError:                                   # a bare checkout: use its src/
    sys.path.insert(0, str(HERE.parent / "src"))
from _common import DATA, bert_training_flops, markdown_table  # noqa: E402

import torch  # noqa: E402

from bertkit.modeling import BertForPreTraining  # noqa: E402
from bertkit.modeling.config import BertConfig  # noqa: E402
from bertkit.modeling.layout import plan_unpadding  # noqa: E402
from bertkit.modeling.fused import use_fused_blocks  # noqa: E402
from bertkit.modeling.triton_ops import make_fused_ops, triton  # noqa: E402
from bertkit.training.feed import pin, to_device  # noqa: E402
from bertkit.training.precision import Bf16Weights, autocast, make_adamw  # noqa: E402
from bertkit.training.trainer import param_groups  # noqa: E402

SPEC_TFLOPS = [("H200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("A100", 312.0)]   # bf16 dense
KOREAN = Path(os.environ.get("BERTKIT_KO_CORPUS", DATA / "ko_corpus" / "nsmc_raw_reviews_unlabeled.txt"))


@dataclass
class Profile:
    """Sizes of a full GPU run, or of the CPU smoke run."""
    smoke: bool
    model: dict
    shapes: list                       # (row name, B, T, share of real tokens)
    warmup: int = 3
    rounds: int = 3
    block: int = 5                     # steps timed together; contestants alternate block by block
    compile_backend: str = "inductor"
    vocab: int = 30522
    compiled_shapes: tuple = (1, 0)    # shapes compiled too: ~35% padding, full rows
    compiled: tuple = ("bertkit", "reference", "bertkit + plan 128")
    cli: dict = field(default_factory=dict)


def profile(smoke: bool) -> Profile:
    if smoke:
        return Profile(True, dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64),
                       [("full 4x16", 4, 16, 1.0), ("35% pad 4x16", 4, 16, 0.65), ("batch 8x16", 8, 16, 1.0),
                        ("2x64", 2, 64, 1.0)], warmup=0, rounds=1, block=2, compile_backend="eager",
                       vocab=1000, compiled_shapes=(1,), compiled=("bertkit + plan 128",),
                       cli=dict(size="tiny", steps=2, batch=4, vocab=300, docs=60, ko_lines=300, seq=32))
    return Profile(False, {}, [("full 128x128", 128, 128, 1.0), ("35% pad 128x128", 128, 128, 0.65),
                               ("batch 512x128", 512, 128, 1.0), ("64x512", 64, 512, 1.0)],
                   cli=dict(size="base", steps=60, batch=128, vocab=8000, docs=None, ko_lines=60000, seq=128))


class Budget:
    def __init__(self, seconds: float):
        self.end = time.perf_counter() + seconds

    def left(self) -> float:
        return self.end - time.perf_counter()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------- data and models

def make_batches(n: int, B: int, T: int, fill: float, vocab: int, seed: int = 0) -> list[dict]:
    """n pretraining batches: random ids, rows of mean length fill*T, 15% masked, NSP labels."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n):
        low = max(2, round((2 * fill - 1) * T))
        lengths = torch.full((B,), T) if fill >= 1 else torch.randint(low, T + 1, (B,), generator=g)
        mask = (torch.arange(T)[None] < lengths[:, None]).long()                   # [B, T]
        ids = torch.randint(5, vocab, (B, T), generator=g) * mask
        chosen = (torch.rand(B, T, generator=g) < 0.15) & mask.bool()
        chosen[:, 1] = True
        types = (torch.arange(T)[None] >= (lengths // 2)[:, None]).long() * mask
        batches.append({"input_ids": ids, "token_type_ids": types, "attention_mask": mask,
                        "labels": torch.where(chosen, ids, -100),
                        "next_sentence_label": torch.randint(0, 2, (B,), generator=g)})
    return batches


def make_pair(prof: Profile, vocab: int, workdir: Path):
    """bertkit BertForPreTraining and the reference loaded from its saved weights (same init), on the CPU."""
    from transformers import BertForPreTraining as Reference
    torch.manual_seed(0)
    config = (BertConfig(vocab_size=vocab, max_position_embeddings=512, **prof.model) if prof.smoke
              else BertConfig.preset("base", vocab_size=vocab))
    ours = BertForPreTraining(config)
    ours.save_pretrained(workdir / "init")
    theirs = Reference.from_pretrained(workdir / "init", attn_implementation="sdpa")
    return ours, theirs


class Contestant:
    """One model + optimizer + switches; `step(batch)` = fwd, bwd, clip, AdamW (no host sync)."""

    def __init__(self, name: str, model, device, plan: int = 0, bf16_weights: bool = False, fused=None,
                 compile_backend: str | None = None):
        self.name, self.device, self.plan = name, device, plan
        self.model = model.to(device).train()
        if fused is not None:
            use_fused_blocks(self.model, fused)
        self.weights = Bf16Weights(self.model) if bf16_weights else None
        groups = param_groups(self.model, 0.01)
        if self.weights is not None:
            groups = self.weights.master_groups(groups)
        self.optimizer = make_adamw(groups, 1e-4, (0.9, 0.999), 1e-6, device)
        self.params = self.weights.masters if self.weights is not None else list(self.model.parameters())
        self.fn = torch.compile(self.model, backend=compile_backend) if compile_backend else self.model

    def prepare(self, batch: dict) -> dict:
        batch = dict(batch)
        if self.plan:
            batch["unpad"] = plan_unpadding(batch["attention_mask"], multiple=self.plan)
        cuda = self.device.type == "cuda"
        return to_device(pin(batch) if cuda else batch, self.device, pinned=cuda)

    def step(self, batch: dict) -> torch.Tensor:
        with autocast(self.device, True):
            loss = self.fn(**batch).loss
        loss.backward()
        if self.weights is not None:
            self.weights.grads_to_masters()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.weights is not None:
            self.weights.masters_to_weights()
            self.weights.zero_grad()
        return loss.detach()


def race(contestants: list[Contestant], batches: list[dict], prof: Profile) -> dict:
    """Interleaved timing: warm-up steps, then rounds in which every contestant runs `block` steps.

    A contestant that fails (e.g. a kernel that does not compile on this card) is reported
    with its error and left out; the others still run.
    """
    device = contestants[0].device
    first_loss, failed = {}, {}
    prepared = {c.name: [c.prepare(b) for b in batches] for c in contestants}
    for c in contestants:
        try:
            for k in range(max(1, prof.warmup)):
                loss = c.step(prepared[c.name][k % len(batches)])
                if k == 0:
                    first_loss[c.name] = float(loss)
        except Exception as exc:                      # noqa: BLE001 - reported in the results
            failed[c.name] = f"{type(exc).__name__}: {exc}"[:500]
            traceback.print_exc()
    running = [c for c in contestants if c.name not in failed]
    times = {c.name: [] for c in running}
    for r in range(prof.rounds):
        for c in running:
            sync(device)
            t0 = time.perf_counter()
            for k in range(prof.block):
                c.step(prepared[c.name][(r * prof.block + k) % len(batches)])
            sync(device)
            times[c.name].append((time.perf_counter() - t0) / prof.block)
    result = {name: {"s_per_step": statistics.median(t), "first_loss": first_loss[name]} for name, t in times.items()}
    return {**result, **{name: {"error": err} for name, err in failed.items()}}


def step_flops(config, batches: list[dict]) -> tuple[float, float]:
    """(useful FLOPs, real tokens) of one step, averaged over the batches."""
    flops = [bert_training_flops(config, int(b["attention_mask"].sum()), b["input_ids"].shape[1],
                                 int((b["labels"] != -100).sum()), b["input_ids"].shape[0]) for b in batches]
    tokens = [int(b["attention_mask"].sum()) for b in batches]
    return statistics.fmean(flops), statistics.fmean(tokens)


def throughput_rows(shape: str, kind: str, result: dict, flops: float, tokens: float, env: dict,
                    baseline: str) -> list[dict]:
    rows = []
    base = result.get(baseline, {}).get("s_per_step")
    for name, r in result.items():
        if "error" in r:
            rows.append({"shape": shape, "kind": kind, "contestant": name, "error": r["error"]})
            continue
        achieved = flops / r["s_per_step"] / 1e12
        rows.append({"shape": shape, "kind": kind, "contestant": name, "tokens_per_s": tokens / r["s_per_step"],
                     "ms_per_step": 1e3 * r["s_per_step"], "tflops": achieved,
                     "mfu_spec": achieved / env["spec_tflops"] if env.get("spec_tflops") else None,
                     "mfu_measured": achieved / env["matmul_tflops"] if env.get("matmul_tflops") else None,
                     "vs_" + baseline: base / r["s_per_step"] if base else None, "first_loss": r["first_loss"]})
    return rows


def free(device) -> None:
    import gc
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- sections

def section_env(device, prof: Profile, budget: Budget) -> dict:
    import transformers
    env = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
           "torch": torch.__version__, "transformers": transformers.__version__,
           "triton": getattr(triton, "__version__", None), "smoke": prof.smoke, "spec_tflops": None}
    for key, tflops in SPEC_TFLOPS:
        if key in env["device"]:
            env["spec_tflops"] = tflops
            break
    n = 8192 if device.type == "cuda" else 256
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    sync(device)
    best = float("inf")
    for _ in range(10 if device.type == "cuda" else 3):
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    env["matmul_tflops"] = 2 * n ** 3 / best / 1e12
    return env


def section_train(device, prof, budget, env, pair, kind="train eager", compile_backend=None, names=None,
                  shapes=None) -> list[dict]:
    """Rows of `shapes`, each a race of `names` (bertkit, reference, bertkit + plan 128)."""
    ours, theirs = pair
    names = names or ["bertkit", "reference"]
    rows, vocab = [], ours.config.vocab_size
    for shape, B, T, fill in shapes or prof.shapes:
        if budget.left() < (0 if prof.smoke else (150 if compile_backend else 25)):
            rows.append({"shape": shape, "kind": kind, "skipped": f"time budget ({budget.left():.0f} s left)"})
            continue
        batches = make_batches(min(8, prof.warmup + prof.rounds * prof.block), B, T, fill, vocab)
        contestants = [Contestant(name, copy.deepcopy(theirs if name == "reference" else ours), device,
                                  plan=128 if "plan" in name else 0, compile_backend=compile_backend)
                       for name in names]
        result = race(contestants, batches, prof)
        rows += throughput_rows(shape, kind, result, *step_flops(ours.config, batches), env, "reference")
        del contestants
        free(device)
    return rows


def section_inference(device, prof, budget, env, pair, compile_backend=None) -> list[dict]:
    """bf16 forward of mixed-length rows (~35% padding), sequences/s."""
    kind = "inference " + ("compiled" if compile_backend else "eager")
    if budget.left() < (0 if prof.smoke else (100 if compile_backend else 15)):
        return [{"shape": "mixed", "kind": kind, "skipped": f"time budget ({budget.left():.0f} s left)"}]
    ours, theirs = (copy.deepcopy(m).to(device).eval() for m in pair)
    if compile_backend:
        ours, theirs = (torch.compile(m, backend=compile_backend) for m in (ours, theirs))
    B, T = (4, 16) if prof.smoke else (128, 128)
    batches = [{k: v.to(device) for k, v in b.items() if k in ("input_ids", "token_type_ids", "attention_mask")}
               for b in make_batches(4, B, T, 0.65, pair[0].config.vocab_size, seed=1)]
    models = {"bertkit": ours, "reference": theirs}
    times = {name: [] for name in models}
    with torch.no_grad(), autocast(device, True):
        for model in models.values():
            for b in batches[: max(1, prof.warmup)]:
                model(**b)
        for r in range(prof.rounds):
            for name, model in models.items():
                sync(device)
                t0 = time.perf_counter()
                for k in range(prof.block):
                    model(**batches[(r + k) % len(batches)])
                sync(device)
                times[name].append((time.perf_counter() - t0) / prof.block)
    per = {name: statistics.median(t) for name, t in times.items()}
    return [{"shape": f"{B}x{T} mixed", "kind": kind, "contestant": name, "sequences_per_s": B / s,
             "ms_per_batch": 1e3 * s, "vs_reference": per["reference"] / s} for name, s in per.items()]


def switch_variants(device, prof: Profile) -> list[tuple[str, dict]]:
    fused_backend = "eager" if prof.smoke else "inductor"      # smoke: dynamo only (tests/ check aot_eager)
    variants = [("plain", {}), ("plan exact rows", {"plan": 1}), ("plan rows to 128", {"plan": 128}),
                ("bf16 weights + fp32 masters", {"plan": 1, "bf16_weights": True}),
                ("fused tails: torch.compile", {"plan": 1, "fused": ("compile", fused_backend)})]
    if device.type == "cuda" and triton is not None:
        variants.append(("fused tails: triton", {"plan": 1, "fused": ("triton", None)}))
    variants.append(("all: plan 128 + bf16 weights + compiled tails",
                     {"plan": 128, "bf16_weights": True, "fused": ("compile", fused_backend)}))
    return variants


def section_switches(device, prof, budget, env, pair) -> list[dict]:
    ours = pair[0]
    shape, B, T, fill = prof.shapes[1]
    batches = make_batches(min(8, prof.warmup + prof.rounds * prof.block), B, T, fill, ours.config.vocab_size)
    contestants, ops = [], {}
    for name, opts in switch_variants(device, prof):
        opts = dict(opts)
        if "fused" in opts:                         # one FusedOps per kind: compiled once, shared
            kind, backend = opts["fused"]
            if kind not in ops:
                ops[kind] = make_fused_ops(kind, backend) if backend else make_fused_ops(kind)
            opts["fused"] = ops[kind]
        contestants.append(Contestant(name, copy.deepcopy(ours), device, **opts))
    result = race(contestants, batches, prof)
    rows = throughput_rows(shape, "bertkit switches", result, *step_flops(ours.config, batches), env, "plain")
    del contestants
    free(device)
    return rows


# ----------------------------------------------------------------------------- the CLI's code path

def corpora(prof: Profile, workdir: Path) -> list[tuple[str, Path, dict]]:
    """(name, file, PretrainSettings options): the built-in English corpus, and the Korean reviews if present."""
    from bertkit.data.builtin_corpus import iter_documents, write_builtin_corpus
    english = workdir / "english.txt"
    if prof.cli["docs"]:
        docs = []
        for doc in iter_documents(include_docstrings=False):
            docs.append("\n".join(doc))
            if len(docs) == prof.cli["docs"]:
                break
        english.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    else:
        write_builtin_corpus(english, include_docstrings=True)
    found = [("English (built-in)", english, {})]
    if KOREAN.exists():
        korean = workdir / "korean.txt"
        with open(KOREAN, encoding="utf-8") as src:
            lines = [line for _, line in zip(range(prof.cli["ko_lines"]), src)]
        korean.write_text("".join(lines), encoding="utf-8")
        found.append(("Korean reviews (nsmc)", korean, {"one_doc_per_line": True, "strip_accents": False}))
    return found


def settings_for(prof: Profile, device, corpus: Path, out: Path, options: dict):
    from bertkit.training.pretrain import PretrainSettings
    c = prof.cli
    return PretrainSettings(files=[str(corpus)], out_dir=str(out), size=c["size"], vocab_size=c["vocab"],
                            max_seq_length=c["seq"], steps=c["steps"], batch_size=c["batch"], learning_rate=1e-4,
                            bf16=device.type == "cuda", save_every=0, eval_every=c["steps"], eval_batches=2,
                            workers=1 if prof.smoke else 8, progress=False, seed=0, **options)


def window_tokens_per_s(rows: list[dict]) -> float | None:
    """Median tokens/s of the logged windows after the first (which holds the warm-up)."""
    speeds = [r["tokens_per_s"] for r in rows if r["step"] > 0 and r.get("tokens_per_s")]
    speeds = speeds[1:] or speeds
    return statistics.median(speeds) if speeds else None


def trainer_run(s, label: str, switches: dict, pack: bool = False, nsp: bool | None = None) -> dict:
    """The same data and model as `run_pretraining`, built from the library's pieces, with switches."""
    import dataclasses

    from bertkit.data.nsp import PretrainingDataset
    from bertkit.data.packing import PackedCollator, PackedDataset
    from bertkit.training.pretrain import build_model, ensure_split, make_datasets, prepare_tokenizer
    from bertkit.training.trainer import TrainConfig, Trainer

    out = Path(s.out_dir)
    s = dataclasses.replace(s, nsp=s.nsp if nsp is None else nsp)
    tokenizer = prepare_tokenizer(s, out, ensure_split(s, out)[0])
    train_set, _, collate = make_datasets(s, tokenizer, out)
    if pack:
        base = PretrainingDataset(out / "shards", max_seq_length=s.max_seq_length, nsp=False, seed=s.seed)
        train_set, collate = PackedDataset(base, s.max_seq_length, seed=s.seed), PackedCollator(collate)
    model = build_model(s, tokenizer)
    config = TrainConfig(output_dir=str(out / f"run-{label}"), learning_rate=s.learning_rate, max_steps=s.steps,
                         batch_size=s.batch_size, bf16=s.bf16, seed=s.seed, save_every=0,
                         log_every=max(1, s.steps // 20), progress=False, eval_at_start=False, **switches)
    logged = []
    state = Trainer(model, train_set, collate, config, on_log=logged.append).train()
    return {"tokens_per_s": window_tokens_per_s(logged), "real_tokens_per_row": state.tokens_seen / (
        state.step * s.batch_size), "final_loss": logged[-1]["loss"] if logged else None,
        "row_fill": getattr(train_set, "fill", None)}


def section_cli(device, prof, budget, workdir: Path) -> list[dict]:
    from bertkit.training.pretrain import run_pretraining
    rows = []
    for name, corpus, options in corpora(prof, workdir):
        if budget.left() < (0 if prof.smoke else 60):
            rows.append({"corpus": name, "skipped": f"time budget ({budget.left():.0f} s left)"})
            continue
        s = settings_for(prof, device, corpus, workdir / name.split()[0].lower(), options)
        logged, t0 = [], time.perf_counter()
        summary = run_pretraining(s, on_log=logged.append)
        rows.append({"corpus": name, "path": "run_pretraining (the CLI's code path)",
                     "tokens_per_s": window_tokens_per_s(logged), "wall_s": time.perf_counter() - t0,
                     "real_tokens_per_row": summary["tokens_seen"] / (summary["steps"] * s.batch_size),
                     "final_loss": summary["final_loss"]})
        variants = [("Trainer, prefetch off", {"prefetch": 0}, False, None),
                    ("Trainer, prefetch on", {"prefetch": 2}, False, None)]
        if options.get("one_doc_per_line"):
            variants += [("Trainer, MLM only, one document per row", {}, False, False),
                         ("Trainer, MLM only, packed rows", {}, True, False)]
        for label, switches, pack, nsp in variants:
            if budget.left() < (0 if prof.smoke else 30):
                rows.append({"corpus": name, "path": label, "skipped": f"time budget ({budget.left():.0f} s left)"})
                continue
            result = trainer_run(s, label.replace(" ", "-").replace(",", ""), switches, pack, nsp)
            rows.append({"corpus": name, "path": label, **result})
        free(device)
    return rows


# ----------------------------------------------------------------------------- report

COLUMNS = {
    "train": ["shape", "kind", "contestant", "tokens_per_s", "ms_per_step", "tflops", "mfu_spec", "mfu_measured",
              "vs_reference", "first_loss"],
    "inference": ["shape", "kind", "contestant", "sequences_per_s", "ms_per_batch", "vs_reference"],
    "switches": ["shape", "contestant", "tokens_per_s", "ms_per_step", "mfu_spec", "mfu_measured", "vs_plain",
                 "first_loss"],
    "cli": ["corpus", "path", "tokens_per_s", "real_tokens_per_row", "row_fill", "wall_s", "final_loss"],
}


def cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def to_markdown(results: dict) -> str:
    env = results.get("env", {})
    lines = [f"# bench_gpu: {env.get('device', '?')}, torch {env.get('torch')}, transformers "
             f"{env.get('transformers')}, triton {env.get('triton')}" + (" (CPU smoke run)" if env.get("smoke") else ""),
             "", f"bf16 dense spec peak: {cell(env.get('spec_tflops'))} TFLOP/s; measured bf16 matmul peak: "
             f"{cell(env.get('matmul_tflops'))} TFLOP/s", ""]
    for section in ("train", "inference", "switches", "compiled", "cli"):
        rows = results.get(section)
        if not rows:
            continue
        columns = COLUMNS["train" if section == "compiled" else section]
        done = [r for r in rows if "skipped" not in r and "error" not in r]
        if section == "compiled":
            done = [r for r in done if not r.get("kind", "").startswith("inference")]
        lines += [f"## {section}", "", markdown_table(columns, [[cell(r.get(c)) for c in columns] for r in done])]
        if section == "compiled":
            inference = [r for r in rows if "skipped" not in r and r.get("kind", "").startswith("inference")]
            if inference:
                cols = COLUMNS["inference"]
                lines += ["", markdown_table(cols, [[cell(r.get(c)) for c in cols] for r in inference])]
        lines += [f"- skipped: {r.get('shape') or r.get('corpus')} {r.get('path', '')}: {r['skipped']}"
                  for r in rows if "skipped" in r]
        lines += [f"- failed: {r.get('shape')} {r.get('contestant')}: {r['error']}" for r in rows if "error" in r]
        lines.append("")
    lines += [f"- {section}: {note}" for section, note in results.get("notes", {}).items()]
    lines += [f"- error in {section}: {err.splitlines()[-1]}" for section, err in results.get("errors", {}).items()]
    return "\n".join(lines) + "\n"


def write(results: dict, out: Path | None) -> None:
    if out is None:
        return
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "results.md").write_text(to_markdown(results))


# ----------------------------------------------------------------------------- main

def run_all(args, device, prof: Profile, workdir: Path, results: dict) -> None:
    budget = Budget(args.budget)
    results["env"] = section_env(device, prof, budget)
    env = results["env"]
    pair = make_pair(prof, prof.vocab, workdir)
    sections = [
        ("train", lambda: section_train(device, prof, budget, env, pair)),
        ("inference", lambda: section_inference(device, prof, budget, env, pair)),
        ("switches", lambda: section_switches(device, prof, budget, env, pair)),
        ("cli", lambda: section_cli(device, prof, budget, workdir)),
        ("compiled", lambda: section_train(device, prof, budget, env, pair, "train compiled", prof.compile_backend,
                                           names=prof.compiled, shapes=[prof.shapes[i] for i in prof.compiled_shapes])
         + ([] if prof.smoke else section_inference(device, prof, budget, env, pair, prof.compile_backend))),
    ]
    for name, run in sections:
        if args.sections and name not in args.sections:
            continue
        if budget.left() <= 0:
            results.setdefault("notes", {})[name] = f"skipped: the time budget of {args.budget:.0f} s was spent"
            continue
        t0 = time.perf_counter()
        try:
            results[name] = run()
        except Exception:                              # one broken section must not lose the others
            results.setdefault("errors", {})[name] = traceback.format_exc()
            print(results["errors"][name], file=sys.stderr)
        results.setdefault("seconds", {})[name] = round(time.perf_counter() - t0, 1)
        print(f"[bench_gpu] {name}: {results['seconds'][name]} s, {budget.left():.0f} s of budget left",
              file=sys.stderr, flush=True)
        write(results, args.out)
        free(device)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="write results.json and results.md here")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for all sections (default 420 on a GPU: the whole run stays under 8 minutes)")
    parser.add_argument("--smoke", action="store_true", help="tiny model, two steps per row (default without CUDA)")
    parser.add_argument("--sections", nargs="*", default=None,
                        help="only these of: train inference switches cli compiled")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    prof = profile(smoke=device.type != "cuda")
    args.budget = args.budget if args.budget is not None else (120.0 if prof.smoke else 420.0)
    if prof.smoke:
        torch.set_num_threads(1)     # tiny matrices: more threads only wait for each other (badly on a busy machine)
    results: dict = {"argv": sys.argv[1:] if argv is None else argv}
    with tempfile.TemporaryDirectory(prefix="bench_gpu-") as tmp:
        try:
            run_all(args, device, prof, Path(tmp), results)
        finally:
            write(results, args.out)
    print(to_markdown(results))
    return results


if __name__ == "__main__":
    main()
