"""Fill-mask: what does the masked language model think goes in each [MASK]?

    >>> fill("Love is like the [MASK]. You can't see it but you can feel it", top_k=5)
    [{'score': 0.75, 'token': 3103, 'token_str': 'sun', 'sequence': "love is like the sun. ..."}, ...]

Several [MASK]s in one text give one list per mask (scored independently, as the
reference does). `targets=[...]` restricts the candidates to the given words.

`sequence` is written as the reference writes it (tokens joined by spaces, "##" glued on),
except with a tokenizer that cuts words into morphemes (`morpheme_splitter`, Korean): its
pieces are written together where they were one word in the input ("재미없다", not
"재미 없 다"), from the character offsets of the tokens.
"""
from __future__ import annotations

import torch

from bertkit.common.errors import InputError
from bertkit.modeling import BertForMaskedLM
from bertkit.pipelines.base import Pipeline


class FillMaskPipeline(Pipeline):
    model_class = BertForMaskedLM
    pretraining_head = ("has_mlm_head", "masked-LM", "fill-mask answers")

    @torch.no_grad()
    def __call__(self, inputs, top_k: int = 5, targets=None):
        texts, single = self.as_list(inputs)
        target_ids = self._target_ids(targets)
        results = []
        for start in range(0, len(texts), self.batch_size):
            results.extend(self._batch(texts[start:start + self.batch_size], top_k, target_ids))
        return results[0] if single else results

    def _target_ids(self, targets):
        if targets is None:
            return None
        targets = [targets] if isinstance(targets, str) else list(targets)
        ids = []
        for word in targets:
            pieces = self.tokenizer.tokenize(word)
            if not pieces:
                raise InputError(f"target {word!r} is empty after tokenization")
            ids.append(self.tokenizer.convert_tokens_to_ids(pieces)[0])
        return torch.tensor(sorted(set(ids)), device=self.device)

    def _batch(self, texts, top_k, target_ids):
        as_written = self.tokenizer.morpheme_splitter is not None          # glue morphemes of one word
        enc = self.encode(texts, return_offsets_mapping=True) if as_written else self.encode(texts)
        offsets = enc.pop("offset_mapping", None)                         # [B,T,2] or None
        ids = enc["input_ids"]
        mask_id = self.tokenizer.mask_token_id
        if not bool((ids == mask_id).any(dim=1).all()):
            bad = [t for t, row in zip(texts, ids) if not bool((row == mask_id).any())]
            raise InputError(f"no {self.tokenizer.mask_token} token in input: {bad[0]!r} — put "
                             f"{self.tokenizer.mask_token} where the model should fill in a word")
        logits = self.model(**self.model_inputs(enc)).logits             # [B,T,V]
        results = []
        for i in range(len(texts)):
            positions = (ids[i] == mask_id).nonzero().flatten().tolist()
            spans = None if offsets is None else offsets[i][enc["attention_mask"][i].bool()]   # [T_real,2]
            per_mask = [self._top(ids[i], logits[i, p], p, top_k, target_ids, spans) for p in positions]
            results.append(per_mask[0] if len(per_mask) == 1 else per_mask)
        return results

    def _top(self, row_ids, logits_at, position, top_k, target_ids, spans=None):
        probs = logits_at.float().softmax(-1)                             # [V]
        if target_ids is not None:
            cand_probs = probs[target_ids]
            k = min(top_k, len(target_ids))
            values, order = cand_probs.topk(k)
            token_ids = target_ids[order]
        else:
            values, token_ids = probs.topk(min(top_k, probs.numel()))
        out = []
        real = row_ids[row_ids != self.tokenizer.pad_token_id]
        for score, token_id in zip(values.tolist(), token_ids.tolist()):
            filled = real.clone()
            filled[position] = token_id
            out.append({
                "score": score,
                "token": token_id,
                "token_str": self.tokenizer.decode([token_id]),
                "sequence": (self.tokenizer.decode(filled.tolist(), skip_special_tokens=True) if spans is None
                             else self.tokenizer.decode_as_written(filled, spans)),
            })
        return out
