"""Shared by the example scripts: default models, a tiny random model made on the fly, a toy loop.

Every example takes `--model DIR`.  Without it, the real all-MiniLM-L6-v2 weights are used
where they fit (tokenizer, embeddings, fine-tuning from a pretrained encoder); where a
head MiniLM does not have is needed (fill-mask, next-sentence), a tiny *random* model
with the MiniLM vocabulary is made on the fly — the mechanics are real, the predictions
are noise until you pass a pretrained model (e.g. `bertkit quickstart` → runs/quickstart/model).
"""
from __future__ import annotations

import argparse
import atexit
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def parser(description: str, model_help: str = "checkpoint directory (default: MiniLM)") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model", default=None, help=model_help)
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return head_class.from_pretrained(path, **config)


def minilm() -> Path:
    from bertkit.modeling.checkpoint import find_minilm
    return find_minilm()


def tiny_random_model(head: str, seed: int = 0, **config) -> Path:
    """A 2-layer, H=64 random `head` model with the MiniLM vocab, saved to a temporary directory."""
    import bertkit
    vocab_dir = minilm()
    tok = bertkit.BertTokenizer.from_pretrained(vocab_dir)
    settings = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                    max_position_embeddings=512)
    cfg = bertkit.BertConfig(vocab_size=tok.vocab_size, **{**settings, **config})
    torch.manual_seed(seed)
    model = getattr(bertkit, head)(cfg)
    out = Path(tempfile.mkdtemp(prefix=f"bertkit-example-{head}-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    model.save_pretrained(out, tokenizer=tok)
    print(f"(no --model given: using a tiny RANDOM {head} with the MiniLM vocab at {out}; "
          "its predictions are noise — pass a pretrained model to see real ones)")
    return out


def model_dir(args, head_needed: str | None = None) -> Path:
    """--model, else MiniLM (when it fits), else a tiny random model with the needed head."""
    if args.model:
        path = Path(args.model)
        if not (path / "config.json").is_file():
            sys.exit(f"error: {path} is not a model directory (no config.json)")
        return path
    return tiny_random_model(head_needed) if head_needed else minilm()


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
