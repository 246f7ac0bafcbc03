"""Pretraining from raw text, end to end: vocab → shards → BERT → MLM + NSP training.

    run_pretraining(PretrainSettings(files=["corpus.txt"], out_dir="runs/mini", size="mini"))

The output directory holds everything a later step needs:

    out_dir/vocab/          vocab.txt + tokenizer_config.json (trained unless given)
    out_dir/shards/         token ids as numpy memmaps (+ manifest.json)
    out_dir/eval_shards/    every 50th document, held out for MLM accuracy
    out_dir/run/            checkpoints (step-N/), train_log.csv, loss_curve.png
    out_dir/model/          the final model: config.json, model.safetensors, vocab.txt, ...

Running the same command again resumes from the last checkpoint in `out_dir/run`.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch

HELD_OUT_EVERY = 50          # every 50th document goes to the held-out set


@dataclass
class PretrainSettings:
    files: list[str]
    out_dir: str
    size: str = "mini"
    vocab: str | None = None          # an existing vocab directory; None = train one
    vocab_size: int = 8000
    lowercase: bool = True
    strip_accents: bool | None = None  # None: follow lowercase (BERT); False keeps Hangul syllables whole
    morphemes: bool = False
    max_seq_length: int = 128
    steps: int = 1000
    batch_size: int = 32
    grad_accum: int = 1
    learning_rate: float = 5e-4
    warmup_ratio: float = 0.06
    whole_word_mask: bool = False
    nsp: bool = True
    bf16: bool = False
    seed: int = 42
    save_every: int = 200
    eval_every: int = 0               # 0: ten evaluations over the run
    eval_batches: int = 8
    resume: bool = True
    workers: int = 2
    one_doc_per_line: bool = False
    held_out_every: int = HELD_OUT_EVERY
    progress: bool = True
    model_overrides: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- steps

def split_held_out(files: list[str], train_path: Path, eval_path: Path,
                   every: int = HELD_OUT_EVERY, one_doc_per_line: bool = False) -> dict:
    """Stream the documents of `files` into a training file and a held-out file.

    Documents are blank-line separated (or one per line); every `every`-th one
    is held out.  Streaming: memory holds one document at a time.
    """
    from bertkit.text.corpus import iter_documents

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
        raise ValueError(f"the corpus has only {counts['train']} documents; at least {every} are needed to "
                         "hold some out for evaluation (separate documents with a blank line)")
    return counts


def prepare_tokenizer(s: PretrainSettings, out: Path, train_file: Path):
    from bertkit.text.tokenizer import BertTokenizer
    from bertkit.text.vocab import train_vocab

    if s.vocab:
        return BertTokenizer.from_pretrained(s.vocab)
    vocab_dir = out / "vocab"
    if not (vocab_dir / "vocab.txt").exists():
        # Written to a temporary directory and renamed: a crash never leaves half a vocab.
        tmp = out / ".tmp-vocab"
        shutil.rmtree(tmp, ignore_errors=True)
        train_vocab([train_file], vocab_size=s.vocab_size, lowercase=s.lowercase, strip_accents=s.strip_accents,
                    morpheme_splitter="kiwi" if s.morphemes else None, out_dir=tmp)
        shutil.rmtree(vocab_dir, ignore_errors=True)
        tmp.rename(vocab_dir)
    return BertTokenizer.from_pretrained(vocab_dir)


def prepare_shards(files: list[Path], tokenizer, shards_dir: Path, workers: int) -> Path:
    """Build shards once; an existing manifest for the same vocab is reused."""
    from bertkit.data.shards import build_shards, vocab_hash

    manifest = shards_dir / "manifest.json"
    if manifest.exists():
        if json.loads(manifest.read_text()).get("vocab_sha256") == vocab_hash(tokenizer):
            return manifest
        shutil.rmtree(shards_dir)
    return build_shards(files, tokenizer, shards_dir, num_workers=workers)


def build_model(s: PretrainSettings, tokenizer):
    from bertkit.modeling.config import BertConfig
    from bertkit.modeling import BertForPreTraining

    config = BertConfig.preset(s.size, vocab_size=tokenizer.vocab_size,
                               max_position_embeddings=max(512, s.max_seq_length),
                               pad_token_id=tokenizer.pad_token_id, **s.model_overrides)
    torch.manual_seed(s.seed)
    return BertForPreTraining(config)


def fixed_eval_batches(dataset, collate, batch_size: int, count: int) -> list[dict]:
    """A fixed set of masked held-out batches (same masks at every evaluation)."""
    from bertkit.training.trainer import batch_generator

    n = min(len(dataset), batch_size * count)
    batches = []
    for start in range(0, n, batch_size):
        samples = [dataset[i] for i in range(start, min(n, start + batch_size))]
        batches.append(_call_collate(collate, samples, batch_generator(12345, 0, start)))
    return batches


def _call_collate(collate, samples, generator):
    from bertkit.training.trainer import _accepts_generator
    return collate(samples, generator=generator) if _accepts_generator(collate) else collate(samples)


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
        target = labels[labels != -100]                                   # [N]
        predicted = out.prediction_logits.argmax(-1)                      # [N] (masked positions only)
        correct += int((predicted == target).sum())
        total += int(target.numel())
        loss_sum += float(out.mlm_loss) * int(target.numel())
        if "next_sentence_label" in batch:
            nsp_pred = out.seq_relationship_logits.argmax(-1)
            nsp_correct += int((nsp_pred == batch["next_sentence_label"]).sum())
            nsp_total += int(batch["next_sentence_label"].numel())
    result = {"mlm_accuracy": correct / max(1, total), "mlm_loss": loss_sum / max(1, total)}
    if nsp_total:
        result["nsp_accuracy"] = nsp_correct / nsp_total
    return result


# ----------------------------------------------------------------------------- the run

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


def make_datasets(s: PretrainSettings, tokenizer, out: Path):
    from bertkit.data.masking import MlmCollator
    from bertkit.data.nsp import PretrainingDataset

    train_file, eval_file = ensure_split(s, out)
    prepare_shards([train_file], tokenizer, out / "shards", s.workers)
    prepare_shards([eval_file], tokenizer, out / "eval_shards", s.workers)
    train_set = PretrainingDataset(out / "shards", max_seq_length=s.max_seq_length, nsp=s.nsp, seed=s.seed)
    eval_set = PretrainingDataset(out / "eval_shards", max_seq_length=s.max_seq_length, nsp=s.nsp,
                                  seed=s.seed + 1)
    collate = MlmCollator(tokenizer, mlm_probability=0.15, whole_word_mask=s.whole_word_mask, seed=s.seed)
    return train_set, eval_set, collate


def run_pretraining(s: PretrainSettings, on_log=None) -> dict:
    """Train (or resume) and save `out_dir/model`; returns a summary dict."""
    from bertkit.training.trainer import TrainConfig, Trainer, plot_loss_curve

    out = Path(s.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "settings.json").write_text(json.dumps(dataclasses.asdict(s), indent=2))
    tokenizer = prepare_tokenizer(s, out, ensure_split(s, out)[0])
    train_set, eval_set, collate = make_datasets(s, tokenizer, out)
    model = build_model(s, tokenizer)
    eval_batches = fixed_eval_batches(eval_set, collate, s.batch_size, s.eval_batches)
    config = TrainConfig(
        output_dir=str(out / "run"), learning_rate=s.learning_rate, warmup_ratio=s.warmup_ratio,
        max_steps=s.steps, batch_size=s.batch_size, grad_accum=s.grad_accum, bf16=s.bf16, seed=s.seed,
        save_every=s.save_every, log_every=max(1, min(50, s.steps // 20)), progress=s.progress)
    eval_every = s.eval_every or max(1, s.steps // 10)
    trainer = Trainer(model, train_set, collate, config,
                      evaluate=lambda m: pretraining_accuracy(m, eval_batches), eval_every=eval_every,
                      on_log=on_log)
    resumed = s.resume and trainer.resume()
    state = trainer.train()
    if trainer.dist.is_main:
        save_final(trainer.model, tokenizer, out / "model")
        plot_loss_curve(out / "run")
    final_eval = next((r for r in reversed(state.history) if "mlm_accuracy" in r), {})
    return {"out_dir": str(out), "model_dir": str(out / "model"), "steps": state.step, "resumed": bool(resumed),
            "tokens_seen": state.tokens_seen, "final_loss": state.history[-1]["loss"] if state.history else None,
            **{k: v for k, v in final_eval.items() if k in ("mlm_accuracy", "mlm_loss", "nsp_accuracy")}}


def save_final(model, tokenizer, model_dir: Path) -> None:
    """Save model + tokenizer into one directory that every pipeline (and the reference) loads."""
    from bertkit.training.trainer import unwrap
    unwrap(model).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
