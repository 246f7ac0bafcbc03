"""Small models for pipeline tests: random weights over the real MiniLM vocab, saved with bertkit.

Saving goes through the real `save_pretrained` path so that the reference implementation
can load the very same directory (config.json + vocab.txt + model.safetensors).
"""
from __future__ import annotations

from pathlib import Path

import torch

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            max_position_embeddings=128)


def tiny_model_dir(out: Path, head: str, vocab_dir: Path, seed: int = 0, scale: float = 1.0, **config) -> Path:
    """Save a seeded random `head` model (e.g. "BertForMaskedLM") with the vocab of `vocab_dir`.

    `scale` multiplies the classifier/QA head weights so that predictions are not all the
    same label (random small heads make near-uniform scores).
    """
    import bertkit
    tok = bertkit.BertTokenizer.from_pretrained(vocab_dir)
    cfg = bertkit.BertConfig(vocab_size=tok.vocab_size, **{**TINY, **config})
    torch.manual_seed(seed)
    model = getattr(bertkit, head)(cfg).eval()
    with torch.no_grad():
        for name in ("classifier", "qa_outputs"):
            layer = getattr(model, name, None)
            if layer is not None:
                layer.weight.mul_(scale)
                layer.bias.normal_(0, 0.1)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, tokenizer=tok)
    return out
