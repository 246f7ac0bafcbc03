"""bertkit vs the reference (transformers BertForPreTraining, sdpa) on one GPU, and each speed switch.

    python bench/bench_gpu.py --out bench/results/gpu          # on a GPU box: < 8 minutes on an H100
    python bench/bench_gpu.py --smoke                          # CPU: tiny model, two steps per row

Sections, in the order they run (each one time-boxed; what does not fit in `--budget`
seconds is skipped with a note, and the JSON of what finished is always written):

  env         the card, its bf16 dense spec peak (H100 SXM / H200: 989 TFLOP/s) and a measured
              bf16 matmul peak: the two denominators of every MFU figure
  train       one training step (fwd + bwd + clip + fused AdamW) of BERT-Base, same init and
              same batches, measured in interleaved blocks: full rows (128x128), ~35% padding,
              batch 512, 64x512.  Contestants: the reference and plain bertkit (bf16 autocast),
              and "bertkit fast" (pure bf16 weights + fp32 masters, MLM positions and the
              unpadding plan found on the host: what `--bf16 --bf16-weights` does on a GPU)
  inference   forward of 128 rows of mixed length, sequences/s: fp32 models under bf16
              autocast, and models cast to bf16
  cli         `bertkit pretrain` through the library function (`run_pretraining`, the CLI's code
              path) on the built-in English corpus and the Korean reviews, plain and with
              --bf16-weights; the bare step on the CLI's own first batches (the "vs_bare_step"
              column); English: the Trainer with a collating thread; Korean: --pack --no-nsp
  profile     one "bertkit fast" step without the profiler, the host's time to issue it behind a
              GPU sleep (host- or device-bound?), then under the profiler: issue vs busy time,
              and the kernels that take the most device time
  compiled    torch.compile of the models (train full/padded rows, inference); bertkit fast
              compiled with rows rounded to 128 on padded batches (few distinct shapes)
  switches    bertkit alone, ~35% padding, each switch on vs the plain step: host-built MLM
              positions, unpadding plan (exact rows / rows rounded to 128), bf16 weights + fp32
              masters, fused tails by torch.compile / by Triton, all of them

tokens/s counts real (non-pad) tokens.  MFU = useful model FLOPs (bench/_common.py's
bert_training_flops: the same count for both implementations) / peak.
"""
from __future__ import annotations

import argparse
import contextlib
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
from typing import Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
try:
    import bertkit  # noqa: F401
except ImportError:                                   # a bare checkout: use its src/
    sys.path.insert(0, str(HERE.parent / "src"))
from _common import DATA, bert_training_flops, fail_if_different, markdown_table  # noqa: E402

import torch  # noqa: E402

from bertkit.modeling import BertForPreTraining  # noqa: E402
from bertkit.modeling.config import BertConfig  # noqa: E402
from bertkit.modeling.layout import plan_unpadding  # noqa: E402
from bertkit.modeling.fused import use_fused_blocks  # noqa: E402
from bertkit.modeling.heads import masked_token_positions  # noqa: E402
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
    compiled_shapes: tuple = (0, 1)    # shapes compiled too (full rows, then ~35% padding, while time is left)
    compiled: tuple = ("bertkit fast", "reference")
    cli: dict = field(default_factory=dict)


def profile(smoke: bool) -> Profile:
    if smoke:
        return Profile(True, dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64),
                       [("full 4x16", 4, 16, 1.0), ("35% pad 4x16", 4, 16, 0.65), ("batch 8x16", 8, 16, 1.0),
                        ("2x64", 2, 64, 1.0)], warmup=0, rounds=1, block=2, compile_backend="eager",
                       vocab=1000, compiled_shapes=(1,), compiled=("bertkit fast",),
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
                 compile_backend: str | None = None, masked: bool = False):
        self.name, self.device, self.plan, self.masked = name, device, plan, masked
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
        if self.masked:                               # as the trainer's feed does: no sync in the MLM head
            batch["masked_positions"] = masked_token_positions(batch["labels"])
        cuda = self.device.type == "cuda"
        return to_device(pin(batch) if cuda else batch, self.device, pinned=cuda)

    def step(self, batch: dict) -> torch.Tensor:
        context = self.weights.compute_context(self.device) if self.weights is not None else autocast(self.device, True)
        with context:                                  # bf16 weights: pure bf16, no autocast (as the Trainer)
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


_SHARED_OPS: dict = {}


def shared_ops(kind: str, prof: Profile):
    """One FusedOps per kind for the whole run: compiled once, shared by every contestant."""
    if kind not in _SHARED_OPS:
        backend = "eager" if prof.smoke else "inductor"     # smoke: dynamo only (tests/ check aot_eager)
        _SHARED_OPS[kind] = make_fused_ops(kind, backend) if kind == "compile" else make_fused_ops(kind)
    return _SHARED_OPS[kind]


def contestant_options(name: str, fill: float, prof: Profile, compiled: bool) -> dict:
    """Switches of a named contestant.  "bertkit fast": what `bertkit pretrain --bf16 --bf16-weights`
    does on a GPU (pure bf16 weights + fp32 masters, MLM positions and the unpadding plan found
    on the host; under torch.compile the plan's rows are rounded to 128: few distinct shapes).
    Fused tails are not in it: measured on an H200 they cost more than they save (see switches)."""
    opts: dict = {}
    if "plan 128" in name:
        opts["plan"] = 128
    if "fast" in name:
        opts.update(bf16_weights=True, masked=True)
        if fill < 1:
            opts.setdefault("plan", 128 if compiled else 1)
    return opts


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
    names = names or ["bertkit", "bertkit fast", "reference"]
    rows, vocab = [], ours.config.vocab_size
    for shape, B, T, fill in shapes or prof.shapes:
        if budget.left() < (0 if prof.smoke else (100 if compile_backend else 25)):
            rows.append({"shape": shape, "kind": kind, "skipped": f"time budget ({budget.left():.0f} s left)"})
            continue
        batches = make_batches(min(8, prof.warmup + prof.rounds * prof.block), B, T, fill, vocab)
        contestants = [Contestant(name, copy.deepcopy(theirs if name == "reference" else ours), device,
                                  compile_backend=compile_backend,
                                  **contestant_options(name, fill, prof, compiled=compile_backend is not None))
                       for name in names]
        result = race(contestants, batches, prof)
        rows += throughput_rows(shape, kind, result, *step_flops(ours.config, batches), env, "reference")
        del contestants
        free(device)
    return rows


def section_inference(device, prof, budget, env, pair, compile_backend=None) -> list[dict]:
    """Forward of mixed-length rows (~35% padding), sequences/s: fp32 models under bf16 autocast,
    and models cast to bf16 (no autocast), each against the reference treated the same way."""
    kind = "inference " + ("compiled" if compile_backend else "eager")
    if budget.left() < (0 if prof.smoke else (60 if compile_backend else 15)):
        return [{"shape": "mixed", "kind": kind, "skipped": f"time budget ({budget.left():.0f} s left)"}]
    models = {}
    for name, model in zip(("bertkit", "reference"), pair):
        models[name] = copy.deepcopy(model).to(device).eval()
        models[name + ", bf16 model"] = copy.deepcopy(model).to(device, torch.bfloat16).eval()
    if compile_backend:
        models = {name: torch.compile(m, backend=compile_backend) for name, m in models.items()}
    B, T = (4, 16) if prof.smoke else (128, 128)
    batches = [{k: v.to(device) for k, v in b.items() if k in ("input_ids", "token_type_ids", "attention_mask")}
               for b in make_batches(4, B, T, 0.65, pair[0].config.vocab_size, seed=1)]
    times = {name: [] for name in models}
    for name, model in models.items():
        with inference_context(device, "bf16 model" in name):
            for b in batches[: max(1, prof.warmup)]:
                model(**b)
    for r in range(prof.rounds):
        for name, model in models.items():
            with inference_context(device, "bf16 model" in name):
                sync(device)
                t0 = time.perf_counter()
                for k in range(prof.block):
                    model(**batches[(r + k) % len(batches)])
                sync(device)
            times[name].append((time.perf_counter() - t0) / prof.block)
    per = {name: statistics.median(t) for name, t in times.items()}
    baseline = {name: per["reference" + (", bf16 model" if "bf16 model" in name else "")] for name in per}
    return [{"shape": f"{B}x{T} mixed", "kind": kind, "contestant": name, "sequences_per_s": B / s,
             "ms_per_batch": 1e3 * s, "vs_reference": baseline[name] / s} for name, s in per.items()]


def inference_context(device, bf16_model: bool) -> contextlib.ExitStack:
    """no_grad, plus bf16 autocast for fp32 models (a model cast to bf16 needs none)."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch.no_grad())
    if not bf16_model:
        stack.enter_context(autocast(device, True))
    return stack


def switch_variants(device, prof: Profile) -> list[tuple[str, dict]]:
    variants = [("plain", {}), ("masked positions from the host", {"masked": True}),
                ("plan exact rows", {"plan": 1}), ("plan rows to 128", {"plan": 128}),
                ("bf16 weights + fp32 masters", {"plan": 1, "bf16_weights": True}),
                ("fused tails: torch.compile", {"plan": 1, "fused": "compile"})]
    if device.type == "cuda" and triton is not None:
        variants.append(("fused tails: triton", {"plan": 1, "fused": "triton"}))
    variants.append(("all: plan exact + bf16 weights + compiled tails + host positions",
                     {"plan": 1, "bf16_weights": True, "fused": "compile", "masked": True}))
    return variants


def section_switches(device, prof, budget, env, pair) -> list[dict]:
    ours = pair[0]
    shape, B, T, fill = prof.shapes[1]
    batches = make_batches(min(8, prof.warmup + prof.rounds * prof.block), B, T, fill, ours.config.vocab_size)
    contestants = []
    for name, opts in switch_variants(device, prof):
        opts = dict(opts)
        if "fused" in opts:
            opts["fused"] = shared_ops(opts["fused"], prof)
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
    from bertkit.training.pretrain import PretrainSettings, PretrainTraining
    c = prof.cli
    training = PretrainTraining(steps=c["steps"], batch_size=c["batch"], learning_rate=1e-4, bf16=device.type == "cuda",
                                save_every=0, eval_every=c["steps"], progress=False, seed=0)
    return PretrainSettings(files=[str(corpus)], out_dir=str(out), size=c["size"], vocab_size=c["vocab"],
                            max_seq_length=c["seq"], eval_batches=2, workers=1 if prof.smoke else 8,
                            training=training, **options)


def window_tokens_per_s(rows: list[dict]) -> float | None:
    """Median tokens/s of the logged windows after the first (which holds the warm-up)."""
    speeds = [r["tokens_per_s"] for r in rows if r["step"] > 0 and r.get("tokens_per_s")]
    speeds = speeds[1:] or speeds
    return statistics.median(speeds) if speeds else None


def trainer_run(s, label: str, switches: dict) -> dict:
    """The same data and model as `run_pretraining`, built from the library's pieces, with other Trainer
    switches (e.g. a collating thread), without evaluations."""
    import dataclasses

    from bertkit.training.pretrain import build_model, prepare_pretraining
    from bertkit.training.trainer import Trainer

    out = Path(s.out_dir)
    data = prepare_pretraining(s)
    tokenizer, train_set, collate = data.tokenizer, data.train_set, data.collate
    model = build_model(s, tokenizer)
    config = dataclasses.replace(s.training, save_every=0, progress=False, eval_at_start=False, **switches)
    logged = []
    state = Trainer(model, train_set, collate, config, out / f"run-{label}", on_log=logged.append).train()
    return {"tokens_per_s": window_tokens_per_s(logged), "real_tokens_per_row": state.tokens_seen / (
        state.step * s.training.batch_size), "final_loss": logged[-1]["loss"] if logged else None}


def bare_step_on_cli_batches(s, device, prof: Profile, bf16_weights: bool = False) -> dict:
    """The bare training step (no data loading, no logging) on the CLI run's own first batches,
    with what the CLI does on a GPU (host-built plan and MLM positions; `bf16_weights` as asked)."""
    from bertkit.training.feed import accepts_generator, batch_generator
    from bertkit.training.pretrain import build_model, prepare_pretraining

    data = prepare_pretraining(s)
    tokenizer, train_set, collate = data.tokenizer, data.train_set, data.collate
    n = min(8, prof.warmup + prof.rounds * prof.block, len(train_set) // s.training.batch_size)
    batches = []
    for k in range(n):
        samples = [train_set[i] for i in range(k * s.training.batch_size, (k + 1) * s.training.batch_size)]
        batches.append(collate(samples, generator=batch_generator(s.training.seed, k, 0)) if accepts_generator(collate)
                       else collate(samples))
    model = build_model(s, tokenizer)
    cuda = device.type == "cuda"
    bare = Contestant("bare", model, device, plan=1 if cuda else 0, masked=True, bf16_weights=bf16_weights)
    result = race([bare], batches, prof)["bare"]
    if "error" in result:
        return result
    tokens = statistics.fmean(int(b["attention_mask"].sum()) for b in batches)
    return {"tokens_per_s": tokens / result["s_per_step"], "real_tokens_per_row": tokens / s.training.batch_size}


def cli_variants(device, prof: Profile, options: dict) -> list[tuple[str, Callable]]:
    """(label, function of the corpus' settings) for one corpus."""
    import dataclasses

    from bertkit.training.pretrain import run_pretraining

    def through_cli(**changes):
        def run(s):
            names = {f.name for f in dataclasses.fields(s.training)}
            training = dataclasses.replace(s.training, **{k: v for k, v in changes.items() if k in names})
            s = dataclasses.replace(s, out_dir=str(Path(s.out_dir) / "-".join(changes) or "plain"), training=training,
                                    **{k: v for k, v in changes.items() if k not in names})
            logged, t0 = [], time.perf_counter()
            summary = run_pretraining(s, on_log=logged.append)
            return {"tokens_per_s": window_tokens_per_s(logged), "wall_s": time.perf_counter() - t0,
                    "real_tokens_per_row": summary["tokens_seen"] / (summary["steps"] * s.training.batch_size),
                    "final_loss": summary["final_loss"]}
        return run

    fast = dict(bf16_weights=True)
    variants = [("run_pretraining (the CLI's code path), no switches", through_cli()),
                ("bare step on the same batches (no loading, no logging)",
                 lambda s: bare_step_on_cli_batches(s, device, prof)),
                ("run_pretraining --bf16-weights", through_cli(**fast)),
                ("run_pretraining --collate-workers 4 --bf16-weights", through_cli(collate_workers=4, **fast)),
                ("run_pretraining --per-sequence-attention --bf16-weights",
                 through_cli(per_sequence_attention=True, **fast)),
                ("bare step on the same batches, --bf16-weights",
                 lambda s: bare_step_on_cli_batches(s, device, prof, bf16_weights=True))]
    if options.get("one_doc_per_line"):          # short documents: pack them, several per row
        variants += [("run_pretraining --pack --no-nsp", through_cli(pack=True, nsp=False)),
                     ("run_pretraining --pack --no-nsp --bf16-weights", through_cli(pack=True, nsp=False, **fast))]
    else:
        variants += [("Trainer, prefetch 2 (a collating thread)",
                      lambda s: trainer_run(s, "prefetch", {"prefetch": 2}))]
    return variants


def section_cli(device, prof, budget, workdir: Path) -> list[dict]:
    rows = []
    for name, corpus, options in corpora(prof, workdir):
        s = settings_for(prof, device, corpus, workdir / name.split()[0].lower(), options)
        for label, run in cli_variants(device, prof, options):
            if budget.left() < (0 if prof.smoke else 30):
                rows.append({"corpus": name, "path": label, "skipped": f"time budget ({budget.left():.0f} s left)"})
                continue
            try:
                rows.append({"corpus": name, "path": label, **run(s)})
            except Exception as exc:                  # noqa: BLE001 - reported; the other variants still run
                traceback.print_exc()
                rows.append({"corpus": name, "path": label, "error": f"{type(exc).__name__}: {exc}"[:500]})
            free(device)
        bare = {r["path"].endswith("--bf16-weights"): r.get("tokens_per_s") for r in rows
                if r["corpus"] == name and r["path"].startswith("bare")}
        for r in rows:                                # the CLI vs the bare step with the same switches
            if r["corpus"] == name and "pack" not in r["path"] and bare.get("--bf16-weights" in r["path"]) \
                    and r.get("tokens_per_s") and not r["path"].startswith("Trainer"):
                r["vs_bare_step"] = r["tokens_per_s"] / bare["--bf16-weights" in r["path"]]
    return rows


def section_profile(device, prof, budget, env, pair) -> list[dict]:
    """Where the time of one "bertkit fast" eager step goes (full rows): the host's time to issue
    the step vs the device's busy time, and the kernels that take the most device time."""
    from torch.profiler import ProfilerActivity, profile as torch_profile
    shape, B, T, fill = prof.shapes[0]
    batches = make_batches(3, B, T, fill, pair[0].config.vocab_size)
    c = Contestant("bertkit fast", copy.deepcopy(pair[0]), device, **contestant_options("fast", fill, prof, False))
    prepared = [c.prepare(b) for b in batches]
    for b in prepared:
        c.step(b)
    sync(device)
    honest = honest_timing(c, prepared, device, shape)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    t0 = time.perf_counter()
    with torch_profile(activities=activities) as p:
        issued = []
        for b in prepared:
            t1 = time.perf_counter()
            c.step(b)
            issued.append(time.perf_counter() - t1)
        sync(device)
    wall = (time.perf_counter() - t0) / len(prepared)
    events = p.key_averages()
    device_time = "self_device_time_total" if hasattr(events[0], "self_device_time_total") else "self_cuda_time_total"
    kernels = sorted((e for e in events if str(getattr(e, "device_type", "")).endswith("CUDA")
                      and getattr(e, device_time, 0) > 0), key=lambda e: -getattr(e, device_time))
    busy = sum(getattr(e, device_time) for e in kernels) / 1e3 / len(prepared)           # ms per step
    rows = honest + [{"shape": shape, "what": "one step (profiled)", "ms": 1e3 * wall},
            {"shape": shape, "what": "host: issuing the step", "ms": 1e3 * statistics.median(issued)},
            {"shape": shape, "what": "device: busy", "ms": busy}]
    rows += [{"shape": shape, "what": e.key[:90], "ms": getattr(e, device_time) / 1e3 / len(prepared),
              "calls": e.count // len(prepared)} for e in kernels[:15]]
    del c
    free(device)
    return rows


def honest_timing(c, prepared: list, device, shape: str) -> list[dict]:
    """The step without the profiler (which slows the host), and the host's time to issue it measured
    behind a long GPU sleep (`torch.cuda._sleep`, ~4 steps of device time queued first): the host
    then cannot wait for the device, unless the step reads a device value (a sync), which shows
    as an issue time as long as the sleep.  Issue time ≥ step time: host-bound; else device-bound."""
    sync(device)
    t0 = time.perf_counter()
    for b in prepared:
        c.step(b)
    sync(device)
    step = (time.perf_counter() - t0) / len(prepared)
    issued = []
    for b in prepared:
        if device.type == "cuda":
            torch.cuda._sleep(int(4 * step * 1.5e9))            # cycles at >= 1.5 GHz: >= 4 steps of sleep
        t1 = time.perf_counter()
        c.step(b)
        issued.append(time.perf_counter() - t1)
        sync(device)
    issue = statistics.median(issued)
    return [{"shape": shape, "what": "one step (not profiled)", "ms": 1e3 * step},
            {"shape": shape, "what": "host: issuing the step behind a GPU sleep", "ms": 1e3 * issue},
            {"shape": shape, "what": f"bound by the {'host' if issue >= step else 'device'}", "ms": 1e3 * step}]


# ----------------------------------------------------------------------------- report

COLUMNS = {
    "train": ["shape", "kind", "contestant", "tokens_per_s", "ms_per_step", "tflops", "mfu_spec", "mfu_measured",
              "vs_reference", "first_loss"],
    "inference": ["shape", "kind", "contestant", "sequences_per_s", "ms_per_batch", "vs_reference"],
    "switches": ["shape", "contestant", "tokens_per_s", "ms_per_step", "mfu_spec", "mfu_measured", "vs_plain",
                 "first_loss"],
    "profile": ["shape", "what", "ms", "calls"],
    "cli": ["corpus", "path", "tokens_per_s", "vs_bare_step", "real_tokens_per_row", "wall_s", "final_loss"],
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
    for section in ("train", "inference", "cli", "profile", "compiled", "switches"):
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
        ("cli", lambda: section_cli(device, prof, budget, workdir)),
        ("profile", lambda: section_profile(device, prof, budget, env, pair)),
        ("compiled", lambda: section_train(device, prof, budget, env, pair, "train compiled", prof.compile_backend,
                                           names=prof.compiled, shapes=[prof.shapes[i] for i in prof.compiled_shapes])
         + ([] if prof.smoke else section_inference(device, prof, budget, env, pair, prof.compile_backend))),
        ("switches", lambda: section_switches(device, prof, budget, env, pair)),
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
                        help="only these of: train inference cli compiled profile switches")
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
    fail_if_different(first_loss_comparisons(results))
    return results


def first_loss_comparisons(results: dict) -> list[tuple[str, float, float]]:
    """Every timed contestant's loss on the first batch vs the reference's in the same row group (same
    init, same batch): equal within 1% (bf16 rounding moves it by far less; a wrong model by far more)."""
    comparisons = []
    for section in ("train", "compiled"):
        rows = [r for r in results.get(section) or [] if "first_loss" in r and r.get("first_loss") is not None]
        for r in rows:
            ref = next((q for q in rows if q["contestant"] == "reference" and q["shape"] == r["shape"]
                        and q["kind"] == r["kind"]), None)
            if ref is not None and r is not ref:
                comparisons.append((f"first loss, {section} {r['shape']} {r['kind']}: {r['contestant']}",
                                    abs(r["first_loss"] - ref["first_loss"]), 0.01 * abs(ref["first_loss"])))
    return comparisons


if __name__ == "__main__":
    main()
