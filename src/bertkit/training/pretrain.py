"""Pretraining from raw text, end to end: vocab → shards → BERT → MLM + NSP training.

    run_pretraining(PretrainSettings(files=["corpus.txt"], out_dir="runs/mini", size="mini"))

The output directory holds everything a later step needs:

    out_dir/vocab/          vocab.txt + tokenizer_config.json (trained unless given)
    out_dir/shards/         token ids as numpy memmaps (+ manifest.json)
    out_dir/eval_shards/    every 50th document, held out for MLM accuracy
    out_dir/run/            checkpoints (step-N/), train_log.csv, loss_curve.png
    out_dir/model/          the final model: config.json, model.safetensors, vocab.txt, ...

Running the same command again resumes from the last checkpoint in `out_dir/run`.

Continued pretraining (`from_checkpoint`, the lecture notes' domain-adaptation story):
start from a published or local checkpoint and keep its vocab (put new domain words
into its `[unusedN]` slots first with `bertkit vocab add`); heads the checkpoint lacks
(e.g. the MLM head of a sentence encoder) are newly initialised.  The held-out MLM loss
at step 0 is the starting point the run improves on.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from bertkit.common.defaults import HELD_OUT_EVERY, IGNORE_INDEX, MLM_PROBABILITY
from bertkit.common.errors import InputError
from bertkit.common.settings import option
from bertkit.data.masking import MlmCollator
from bertkit.data.nsp import PretrainingDataset
from bertkit.data.packing import PackedCollator, PackedDataset
from bertkit.data.shards import build_shards, vocab_hash
from bertkit.modeling.config import BertConfig
from bertkit.modeling.heads import BertForPreTraining
from bertkit.text.corpus import iter_documents
from bertkit.text.tokenizer import BertTokenizer
from bertkit.text.vocab import train_vocab
from bertkit.training.trainer import GPU_ROWS_MULTIPLE, TrainConfig, Trainer, batch_generator, plot_loss_curve, unwrap

SIZES = "tiny|mini|small|medium|base|large or L{2..12}-H{128,256,512,768}"


@dataclass
class PretrainSettings:
    """Everything `bertkit pretrain` takes; each field is also its command-line option."""

    files: list[str] = option(list, "text files or folders: one sentence per line, a blank line between documents",
                              positional=True, metavar="FILE")
    out_dir: str = option(None, "output folder: vocab/, shards/, run/ (checkpoints, log) and model/",
                          flag="--out", required=True)
    size: str = option("mini", f"model size: {SIZES}")
    from_checkpoint: str | None = option(None, "continue pretraining this checkpoint (folder or Hub name) with its "
                                         "own vocab; --size and --vocab are then not used", flag="--from")
    vocab: str | None = option(None, "an existing vocab folder (vocab.txt); default: train one on the corpus")
    vocab_size: int = option(8000, "size of the vocab to train")
    do_lower_case: bool = option(True, "lower-case the text (BERT 'uncased')", false_flag="--cased")
    strip_accents: bool | None = option(None, "strip accents; default: when lower-casing. Korean: --keep-accents "
                                        "(stripping splits Hangul syllables into jamo)", false_flag="--keep-accents")
    morphemes: bool = option(False, "Korean: cut words at morpheme boundaries (kiwipiepy) before WordPiece")
    max_seq_length: int = option(128, "tokens per training sequence, [CLS] and [SEP]s included")
    steps: int = option(1000, "optimizer steps")
    batch_size: int = option(32, "sequences per micro-batch")
    grad_accum: int = option(1, "micro-batches per optimizer step")
    learning_rate: float = option(5e-4, "peak learning rate", aliases=("--lr",))
    warmup_ratio: float = option(0.06, "share of the steps with a rising learning rate")
    whole_word_mask: bool = option(False, "mask every piece of a chosen word together")
    nsp: bool = option(True, "next-sentence prediction as a second objective")
    pack: bool = option(False, "several short documents per row (attention kept inside each; MLM only, needs "
                        "--no-nsp): full rows for corpora of short texts such as reviews")
    bf16: bool = option(False, "bf16 autocast (GPUs, CPUs with AVX512-BF16/AMX)")
    bf16_weights: bool = option(False, "GPU, with --bf16: bf16 weights in the model, fp32 master weights in AdamW")
    fused_blocks: str | None = option(None, "GPU: fused bias+GELU and dropout+residual+LayerNorm",
                                      choices=("compile", "triton"))
    compile: bool = option(False, "torch.compile the model (static shapes: see --unpad-multiple)")
    unpad_multiple: int | None = option(None, "round the real tokens of a batch up to this multiple (few distinct "
                                        "shapes for the GPU and torch.compile); default: 64 on GPU, off on CPU")
    device: str | None = option(None, "cpu, cuda, cuda:1 ...; default: the GPU when there is one")
    seed: int = option(42, "random seed (data order, masks, init)")
    save_every: int = option(200, "steps between resume checkpoints")
    eval_every: int = option(0, "steps between held-out evaluations; 0: ten over the run")
    eval_batches: int = option(8, "held-out batches per evaluation")
    resume: bool = option(True, "resume from the last checkpoint in --out")
    workers: int = option(2, "processes that tokenize the corpus")
    one_doc_per_line: bool = option(False, "every line is a document (cut into sentences), e.g. one review per line")
    held_out_every: int = option(HELD_OUT_EVERY, "every Nth document is held out for evaluation")
    progress: bool = option(True, "progress bar and stage messages", cli=False)
    model_overrides: dict = option(dict, "BertConfig fields to change (library only)", cli=False)

    def __post_init__(self) -> None:
        if not self.files or not self.out_dir:
            raise InputError("PretrainSettings needs files=[...] (the corpus) and out_dir= (where to write)")
        if self.pack and self.nsp:
            raise InputError("--pack puts several documents in one row, and next-sentence prediction needs one "
                             "sentence pair per row: add --no-nsp (MLM only) or leave out --pack")


# ----------------------------------------------------------------------------- steps

def split_held_out(files: list[str], train_path: Path, eval_path: Path,
                   every: int = HELD_OUT_EVERY, one_doc_per_line: bool = False) -> dict:
    """Stream the documents of `files` into a training file and a held-out file.

    Documents are blank-line separated (or one per line); every `every`-th one
    is held out.  Streaming: memory holds one document at a time.
    """
    counts = {"train": 0, "eval": 0}
    with open(train_path, "w", encoding="utf-8") as train, open(eval_path, "w", encoding="utf-8") as held:
        n = 0
        for path in files:
            for doc in iter_documents(path, one_doc_per_line=one_doc_per_line):
                target, key = (held, "eval") if n % every == every - 1 else (train, "train")
                target.write("\n".join(doc) + "\n\n")
                counts[key] += 1
                n += 1
    if counts["eval"] == 0:
        hint = ("" if one_doc_per_line else " If every line of your file is a document of its own (a review, "
                "a tweet), pass --one-doc-per-line.")
        raise InputError(f"the corpus has only {counts['train']} document(s); at least {every} are needed to hold "
                         f"some out for evaluation (separate documents with a blank line).{hint}")
    return counts


def ensure_split(s: PretrainSettings, out: Path) -> tuple[Path, Path]:
    """Split the corpus into training and held-out documents once (kept for resumes)."""
    train_file, eval_file = out / "corpus.train.txt", out / "corpus.heldout.txt"
    marker = out / "split.json"
    if not marker.exists():
        out.mkdir(parents=True, exist_ok=True)
        counts = split_held_out(s.files, train_file, eval_file, every=s.held_out_every,
                                one_doc_per_line=s.one_doc_per_line)
        marker.write_text(json.dumps(counts))
    return train_file, eval_file


def prepare_tokenizer(s: PretrainSettings, out: Path, train_file: Path) -> BertTokenizer:
    """The checkpoint's tokenizer (--from), the given vocab (--vocab), or a vocab trained on the corpus."""
    if s.from_checkpoint or s.vocab:
        return BertTokenizer.from_pretrained(s.from_checkpoint or s.vocab)
    vocab_dir = out / "vocab"
    if not (vocab_dir / "vocab.txt").exists():
        # Written to a temporary directory and renamed: a crash never leaves half a vocab.
        tmp = out / ".tmp-vocab"
        shutil.rmtree(tmp, ignore_errors=True)
        train_vocab([train_file], vocab_size=s.vocab_size, do_lower_case=s.do_lower_case, strip_accents=s.strip_accents,
                    morpheme_splitter="kiwi" if s.morphemes else None, out_dir=tmp)
        shutil.rmtree(vocab_dir, ignore_errors=True)
        tmp.rename(vocab_dir)
    return BertTokenizer.from_pretrained(vocab_dir)


def prepare_shards(files: list[Path], tokenizer, shards_dir: Path, workers: int) -> Path:
    """Build shards once; an existing manifest for the same vocab is reused."""
    manifest = shards_dir / "manifest.json"
    if manifest.exists():
        if json.loads(manifest.read_text()).get("vocab_sha256") == vocab_hash(tokenizer):
            return manifest
        shutil.rmtree(shards_dir)
    return build_shards(files, tokenizer, shards_dir, num_workers=workers)


def build_model(s: PretrainSettings, tokenizer) -> BertForPreTraining:
    """A fresh BERT of `s.size` for this vocab, or the checkpoint `s.from_checkpoint` with pretraining heads."""
    torch.manual_seed(s.seed)
    if s.from_checkpoint:
        model = BertForPreTraining.from_pretrained(s.from_checkpoint, **s.model_overrides)
        if model.config.max_position_embeddings < s.max_seq_length:
            raise InputError(f"--max-seq-length {s.max_seq_length} is longer than {s.from_checkpoint} can take "
                             f"({model.config.max_position_embeddings} positions); use at most that.")
        return model.train()
    config = BertConfig.preset(s.size, vocab_size=tokenizer.vocab_size,
                               max_position_embeddings=max(512, s.max_seq_length),
                               pad_token_id=tokenizer.pad_token_id, **s.model_overrides)
    return BertForPreTraining(config)


def on_gpu(s: PretrainSettings) -> bool:
    """Whether this run trains on a CUDA device (--device, else the GPU when there is one)."""
    return torch.device(s.device).type == "cuda" if s.device else torch.cuda.is_available()


def make_datasets(s: PretrainSettings, tokenizer, out: Path):
    """(training pairs, held-out pairs, the masking collator) — shards built once and reused."""
    train_file, eval_file = ensure_split(s, out)
    prepare_shards([train_file], tokenizer, out / "shards", s.workers)
    prepare_shards([eval_file], tokenizer, out / "eval_shards", s.workers)
    train_set = PretrainingDataset(out / "shards", max_seq_length=s.max_seq_length, nsp=s.nsp, seed=s.seed)
    eval_set = PretrainingDataset(out / "eval_shards", max_seq_length=s.max_seq_length, nsp=s.nsp,
                                  seed=s.seed + 1)
    gpu = on_gpu(s)            # rows padded to a multiple of 32: few distinct shapes (see GPU_ROWS_MULTIPLE)
    collate = MlmCollator(tokenizer, mlm_probability=MLM_PROBABILITY, whole_word_mask=s.whole_word_mask,
                          pad_to_multiple_of=32 if gpu and s.max_seq_length % 32 == 0 else None, seed=s.seed)
    if s.pack:
        train_set = PackedDataset(train_set, max_seq_length=s.max_seq_length, seed=s.seed)
        eval_set = PackedDataset(eval_set, max_seq_length=s.max_seq_length, seed=s.seed + 1)
        collate = PackedCollator(collate, unpad_multiple=s.unpad_multiple or (GPU_ROWS_MULTIPLE if gpu else 1))
    return train_set, eval_set, collate


def fixed_eval_batches(dataset, collate, batch_size: int, count: int) -> list[dict]:
    """A fixed set of masked held-out batches (same masks at every evaluation)."""
    n = min(len(dataset), batch_size * count)
    batches = []
    for start in range(0, n, batch_size):
        samples = [dataset[i] for i in range(start, min(n, start + batch_size))]
        batches.append(collate(samples, generator=batch_generator(12345, 0, start)))
    return batches


@torch.no_grad()
def pretraining_accuracy(model, batches: list[dict]) -> dict:
    """Held-out MLM accuracy (over masked positions), MLM loss, and NSP accuracy."""
    device = next(model.parameters()).device
    correct = total = nsp_correct = nsp_total = 0
    loss_sum = 0.0
    for batch in batches:
        batch = {k: v.to(device) for k, v in batch.items()}
        out = model(**batch)
        labels = batch["labels"]
        target = labels[labels != IGNORE_INDEX]                           # [N]
        predicted = out.prediction_logits.argmax(-1)                      # [N] (masked positions only)
        correct += int((predicted == target).sum())
        total += int(target.numel())
        loss_sum += float(out.mlm_loss) * int(target.numel())
        if "next_sentence_label" in batch and out.seq_relationship_logits is not None:
            nsp_pred = out.seq_relationship_logits.argmax(-1)
            nsp_correct += int((nsp_pred == batch["next_sentence_label"]).sum())
            nsp_total += int(batch["next_sentence_label"].numel())
    result = {"mlm_accuracy": correct / max(1, total), "mlm_loss": loss_sum / max(1, total)}
    if nsp_total:
        result["nsp_accuracy"] = nsp_correct / nsp_total
    return result


# ----------------------------------------------------------------------------- the run

class StageReport:
    """What the run says as it goes: stages, held-out scores as they come, where the model went."""

    def __init__(self, s: PretrainSettings, say: Callable[[str], None] | None):
        self.s = s
        self.say = say if say is not None else (lambda text: print(text, file=sys.stderr, flush=True)) \
            if s.progress else None
        self.t0 = time.perf_counter()
        self.first_row_seen = False

    def __call__(self, text: str) -> None:
        if self.say:
            self.say(text)

    def data(self, tokenizer, train_set, eval_set) -> None:
        asked = "" if self.s.vocab or self.s.from_checkpoint or tokenizer.vocab_size >= self.s.vocab_size else (
            f" (asked for {self.s.vocab_size:,}: the corpus has fewer distinct pieces)")
        self(f"[1/4] vocab: {tokenizer.vocab_size:,} tokens{asked}")
        kind = ("rows of packed documents (MLM only)" if self.s.pack else
                "sentence pairs, 50% true next sentence" if self.s.nsp else "sequences, no NSP")
        docs = [getattr(d, "base", d).corpus.num_documents for d in (train_set, eval_set)]
        self(f"[2/4] data: {len(train_set):,} training and {len(eval_set):,} held-out {kind} from "
             f"{docs[0]:,} + {docs[1]:,} documents" + (f"; rows {train_set.fill:.0%} full" if self.s.pack else ""))

    def model(self, model, trainer, resumed: bool) -> None:
        c = model.config
        origin = f"continued from {self.s.from_checkpoint}" if self.s.from_checkpoint else f"BERT-{self.s.size}"
        self(f"[3/4] model: {origin} (L={c.num_hidden_layers}, H={c.hidden_size}, A={c.num_attention_heads}), "
             f"{unwrap(model).num_parameters() / 1e6:.1f}M parameters, on {trainer.device}")
        step, total = trainer.state.step, trainer.total_steps
        if resumed and step >= total:
            self(f"      already finished at step {step} (of {total}); nothing to train — "
                 f"pass --steps N larger than {step} to train on, or --no-resume to start over")
        elif resumed:
            self(f"      resuming from step {step} (of {total}) in {trainer.run_dir}")
        self(f"[4/4] training {total - step} steps of {self.s.batch_size * self.s.grad_accum} × "
             f"{self.s.max_seq_length} tokens; held-out MLM / NSP accuracy as they come:")

    def row(self, row: dict) -> None:
        if not self.first_row_seen and row.get("tokens_per_s") and row["step"] > 0:
            self.first_row_seen = True
            per_step = self.s.batch_size * self.s.grad_accum * self.s.max_seq_length / row["tokens_per_s"]
            self(f"      ≈ {per_step * self.s.steps / 60:.1f} min for {self.s.steps} steps at this speed")
        if "mlm_accuracy" in row:
            nsp = f"  NSP acc {row['nsp_accuracy']:.1%}" if "nsp_accuracy" in row else ""
            self(f"      step {row['step']:>6}  loss {row['loss']:.3f}  MLM acc {row['mlm_accuracy']:.1%}  "
                 f"MLM loss {row['mlm_loss']:.3f}{nsp}")

    def done(self, model_dir: Path) -> None:
        self(f"model saved to {model_dir} ({(time.perf_counter() - self.t0) / 60:.1f} min). Try it:\n"
             f"  bertkit fill-mask \"The capital of France is [MASK].\" --model {model_dir}")


def run_pretraining(s: PretrainSettings, on_log=None, say: Callable[[str], None] | None = None) -> dict:
    """Train (or resume) and save `out_dir/model`; returns a summary dict."""
    out = Path(s.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "settings.json").write_text(json.dumps(dataclasses.asdict(s), indent=2))
    report = StageReport(s, say)
    tokenizer = prepare_tokenizer(s, out, ensure_split(s, out)[0])
    train_set, eval_set, collate = make_datasets(s, tokenizer, out)
    report.data(tokenizer, train_set, eval_set)
    model = build_model(s, tokenizer)
    eval_batches = fixed_eval_batches(eval_set, collate, s.batch_size, s.eval_batches)
    config = TrainConfig(
        output_dir=str(out / "run"), learning_rate=s.learning_rate, warmup_ratio=s.warmup_ratio,
        max_steps=s.steps, batch_size=s.batch_size, grad_accum=s.grad_accum, bf16=s.bf16, seed=s.seed,
        save_every=s.save_every, log_every=max(1, min(50, s.steps // 20)), progress=s.progress,
        bf16_weights=s.bf16_weights, fused_blocks=s.fused_blocks, compile=s.compile, unpad_plan=s.unpad_multiple)

    def log(row: dict) -> None:
        report.row(row)
        if on_log:
            on_log(row)

    trainer = Trainer(model, train_set, collate, config, evaluate=lambda m: pretraining_accuracy(m, eval_batches),
                      eval_every=s.eval_every or max(1, s.steps // 10), on_log=log, device=s.device)
    resumed = s.resume and trainer.resume()
    report.model(model, trainer, resumed)
    state = trainer.train()
    if trainer.dist.is_main:
        save_final(trainer.model, tokenizer, out / "model")
        plot_loss_curve(out / "run")
        report.done(out / "model")
    evals = [r for r in state.history if "mlm_accuracy" in r]
    return {"out_dir": str(out), "model_dir": str(out / "model"), "steps": state.step, "resumed": bool(resumed),
            "tokens_seen": state.tokens_seen, "final_loss": state.history[-1]["loss"] if state.history else None,
            **{k: v for k, v in (evals[-1] if evals else {}).items() if k in ("mlm_accuracy", "mlm_loss",
                                                                                "nsp_accuracy")},
            "first_eval": {k: v for k, v in (evals[0] if evals else {}).items() if k != "lr"}}


def save_final(model, tokenizer, model_dir: Path) -> None:
    """Save model + tokenizer into one directory that every pipeline (and the reference) loads."""
    unwrap(model).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
