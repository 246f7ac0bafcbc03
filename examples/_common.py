"""Shared by the example scripts: the notes' published models, the offline fall-backs, a toy loop.

Every example takes `--model NAME`: a checkpoint folder, "minilm" (the bundled
all-MiniLM-L6-v2) or a Hugging Face Hub name.  The examples of the notes default to
the published model the notes use ("bert-base-uncased", "bert-large-uncased",
"bert-base-multilingual-cased"); when that model cannot be opened (no network and not
in the Hub cache, or `--offline`), the script says so in one line and goes on with
what is on this machine:

* the bundled MiniLM — its vocab *is* bert-base-uncased's (30,522 uncased tokens), so
  tokens and ids are the notes' ones, but it has no pretrained MLM/NSP head: fill-mask and
  next-sentence answers are noise;
* for Korean, a small cased WordPiece vocab trained here in a second or two
  (`korean_vocab`), under a tiny random model where a model is needed.

The fine-tuning examples (05-08, 12, 13) default to MiniLM: they train, so a small
pretrained encoder is enough to show the mechanics on a CPU.
"""
from __future__ import annotations

import argparse
import atexit
import itertools
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BERTKIT_DATA", REPO.parent / "shared" / "data"))
NSMC_RAW = DATA / "ko_corpus" / "nsmc_raw_reviews_unlabeled.txt"
KORQUAD = DATA / "korquad1" / "KorQuAD_v1.0_dev_half_a.json"
#: Published models the notes use (Hub names).
ENGLISH = "bert-base-uncased"
MULTILINGUAL = "bert-base-multilingual-cased"
#: Why a fall-back cannot give the notes' answer, per missing piece.
NO_MLM = "answers are noise without a pretrained MLM head"
NO_NSP = "answers are noise without a pretrained NSP head"
NO_KOREAN = "MiniLM knows no Korean (uncased: Hangul is cut into jamo), so its answers are noise"


def parser(description: str, model_help: str | None = None,
           default_model: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    if model_help is None:
        model_help = ("checkpoint folder, 'minilm' or Hub name (default: " + (
            f"{default_model}: the Hub cache, then one request to the Hub, no retries; if it cannot be opened, "
            "the script says what it uses instead)" if default_model else "MiniLM)"))
    p.add_argument("--model", default=default_model, help=model_help)
    p.add_argument("--offline", action="store_true",
                   help="never ask the Hub: use the Hub cache only (HF_HUB_OFFLINE=1 does the same)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--seed", type=int, default=0)
    return p


def setup(args) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)


def finetune_args(doc: str, argv, steps: int, lr: float):
    """The fine-tuning examples' options (--model, --threads, --seed, --steps, --lr), parsed and applied."""
    p = parser(doc.splitlines()[0])
    p.add_argument("--steps", type=int, default=steps)
    p.add_argument("--lr", type=float, default=lr)
    args = p.parse_args(argv)
    setup(args)
    return args


def with_new_head(head_class, path, **config):
    """`head_class.from_pretrained(path, **config)` without the "newly initialized" warning:
    a fresh task head on a pretrained encoder is exactly what fine-tuning starts from."""
    return head_class.from_pretrained(path, new_head_warning=False, **config)


def minilm() -> Path:
    from bertkit.modeling.checkpoint import find_minilm
    return find_minilm()


# ----------------------------------------------------------------- published models, or the fall-back
def _load_hub_modules() -> None:
    """huggingface_hub >= 1.0 loads its submodules lazily, and bertkit.common.hub reads
    `huggingface_hub.constants` / `.utils` as attributes: import them first."""
    try:
        import huggingface_hub.constants  # noqa: F401
        import huggingface_hub.errors  # noqa: F401
        import huggingface_hub.utils  # noqa: F401
    except ImportError:
        pass                                   # bertkit says "pip install 'bertkit[hub]'" itself


def open_model(name: str | os.PathLike, *, instead: str, fallback: Callable[[], Path], consequence: str,
               offline: bool = False, need_weights: bool = True,
               hint: str = "run once online to see the notes' answer") -> tuple[Path, bool]:
    """(folder, True) when `name` opens — a folder, "minilm", or a Hub name (cache, else download);
    otherwise one line saying why and what is used `instead`, and (fallback(), False)."""
    from bertkit.common.errors import BertkitError
    from bertkit.common.hub import HubError
    from bertkit.modeling.checkpoint import resolve_checkpoint
    _load_hub_modules()
    try:
        return resolve_checkpoint(name, local_files_only=True if offline else None, need_weights=need_weights), True
    except HubError as err:
        if err.reason in ("offline", "unreachable", "incomplete_cache"):
            print(f"offline: {name} is not in the cache; using {instead} — {consequence}" + (f"; {hint}" if hint else ""))
        else:
            print(f"{name} cannot be opened ({err}); using {instead} — {consequence}")
    except BertkitError as err:
        sys.exit(f"error: {err}")
    return fallback(), False


def english_model(args, consequence: str, need_weights: bool = True, **hint) -> tuple[Path, bool]:
    """args.model (default: the notes' English BERT), else the bundled MiniLM."""
    return open_model(args.model, instead="the bundled MiniLM", fallback=minilm, consequence=consequence,
                      offline=args.offline, need_weights=need_weights, **hint)


def tiny_random_model(head: str, seed: int = 0, vocab_dir: Path | None = None, **config) -> Path:
    """A 2-layer, H=64 random `head` model with the vocab of `vocab_dir` (MiniLM's), in a temporary folder."""
    import bertkit
    tok = bertkit.BertTokenizer.from_pretrained(vocab_dir or minilm())
    settings = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                    max_position_embeddings=512)
    cfg = bertkit.BertConfig(vocab_size=tok.vocab_size, **{**settings, **config})
    torch.manual_seed(seed)
    model = getattr(bertkit, head)(cfg)
    out = _temporary(f"bertkit-example-{head}-")
    model.save_pretrained(out, tokenizer=tok)
    print(f"(using a tiny RANDOM {head} with the vocab of {vocab_dir or 'MiniLM'} at {out}; "
          "its predictions are noise — pass a pretrained model to see real ones)")
    return out


def model_dir(args, head_needed: str | None = None) -> Path:
    """--model (folder, "minilm" or Hub name), else MiniLM (when it fits), else a tiny random model."""
    if args.model:
        path, _ = open_model(args.model, instead="the bundled MiniLM", fallback=minilm,
                             consequence="the mechanics are the same", offline=getattr(args, "offline", False))
        return path
    return tiny_random_model(head_needed) if head_needed else minilm()


def _temporary(prefix: str) -> Path:
    out = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    return out


# ----------------------------------------------------------------- Korean
def korean_vocab(out_dir: str | os.PathLike | None = None, lines: int = 3000, vocab_size: int = 16000) -> Path:
    """A cased WordPiece vocab for Korean, trained here: the first `lines` NSMC reviews + the KorQuAD contexts.

    Cased, so Hangul syllables stay syllables (BERT's uncased normalisation strips accents with
    NFD, which cuts 공 into ᄀ ᅩ ᆼ).  Movie reviews alone rarely say 개막 (opening night); the
    KorQuAD Wikipedia paragraphs add that kind of word.  About 2 s on one CPU core.
    """
    from bertkit.text.vocab import train_vocab
    out = Path(out_dir) if out_dir else _temporary("bertkit-example-ko-vocab-")
    if (out / "vocab.txt").is_file():
        return out
    if not NSMC_RAW.is_file():
        sys.exit(f"error: {NSMC_RAW} not found: set BERTKIT_DATA to the shared data folder, or pass --ko-model")
    corpus = _temporary("bertkit-example-ko-corpus-") / "ko.txt"
    with open(NSMC_RAW, encoding="utf-8") as f:
        text = "".join(itertools.islice(f, lines))
    if KORQUAD.is_file():
        data = json.loads(KORQUAD.read_text(encoding="utf-8"))["data"]
        text += "\n".join(p["context"] for article in data for p in article["paragraphs"]) + "\n"
    corpus.write_text(text, encoding="utf-8")
    train_vocab(corpus, vocab_size=vocab_size, do_lower_case=False, limit_alphabet=None, out_dir=out)
    return out


def korean_tokenizer_dir(args) -> tuple[Path, bool]:
    """--ko-model's folder (tokenizer files only), else --ko-vocab, else a Korean vocab trained now."""
    fallback = (lambda: Path(args.ko_vocab)) if getattr(args, "ko_vocab", None) else korean_vocab
    return open_model(args.ko_model, instead="a small Korean WordPiece vocab trained here (NSMC + KorQuAD text)",
                      fallback=fallback, consequence="the split *style* is the same, the exact pieces differ",
                      offline=args.offline, need_weights=False)


def add_korean_options(p: argparse.ArgumentParser, default: str = MULTILINGUAL) -> None:
    p.add_argument("--ko-model", default=default, help=f"Korean model: folder or Hub name (default: {default})")
    p.add_argument("--ko-vocab", default=None, help="folder of a Korean vocab to use when --ko-model cannot be opened")


def train_steps(model, batches, steps: int, lr: float = 5e-5, log_every: int = 10) -> list[float]:
    """The smallest fine-tuning loop: forward with labels → loss → backward → AdamW step."""
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        batch = batches[step % len(batches)]
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
        if step % log_every == 0 or step == steps - 1:
            print(f"  step {step:3d}  loss {losses[-1]:.4f}")
    model.eval()
    return losses


def beside(label: str, ours, notes) -> bool:
    """Print our answer next to the notes' one; True when they are the same."""
    same = ours == notes
    print(f"  {label}\n    ours:  {ours}\n    notes: {notes}   {'(same)' if same else '(differs)'}")
    return same
