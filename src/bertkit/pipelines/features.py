"""Feature extraction: token vectors from any layer, sentence vectors by pooling.

The lecture notes' recipe: tokenize "I love Paris" → [CLS] i love paris [SEP],
feed BERT, take each token's vector from the last (or any) encoder layer; for a
sentence vector take [CLS], or better, average (mean-pool) the real tokens.
"""
from __future__ import annotations

import torch

from bertkit.common.errors import InputError
from bertkit.modeling import BertModel
from bertkit.pipelines.base import Pipeline

POOLINGS = ("cls", "mean", "max")


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """[B,T,H] token vectors + [B,T] mask → [B,H] sentence vectors."""
    if how == "cls":
        return hidden[:, 0]
    m = mask.unsqueeze(-1).to(hidden.dtype)                      # [B,T,1]
    if how == "mean":
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    if how == "max":
        return hidden.masked_fill(m == 0, torch.finfo(hidden.dtype).min).max(1).values
    raise InputError(f"unknown pooling {how!r}; choose one of {POOLINGS}")


class FeatureExtractionPipeline(Pipeline):
    """`pipe(texts, layer=-1, pooling=None, normalize=False)`.

    - pooling=None → per text, a [T,H] list of token vectors (real tokens only), or with
      `layer="all"` an [L+1,T,H] stack (embeddings output + every encoder layer);
    - pooling="cls"|"mean"|"max" → one [H] vector per text, optionally L2-normalised.
    Returns torch tensors (CPU); `return_tokens=True` also returns the tokens.
    """

    model_class = BertModel

    @torch.no_grad()
    def __call__(self, inputs, layer=-1, pooling: str | None = None, normalize: bool = False,
                 return_tokens: bool = False, text_pair=None):
        texts, single = self.as_list(inputs)
        pairs = None if text_pair is None else self.as_list(text_pair)[0]
        results = [None] * len(texts)
        for indices in self.length_batches(texts, pairs):          # longest first; back in input order below
            batch_pairs = None if pairs is None else [pairs[i] for i in indices]
            rows = self._batch([texts[i] for i in indices], batch_pairs, layer, pooling, normalize, return_tokens)
            for i, row in zip(indices, rows):
                results[i] = row
        return results[0] if single else results

    def _batch(self, texts, pairs, layer, pooling, normalize, return_tokens):
        enc = self.encode(texts, pairs)
        want_all = layer == "all" or layer != -1
        out = self.model(**self.model_inputs(enc), output_hidden_states=want_all)
        mask = enc["attention_mask"]
        if layer == "all":
            hidden = torch.stack(out.hidden_states, dim=1)          # [B,L+1,T,H]
        elif layer == -1:
            hidden = out.last_hidden_state                          # [B,T,H]
        else:
            hidden = out.hidden_states[layer]
        rows = []
        for i in range(len(texts)):
            n = int(mask[i].sum())
            h = hidden[i] if layer == "all" else hidden[i].unsqueeze(0)   # [L,T,H] (L=1 unless "all")
            if pooling:
                vec = pool(h, mask[i].expand(h.shape[0], -1), pooling)    # [L,H]
                if normalize:
                    vec = torch.nn.functional.normalize(vec, dim=-1)
                item = vec if layer == "all" else vec[0]
            else:
                item = h[:, :n] if layer == "all" else h[0, :n]
            item = item.float().cpu()
            if return_tokens:
                tokens = self.tokenizer.convert_ids_to_tokens(enc["input_ids"][i, :n].tolist())
                item = {"tokens": tokens, "vectors": item}
            rows.append(item)
        return rows
