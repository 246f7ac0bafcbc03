"""`bertkit quickstart`: the whole idea of BERT, on a fresh machine, in about ten minutes.

1. Corpus   — English prose that ships with Python (its reference docs + stdlib docstrings).
2. Vocab    — a WordPiece vocab trained on it, with BERT's special tokens.
3. Data     — sentence pairs for next-sentence prediction, masks drawn at batch time.
4. Pretrain — a small BERT learns masked-LM + NSP; held-out MLM accuracy is printed as it rises.
5. Use it   — fill-mask and next-sentence examples from the lecture notes.

Nothing is downloaded. Pretraining runs for a time budget (`--minutes`, default 6): the
learning rate warms up and decays over the minutes, not over a step count
(`training.budget`), so the run uses the whole budget whatever the machine's speed.  A few
steps are timed first, to choose between one thread and all of them.  `--steps N` trains
a fixed number of steps instead (reproducible for a given step count and seed).
"""
from __future__ import annotations

import logging
import math
import tempfile
import time
from pathlib import Path

import torch

from bertkit.common.defaults import IGNORE_INDEX
from bertkit.data.builtin_corpus import write_builtin_corpus
from bertkit.modeling.config import BertConfig
from bertkit.pipelines import pipeline
from bertkit.training.pretrain import (PretrainSettings, PretrainTraining, build_model, load_tokenizer, prepare_data,
                                       prepare_pretraining, run_pretraining, save_final)

SEED_FILL_MASK = [
    "Love is like the [MASK]. You can't see it but you can feel it.",
    "Where are you come from? I'm from [MASK].",
]
# Sentences in the style of the training text, where a small model can shine.
DOC_FILL_MASK = [
    "The [MASK] statement is used to raise an exception.",
    "Return a new [MASK] containing the items of the list.",
    "If the file does not exist, an [MASK] is raised.",
]
SEED_NSP = [
    ("I am going outside", "I will be back after 6"),
    ("I am going outside", "Where are you come from?"),
]
DOC_NSP = [
    ("The function returns a list of strings.", "Each string is one line of the file."),
    ("The function returns a list of strings.", "Our friends won't buy this analysis, let alone the next one."),
]


# The recipe, chosen by measuring held-out accuracy at fixed step counts on the built-in corpus
# (sessions 3-4: 28 configurations).  No dropout: a 2-layer model trained for minutes underfits, it
# does not overfit (+3 points of NSP at 1,200 steps).  A wider weight init (0.05 instead of BERT's
# 0.02): the query/key gradients start ~25x larger, so attention leaves its uniform start sooner
# (+2 points of MLM at 1,200 steps; 0.10 was worse).  Batch 32 x 64 tokens, 5% warm-up, and a peak
# learning rate of 1.5e-3: at 4,208 steps (6 minutes on a quiet 2-core VM) held-out MLM / NSP were
# 24.6% / 74.0% at 1e-3, 30.1% / 75.9% at 1.5e-3, 26.0% / 79.4% at 2e-3 and 18.2% / 66.2% at 3e-3.
RECIPE = dict(batch_size=32, learning_rate=1.5e-3, warmup_ratio=0.05)      # + 64-token sequences
MODEL_OVERRIDES = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "initializer_range": 0.05}
BEFORE_AFTER = DOC_FILL_MASK[2]          # shown at step 0 and after training


def say(text: str = "") -> None:
    print(text, flush=True)


def run_quickstart(out_dir: str = "runs/quickstart", minutes: float = 6.0, seed: int = 0,
                   size: str = "tiny", vocab_size: int = 8000, steps: int | None = None) -> dict:
    """Corpus → vocab → data → pretraining → predictions; returns run_pretraining's summary
    plus `seconds`, `threads` and `before_after` (the top-5 for BEFORE_AFTER at step 0 and at the end)."""
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 8)))
    nsp_log = logging.getLogger("bertkit.data.nsp")
    level = nsp_log.level
    nsp_log.setLevel(logging.ERROR)              # the counts are shown in step 3
    try:
        return _run(out_dir, minutes, seed, size, vocab_size, steps)
    finally:
        nsp_log.setLevel(level)


def _run(out_dir: str, minutes: float, seed: int, size: str, vocab_size: int, steps: int | None) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    say("bertkit quickstart — pretrain a small BERT from scratch on Python's own documentation\n")

    corpus = out / "corpus.txt"
    info = write_builtin_corpus(corpus)
    say(f"[1/5] corpus: {info['documents']:,} documents, {info['sentences']:,} sentences "
        f"({info['bytes'] / 1e6:.1f} MB) from Python's reference docs and standard-library docstrings")
    say(f"      one sentence per line, a blank line between documents → {corpus}")

    settings = PretrainSettings(files=[str(corpus)], out_dir=str(out / "bert"), size=size, vocab_size=vocab_size,
                                max_seq_length=64, held_out_every=20, model_overrides=dict(MODEL_OVERRIDES),
                                training=PretrainTraining(steps=steps or 1, seed=seed, save_every=0, progress=False,
                                                       **RECIPE))
    _show_vocab(settings)
    data = prepare_pretraining(settings)
    tokenizer = data.tokenizer
    settings.eval_batches = math.ceil(len(data.eval_set) / settings.training.batch_size)   # every held-out pair
    _show_data(data)
    timing, length = "", f"for {steps} steps of"
    if steps is None:                       # train for the budget: the LR schedule runs on the clock
        _, timing = _steps_for_budget(settings, data, minutes)
        settings.training.steps, settings.training.time_budget = None, f"{minutes:g}m"
        length = f"for {minutes:g} min (--time-budget: warm-up and decay over the time, not a step count), steps of"

    cfg = BertConfig.preset(size, vocab_size=tokenizer.vocab_size)
    say(f"[4/5] pretraining BERT-{size.capitalize()} (L={cfg.num_hidden_layers}, H={cfg.hidden_size}, "
        f"A={cfg.num_attention_heads}, no dropout) {length} {settings.training.batch_size} sequences × "
        f"{settings.max_seq_length} tokens, peak learning rate {settings.training.learning_rate:g}; "
        "loss = masked-LM + next-sentence")
    if timing:
        say(timing)
    before = _fill_before_training(settings, tokenizer)
    say(f"      before training (step 0): {BEFORE_AFTER}\n          → {_top5_line(before)}")
    say(f"      held-out accuracy on the {len(data.eval_set)} sentence pairs of documents the model never trains on "
        "(same masks every time):")
    say(f"      {'step':>6} {'loss':>8} {'MLM acc':>8} {'NSP acc':>8} {'tokens/s':>9} {'MFU':>6}")
    result = run_pretraining(settings, on_log=_print_row, say=lambda text: None, data=data)
    say(f"      model saved to {result['model_dir']} (config.json, model.safetensors, vocab.txt)")

    after = _show_predictions(Path(result["model_dir"]), before, result["steps"])
    elapsed = time.perf_counter() - t_start
    say(f"\ndone in {elapsed / 60:.1f} min. Next: `bertkit fill-mask \"...[MASK]...\" --model {result['model_dir']}`,"
        f" `bertkit pretrain your_corpus.txt --out runs/mine`, and the README's tour.")
    return {**result, "seconds": elapsed, "threads": torch.get_num_threads(),
            "before_after": {"step 0": before, f"step {result['steps']}": after}}


def _show_vocab(settings) -> None:
    """Stage 2: the vocab (trained with the shards: `prepare_data`) and two sentences through it."""
    t0 = time.perf_counter()
    prepare_data(settings, Path(settings.out_dir))
    tok = load_tokenizer(settings, Path(settings.out_dir))
    specials = ", ".join(f"{t}={tok.convert_tokens_to_ids(t)}" for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"))
    say(f"[2/5] WordPiece vocab: {tok.vocab_size:,} tokens in {time.perf_counter() - t0:.0f} s ({specials})")
    for text in ("I love Paris", "Tokenization splits unbelievably long words into pieces."):
        tokens = tok.convert_ids_to_tokens(tok(text)["input_ids"])
        say(f"      {text!r} → {' '.join(tokens)}")


def _steps_for_budget(settings, data, minutes: float) -> tuple[int, str]:
    """Time a few training steps of a scratch model and fit the step count to the budget.

    Returns the step count and a line that says what was measured.
    Both torch's thread count and a single thread are timed, and the faster is kept: on a
    machine where another program keeps a core busy, two threads that wait for each other at
    every operation can be several times slower than one.
    """
    train_set, collate = data.train_set, data.collate
    model = build_model(settings, data.tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    timings = {}
    for threads in sorted({torch.get_num_threads(), 1}, reverse=True):
        torch.set_num_threads(threads)
        timings[threads] = _seconds_per_step(model, optimizer, train_set, collate, settings.training.batch_size)
    threads = min(timings, key=timings.get)
    torch.set_num_threads(threads)
    per_step = timings[threads] * 1.05         # + held-out evaluations and logging
    steps = int(max(50, min(20000, minutes * 60 / per_step)))
    measured = ", ".join(f"{t} thread{'s' if t > 1 else ''}: {1000 * s:.0f} ms" for t, s in timings.items())
    return steps, (f"      timed a training step on this machine ({measured}) → {threads} "
                   f"thread{'s' if threads > 1 else ''}; ≈ {steps} steps fit {minutes:g} min")


def _seconds_per_step(model, optimizer, train_set, collate, batch_size: int, repeats: int = 12) -> float:
    """Seconds of one step (collate + forward + backward + AdamW): the lower quartile of `repeats`
    timed steps after a warm-up step.  Interruptions by other programs only ever add time.  Measured
    against whole runs on a 2-core VM: a median of 6 steps said 100 ms where the run averaged ~80 ms;
    lower quartiles of 12 said 81 and 63 ms where the runs averaged ~75 and ~68 ms."""
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        batch = collate([train_set[(i * batch_size + j) % len(train_set)] for j in range(batch_size)])
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - t0)
    return sorted(times[1:])[len(times[1:]) // 4]


def _fill_before_training(settings, tokenizer) -> list[dict]:
    """The top-5 for BEFORE_AFTER from the very model training starts from (same seed, same init)."""
    with tempfile.TemporaryDirectory() as tmp:
        save_final(build_model(settings, tokenizer), tokenizer, Path(tmp))
        return pipeline("fill-mask", model=tmp, device="cpu")(BEFORE_AFTER, top_k=5)


def _top5_line(top: list[dict]) -> str:
    return ", ".join(f"{r['token_str']} ({r['score']:.2f})" for r in top)


def _show_data(data) -> None:
    tokenizer, train_set, eval_set, collate = data.tokenizer, data.train_set, data.eval_set, data.collate
    stats = getattr(train_set, "stats", {})
    say(f"[3/5] pretraining data: {len(train_set):,} training and {len(eval_set):,} held-out sentence pairs "
        f"(50% true next sentence, 50% random); {stats.get('skipped_single_sentence_documents', 0)} "
        "one-sentence documents cannot give a pair and are used only as random second sentences")
    example = collate([train_set[0]])
    ids = example["input_ids"][0]
    labels = example["labels"][0]
    shown = []
    for i, token in enumerate(tokenizer.convert_ids_to_tokens(ids.tolist())):
        if token == "[PAD]":
            break
        shown.append(f"{token}→{tokenizer.convert_ids_to_tokens([int(labels[i])])[0]}" if labels[i] != IGNORE_INDEX else token)
    say("      one training input (masked positions show input→answer; 15% of tokens, 80% [MASK] / 10% random /"
        " 10% kept):")
    say("      " + " ".join(shown[:60]) + (" ..." if len(shown) > 60 else ""))


def _print_row(row: dict) -> None:
    if "mlm_accuracy" not in row:
        return
    nsp = f"{row['nsp_accuracy']:.1%}" if "nsp_accuracy" in row else "-"
    say(f"      {row['step']:>6} {row['loss']:>8.3f} {row['mlm_accuracy']:>8.1%} {nsp:>8} "
        f"{row['tokens_per_s']:>9.0f} {row.get('mfu', 0.0):>6.1%}")


def _show_predictions(model_dir: Path, before: list[dict], steps: int) -> list[dict]:
    """Stage 5: fill-mask and next-sentence examples; returns the top-5 for BEFORE_AFTER."""
    say("[5/5] try the model")
    fill = pipeline("fill-mask", model=model_dir, device="cpu")
    say("      fill-mask, the lecture notes' examples (a model this small, trained minutes on Python docs,"
        " knows little about love — compare its guesses with BERT-large's 'sun, moon, wind'):")
    after = []
    for text in SEED_FILL_MASK + DOC_FILL_MASK:
        if text == DOC_FILL_MASK[0]:
            say("      fill-mask, sentences like its training text:")
        top = fill(text, top_k=5)
        say(f"        {text}\n          → {_top5_line(top)}")
        if text == BEFORE_AFTER:
            after = top
            say(f"          (step 0, before training: {_top5_line(before)}; now after {steps} steps)")
    nsp = pipeline("next-sentence", model=model_dir, device="cpu")
    say("      next-sentence prediction (P(IsNext)):")
    for a, b in SEED_NSP + DOC_NSP:
        r = nsp((a, b))
        say(f"        {a!r} → {b!r}: {r['label']} ({r['is_next_probability']:.2f})")
    say("      (BERT-base answers the notes' pairs IsNext 0.99999 / NotNext; a 2-layer model trained for minutes "
        "on documentation prose is often wrong on chit-chat — held-out NSP accuracy above is the honest measure)")
    return after
