"""Pretraining from raw text, end to end: vocab → shards → BERT → MLM + NSP training.

    run_pretraining(PretrainSettings(files=["corpus.txt"], out_dir="runs/mini", size="mini",
                                     training=PretrainTraining(steps=2000, batch_size=64)))

The output directory holds everything a later step needs:

    out_dir/vocab/          vocab.txt + tokenizer_config.json (trained unless given)
    out_dir/shards/         the corpus as token ids, numpy memmaps (+ manifest.json, source.json)
    out_dir/plans/          the sentence-pair / packing plan of each epoch, memory-mapped
    out_dir/run/            checkpoints (step-N/), train_log.csv, loss_curve.png
    out_dir/model/          the final model: config.json, model.safetensors, vocab.txt, ...

The corpus is read where it is (never copied): every 50th document is held out for
evaluation by its number.  Preparation (`prepare_data`) is idempotent: each stage is
built in a temporary folder and renamed into place, with a record of its inputs (the
corpus files' fingerprint: path, size, modification time, hashes of the first and
last 64 KB; the vocab; the settings that change the ids), so a stage killed half-way
is built again and a finished one is reused.  Under `torchrun` one process prepares
and the others wait (`training.distributed.run_once`).

Running the same command again resumes from the last checkpoint in `out_dir/run`.

Continued pretraining (`from_checkpoint`, the lecture notes' domain-adaptation story):
start from a published or local checkpoint and keep its vocab (put new domain words
into its `[unusedN]` slots first with `bertkit vocab add`); heads the checkpoint lacks
(e.g. the MLM head of a sentence encoder) are newly initialised.  The held-out MLM loss
at step 0 is the starting point the run improves on.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from bertkit.common.defaults import HELD_OUT_EVERY, IGNORE_INDEX, MLM_PROBABILITY
from bertkit.common.devices import resolve_device
from bertkit.common.errors import InputError
from bertkit.common.files import atomic_write_text, removed_on_failure
from bertkit.common.settings import option
from bertkit.data.masking import MlmCollator
from bertkit.data.named import open_split, write_corpus
from bertkit.data.nsp import PretrainingDataset
from bertkit.data.packing import PackedCollator, PackedDataset
from bertkit.data.shards import build_shards, tokenizer_settings, vocab_hash
from bertkit.modeling.config import BertConfig
from bertkit.modeling.heads import BertForPreTraining
from bertkit.text.tokenizer import BertTokenizer
from bertkit.text.vocab import train_vocab
from bertkit.training.checkpoints import latest_checkpoint
from bertkit.training.distributed import DistInfo, init_distributed, run_once
from bertkit.training.budget import parse_duration
from bertkit.training.settings import nested, with_defaults
from bertkit.training.trainer import GPU_ROWS_MULTIPLE, Trainer, batch_generator, plot_loss_curve, unwrap

SIZES = "tiny|mini|small|medium|base|large or L{2..12}-H{128,256,512,768}"

# The training settings of pretraining: TrainingSettings' fields with pretraining's defaults.
DEFAULT_STEPS = 1000      # without --steps and --time-budget
PretrainTraining = with_defaults("PretrainTraining", steps=None, learning_rate=5e-4, warmup_ratio=0.06, save_every=200,
                                 helps={"steps": f"optimizer steps (default {DEFAULT_STEPS}; with --time-budget: at "
                                                 "most this many, no limit when not given)"})


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
    whole_word_mask: bool = option(False, "mask every piece of a chosen word together")
    nsp: bool = option(True, "next-sentence prediction as a second objective")
    pack: bool = option(False, "several short documents per row (attention kept inside each; MLM only, needs "
                        "--no-nsp): full rows for corpora of short texts such as reviews")
    dropout: float | None = option(None, "dropout probability of the hidden layers and attention; default: the "
                                   "model's (0.1 in BERT; 0 is what short runs such as Cramming use)")
    eval_batches: int = option(8, "held-out batches per evaluation")
    workers: int | None = option(None, "processes that tokenize the corpus; default: the usable CPU cores")
    prepare_only: bool = option(False, "build the vocab and data in --out, then stop (e.g. once, before torchrun)")
    prepare_timeout: float = option(120.0, "torchrun: minutes the other processes wait while rank 0 prepares the "
                                    "data")
    one_doc_per_line: bool = option(False, "every line is a document (cut into sentences), e.g. one review per line")
    held_out_every: int = option(HELD_OUT_EVERY, "every Nth document is held out for evaluation")
    training: PretrainTraining = nested(PretrainTraining)
    model_overrides: dict = option(dict, "BertConfig fields to change (library only)", cli=False)
    dataset: str | None = option(None, "pretrain on a data set by name instead of files: NAME or NAME:CONFIG "
                                 "(wikitext:wikitext-103-raw-v1) through the datasets library (pip install "
                                 "'bertkit[datasets]'; streamed), or a local folder; its --text-column is written to "
                                 "<out>/corpus/corpus.txt, one document per row", metavar="NAME[:CONFIG]")
    dataset_split: str = option("train", "--dataset: the split to pretrain on")
    text_column: str = option("text", "--dataset: the column holding the text")

    def __post_init__(self) -> None:
        if not (self.files or self.dataset) or not self.out_dir:
            raise InputError("pretraining needs a corpus: text files (bertkit pretrain FILE ...) or --dataset NAME, "
                             "and --out (where to write)")
        if self.files and self.dataset:
            raise InputError("give the corpus once: text files or --dataset NAME, not both")
        if self.dataset:
            self.one_doc_per_line = True        # the corpus written from a data set has one document per line
        if not self.training.steps and not self.training.time_budget:
            self.training.steps = DEFAULT_STEPS
        if self.pack and self.nsp:
            raise InputError("--pack puts several documents in one row, and next-sentence prediction needs one "
                             "sentence pair per row: add --no-nsp (MLM only) or leave out --pack")


# ----------------------------------------------------------------------------- preparing the data

def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. under a job scheduler)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def corpus_fingerprint(files: list[str]) -> list[dict]:
    """What identifies the corpus files without reading them whole: path, size, modification
    time, and sha256 of the first and last 64 KB."""
    out = []
    for name in files:
        path = Path(name).resolve()
        stat = path.stat()
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
            fh.seek(max(0, stat.st_size - (1 << 16)))
            tail = fh.read()
        out.append({"path": str(path), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                    "sha256_ends": hashlib.sha256(head + tail).hexdigest()})
    return out


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def build_into(final: Path, source: dict, build) -> bool:
    """Build a stage folder once: `build(tmp)` fills a temporary folder, which gets `source.json`
    (what it was built from) and is renamed to `final`.  Returns False (and builds nothing) when
    `final` exists with the same source."""
    if _read_json(final / "source.json") == source:
        return False
    tmp = final.with_name(f".tmp-{final.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    build(tmp)
    atomic_write_text(tmp / "source.json", json.dumps(source, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return True


def vocab_source(s: PretrainSettings, fingerprint: list[dict]) -> dict:
    return {"files": fingerprint, "vocab_size": s.vocab_size, "do_lower_case": s.do_lower_case,
            "strip_accents": s.strip_accents, "morphemes": s.morphemes, "one_doc_per_line": s.one_doc_per_line}


def dataset_corpus(s: PretrainSettings, out: Path, say: Callable[[str], None]) -> list[str]:
    """--dataset: its text column written (once) to out/corpus/corpus.txt, one document per line, streamed."""
    def export(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        split = open_split(s.dataset, s.dataset_split, streaming=True)
        split.require(s.text_column, flags="--text-column")
        say(f"      writing the {s.text_column!r} column of {split.source} to {out / 'corpus'} ...")
        write_corpus(split, s.text_column, tmp / "corpus.txt")
    build_into(out / "corpus", {"dataset": s.dataset, "split": s.dataset_split, "column": s.text_column}, export)
    return [str(out / "corpus" / "corpus.txt")]


def prepare_data(s: PretrainSettings, out: Path, say: Callable[[str], None] = lambda text: None) -> None:
    """Build (or reuse) the vocab and the shards of the corpus in `out` — one process does this."""
    if s.dataset:
        s.files = dataset_corpus(s, out, say)
    fingerprint = corpus_fingerprint(s.files)
    if not (s.from_checkpoint or s.vocab):
        def train(tmp: Path) -> None:
            say(f"      training a {s.vocab_size:,}-token WordPiece vocab on {len(s.files)} file(s) ...")
            train_vocab(s.files, vocab_size=s.vocab_size, do_lower_case=s.do_lower_case,
                        strip_accents=s.strip_accents, morpheme_splitter="kiwi" if s.morphemes else None, out_dir=tmp)
        build_into(out / "vocab", vocab_source(s, fingerprint), train)
    tokenizer = load_tokenizer(s, out)
    source = {"files": fingerprint, "one_doc_per_line": s.one_doc_per_line, "vocab_sha256": vocab_hash(tokenizer),
              "tokenizer": tokenizer_settings(tokenizer)}
    if _read_json(out / "shards" / "source.json") not in (None, source):
        if s.training.resume and latest_checkpoint(out / "run") is not None:
            raise InputError(f"the corpus or the vocab changed since the run in {out} started (its files differ "
                             "from the fingerprint in shards/source.json). Restore them, or start over with "
                             "--no-resume, or write to another --out.")
    workers = s.workers or usable_cores()

    def shard(tmp: Path) -> None:
        say(f"      tokenizing {sum(f['bytes'] for f in fingerprint) / 1e6:,.1f} MB with {workers} process(es) ...")
        build_shards(s.files, tokenizer, tmp, num_workers=workers, one_doc_per_line=s.one_doc_per_line)
    if build_into(out / "shards", source, shard):
        shutil.rmtree(out / "plans", ignore_errors=True)       # plans of other shards are no use
    check_enough_documents(s, out / "shards")
    open_data(s, out)          # epoch 0's plans, built here once: the other processes memory-map them


def check_enough_documents(s: PretrainSettings, shards: Path) -> None:
    documents = json.loads((shards / "manifest.json").read_text())["documents"]
    if documents < s.held_out_every:
        hint = ("" if s.one_doc_per_line else " If every line of your file is a document of its own (a review, "
                "a tweet), pass --one-doc-per-line.")
        raise InputError(f"the corpus has only {documents} document(s); at least {s.held_out_every} are needed to "
                         f"hold some out for evaluation (separate documents with a blank line).{hint}")


def load_tokenizer(s: PretrainSettings, out: Path) -> BertTokenizer:
    """The checkpoint's tokenizer (--from), the given vocab (--vocab), or the one trained in `out/vocab`."""
    return BertTokenizer.from_pretrained(s.from_checkpoint or s.vocab or out / "vocab")


def build_model(s: PretrainSettings, tokenizer) -> BertForPreTraining:
    """A fresh BERT of `s.size` for this vocab, or the checkpoint `s.from_checkpoint` with pretraining heads.

    Without next-sentence prediction the pooler and the NSP head get no gradient: they are
    frozen (kept as they are, and not expected by DistributedDataParallel's gradient exchange).
    """
    torch.manual_seed(s.training.seed)
    overrides = dict(s.model_overrides)
    if s.dropout is not None:
        overrides.update(hidden_dropout_prob=s.dropout, attention_probs_dropout_prob=s.dropout)
    if s.from_checkpoint:
        model = BertForPreTraining.from_pretrained(s.from_checkpoint, **overrides)
        if model.config.max_position_embeddings < s.max_seq_length:
            raise InputError(f"--max-seq-length {s.max_seq_length} is longer than {s.from_checkpoint} can take "
                             f"({model.config.max_position_embeddings} positions); use at most that.")
    else:
        config = BertConfig.preset(s.size, vocab_size=tokenizer.vocab_size,
                                   max_position_embeddings=max(512, s.max_seq_length),
                                   pad_token_id=tokenizer.pad_token_id, **overrides)
        model = BertForPreTraining(config)
    if not s.nsp:
        model.bert.pooler.requires_grad_(False)
        model.cls.seq_relationship.requires_grad_(False)
    return model.train()


def on_gpu(s: PretrainSettings) -> bool:
    """Whether this run trains on a CUDA device (--device, else the GPU when there is one)."""
    return resolve_device(s.training.device).type == "cuda"


@dataclass
class PretrainingData:
    """What training reads: the tokenizer, training and held-out examples, the masking collator."""

    tokenizer: BertTokenizer
    train_set: torch.utils.data.Dataset
    eval_set: torch.utils.data.Dataset
    collate: Callable


def open_data(s: PretrainSettings, out: Path) -> PretrainingData:
    """The prepared data of `out` (read-only: every process opens it): training documents and every
    `held_out_every`-th document held out, as NSP pairs, single segments or packed rows."""
    tokenizer = load_tokenizer(s, out)
    common = dict(max_seq_length=s.max_seq_length, nsp=s.nsp, held_out_every=s.held_out_every,
                  plan_dir=out / "plans")
    train_set = PretrainingDataset(out / "shards", seed=s.training.seed, split="train", **common)
    eval_set = PretrainingDataset(out / "shards", seed=s.training.seed + 1, split="heldout", **common)
    gpu = on_gpu(s)            # rows padded to a multiple of 32: few distinct shapes (see GPU_ROWS_MULTIPLE)
    collate = MlmCollator(tokenizer, mlm_probability=MLM_PROBABILITY, whole_word_mask=s.whole_word_mask,
                          pad_to_multiple_of=32 if gpu and s.max_seq_length % 32 == 0 else None, seed=s.training.seed)
    if s.pack:
        train_set = PackedDataset(train_set, max_seq_length=s.max_seq_length, seed=s.training.seed, plan_dir=out / "plans")
        eval_set = PackedDataset(eval_set, max_seq_length=s.max_seq_length, seed=s.training.seed + 1, plan_dir=out / "plans")
        collate = PackedCollator(collate, unpad_multiple=s.training.unpad_multiple or (GPU_ROWS_MULTIPLE if gpu else 1))
    return PretrainingData(tokenizer, train_set, eval_set, collate)


def prepare_pretraining(s: PretrainSettings, say: Callable[[str], None] = lambda text: None) -> PretrainingData:
    """Step 1 of a run: build (or reuse) the data in `s.out_dir` — once, under torchrun too — and open it."""
    out = Path(s.out_dir)
    info = init_distributed(s.training.device)
    with removed_on_failure(out, enabled=info.is_main):      # a corpus refused: no half-made folder left
        if info.is_main:
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / "settings.json", json.dumps(dataclasses.asdict(s), indent=2))
        run_once(lambda: prepare_data(s, out, say), info, out, "the vocab and data", s.prepare_timeout)
        return open_data(s, out)


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

    def __init__(self, s: PretrainSettings, say: Callable[[str], None] | None, info: DistInfo):
        self.s, self.info = s, info
        self.say = say if say is not None else (lambda text: print(text, file=sys.stderr, flush=True)) \
            if s.training.progress else None
        if not info.is_main:                  # torchrun: one voice
            self.say = None
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
        docs = [d.num_documents for d in (train_set, eval_set)]
        self(f"[2/4] data: {len(train_set):,} training and {len(eval_set):,} held-out {kind} from "
             f"{docs[0]:,} + {docs[1]:,} documents" + (f"; rows {train_set.fill:.0%} full" if self.s.pack else ""))

    def model(self, model, trainer, resumed: bool) -> None:
        c = model.config
        origin = f"continued from {self.s.from_checkpoint}" if self.s.from_checkpoint else f"BERT-{self.s.size}"
        self(f"[3/4] model: {origin} (L={c.num_hidden_layers}, H={c.hidden_size}, A={c.num_attention_heads}), "
             f"{unwrap(model).num_parameters() / 1e6:.1f}M parameters, on {trainer.device}"
             + (f" × {self.info.world} processes (torchrun)" if self.info.world > 1 else ""))
        step, total, budget = trainer.state.step, trainer.total_steps, trainer.budget
        if resumed and step >= total:
            more = "a longer --time-budget" if budget else f"--steps N larger than {step}"
            self(f"      already finished at step {step}; nothing to train — pass {more} to train on, or "
                 "--no-resume to start over")
        elif resumed:
            of = f"{budget.spent(step) / 60:.1f} of {budget.seconds / 60:g} min spent" if budget else f"of {total}"
            self(f"      resuming from step {step} ({of}) in {trainer.run_dir}")
        rows = self.s.training.batch_size * self.s.training.grad_accum * self.info.world
        length = (f"for {(budget.seconds - budget.spent(step)) / 60:.1f} min "
                  f"(--time-budget {self.s.training.time_budget})" if budget else f"{total - step} steps")
        self(f"[4/4] training {length}, steps of {rows} × {self.s.max_seq_length} tokens; held-out MLM / NSP "
             "accuracy as they come:")

    def row(self, row: dict) -> None:
        if not self.first_row_seen and row.get("tokens_per_s") and row["step"] > 0:
            self.first_row_seen = True
            per_step = (self.s.training.batch_size * self.s.training.grad_accum * self.info.world * self.s.max_seq_length
                        / row["tokens_per_s"])
            speed = f"{row['tokens_per_s']:,.0f} tokens/s, MFU {row.get('mfu', 0.0):.1%}"
            if self.s.training.time_budget:
                self(f"      {per_step * 1000:.0f} ms per step ({speed}): ≈ "
                     f"{parse_duration(self.s.training.time_budget) / per_step:,.0f} steps fit the budget")
            else:
                self(f"      ≈ {per_step * self.s.training.steps / 60:.1f} min for {self.s.training.steps} steps "
                     f"at this speed ({speed})")
        if "mlm_accuracy" in row:
            nsp = f"  NSP acc {row['nsp_accuracy']:.1%}" if "nsp_accuracy" in row else ""
            self(f"      step {row['step']:>6}  loss {row['loss']:.3f}  MLM acc {row['mlm_accuracy']:.1%}  "
                 f"MLM loss {row['mlm_loss']:.3f}{nsp}")

    def done(self, model_dir: Path, data: PretrainingData) -> None:
        self(f"model saved to {model_dir} ({(time.perf_counter() - self.t0) / 60:.1f} min). Try it on a "
             f"held-out sentence:\n  bertkit fill-mask \"{held_out_example(data)}\" --model {model_dir}")


def held_out_example(data: PretrainingData) -> str:
    """A sentence of a held-out document with its middle word masked (in the corpus's own language)."""
    ids = [int(i) for i in data.eval_set[0]["input_ids"]]
    sep = data.tokenizer.sep_token_id
    ids = ids[1:ids.index(sep) if sep in ids else len(ids)][:40]          # the first segment, no [CLS]/[SEP]
    tokens = data.tokenizer.convert_ids_to_tokens(ids)
    words = [k for k, t in enumerate(tokens) if not t.startswith("##") and t.isalnum()
             and (k + 1 == len(tokens) or not tokens[k + 1].startswith("##"))]
    if words:
        middle = words[len(words) // 2]
        ids[middle] = data.tokenizer.mask_token_id
    return data.tokenizer.decode(ids).replace('"', "'")


def run_pretraining(s: PretrainSettings, on_log=None, say: Callable[[str], None] | None = None,
                    data: PretrainingData | None = None) -> dict:
    """Prepare the data (unless `data` is given: `prepare_pretraining`), train (or resume), and
    save `out_dir/model`; returns a summary dict.  Under torchrun, only rank 0 speaks and writes."""
    out = Path(s.out_dir)
    info = init_distributed(s.training.device)
    report = StageReport(s, say, info)
    data = data or prepare_pretraining(s, report)
    report.data(data.tokenizer, data.train_set, data.eval_set)
    if s.prepare_only:
        return {"out_dir": str(out), "prepared": True, "train_examples": len(data.train_set),
                "held_out_examples": len(data.eval_set)}
    model = build_model(s, data.tokenizer)
    eval_batches = fixed_eval_batches(data.eval_set, data.collate, s.training.batch_size, s.eval_batches) if info.is_main \
        else []
    def log(row: dict) -> None:
        report.row(row)
        if on_log:
            on_log(row)

    trainer = Trainer(model, data.train_set, data.collate, s.training, out / "run", on_log=log,
                      evaluate=lambda m: pretraining_accuracy(m, eval_batches),
                      eval_every=s.training.eval_every or 0.1)                  # default: 10 evaluations
    resumed = s.training.resume and trainer.resume()
    report.model(model, trainer, resumed)
    state = trainer.train()
    if info.is_main:
        save_final(trainer.model, data.tokenizer, out / "model")
        plot_loss_curve(out / "run")
        report.done(out / "model", data)
    return summary(s, state, resumed)


def summary(s: PretrainSettings, state, resumed: bool) -> dict:
    """What run_pretraining returns: where things are, steps, and the first and last held-out scores."""
    out = Path(s.out_dir)
    evals = [r for r in state.history if "mlm_accuracy" in r]
    last = {k: v for k, v in (evals[-1] if evals else {}).items() if k in ("mlm_accuracy", "mlm_loss", "nsp_accuracy")}
    return {"out_dir": str(out), "model_dir": str(out / "model"), "steps": state.step, "resumed": bool(resumed),
            "tokens_seen": state.tokens_seen, "final_loss": state.history[-1]["loss"] if state.history else None,
            **last, "first_eval": {k: v for k, v in (evals[0] if evals else {}).items() if k != "lr"}}


def save_final(model, tokenizer, model_dir: Path) -> None:
    """Save model + tokenizer into one directory that every pipeline (and the reference) loads."""
    unwrap(model).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
