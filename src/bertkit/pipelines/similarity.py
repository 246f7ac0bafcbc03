"""Sentence similarity: how close in meaning is a sentence to each of some candidates?

The recipe of sentence-embedding models such as all-MiniLM-L6-v2: run BERT, average
the vectors of the real tokens (mean pooling — better than [CLS] for this), scale
each average to length 1; then the cosine similarity of two sentences is just the
dot product of their vectors, from -1 (opposite) through 0 (unrelated) to 1 (same).

    >>> sim = pipeline("sentence-similarity", model=minilm_dir)
    >>> sim("A man is eating food.", ["A man is eating a meal.", "A plane is taking off."])
    [0.94, 0.05]

`embed(texts)` gives the [N,H] matrix of normalized vectors itself (used by
`bertkit.apps.search`).  Texts are sorted by length before batching, so a batch holds
texts of similar length and little compute is spent on padding; the result comes
back in the caller's order.
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from bertkit.common.errors import InputError
from bertkit.modeling import BertModel
from bertkit.pipelines.base import Pipeline
from bertkit.pipelines.features import pool


class SentenceSimilarityPipeline(Pipeline):
    """`pipe(source, candidates)` → cosine similarity of `source` with each candidate
    (a list of floats in the candidates' order).  `pipe.embed(texts)` → [N,H] float32 array."""

    model_class = BertModel

    def __init__(self, model, tokenizer=None, device=None, pooling: str = "mean", **kwargs):
        super().__init__(model, tokenizer, device, **kwargs)
        self.pooling = pooling

    @torch.no_grad()
    def __call__(self, source, candidates=None):
        if isinstance(source, dict):
            source, candidates = source.get("source_sentence"), source.get("sentences")
        if not isinstance(source, str):
            raise TypeError(f"source must be a string, got {type(source).__name__}")
        if candidates is None:
            raise InputError("sentence-similarity needs candidates: pipe(source, [sentence, ...])")
        candidates = [candidates] if isinstance(candidates, str) else list(candidates)
        if not candidates:
            return []
        vectors = self.embed([source] + candidates)                     # [1+N,H]
        return (vectors[1:] @ vectors[0]).astype(float).tolist()

    @torch.no_grad()
    def embed(self, texts, batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        """Normalized mean-pooled vectors, [N,H] float32, in the order of `texts`."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"text #{i} is {type(t).__name__}, expected a string")
        size = batch_size or self.batch_size
        hidden = self.model.config.hidden_size
        out = np.zeros((len(texts), hidden), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))   # similar lengths together
        bar = _progress(len(texts), progress)
        for start in range(0, len(order), size):
            index = order[start:start + size]
            enc = self.encode([texts[i] for i in index])
            h = self.model(**self.model_inputs(enc)).last_hidden_state       # [B,T,H]
            vec = pool(h.float(), enc["attention_mask"], self.pooling)      # [B,H]
            vec = torch.nn.functional.normalize(vec, dim=-1)
            out[index] = vec.cpu().numpy()
            if bar is not None:
                bar.update(len(index))
        if bar is not None:
            bar.close()
        return out


def _progress(total: int, show: bool):
    if not show:
        return None
    return tqdm(total=total, unit="text", desc="embedding")
