"""Next-sentence prediction: does sentence B follow sentence A?

BERT's NSP head gives two logits for the [CLS] vector: index 0 = "IsNext",
index 1 = "NotNext" (the original labels).  The notes' example:
"I am going outside" → "I will be back after 6" (IsNext) vs
"Where are you come from?" (NotNext).
"""
from __future__ import annotations

import torch

from bertkit.common.errors import InputError
from bertkit.modeling import BertForNextSentencePrediction
from bertkit.pipelines.base import Pipeline

LABELS = ("IsNext", "NotNext")


class NextSentencePipeline(Pipeline):
    """`pipe(("first sentence", "second sentence"))` or a list of such pairs, or
    `pipe("first", text_pair="second")` → {'label', 'score', 'is_next_probability'}."""

    model_class = BertForNextSentencePrediction
    pretraining_head = ("has_nsp_head", "next-sentence", "next-sentence predictions")

    @torch.no_grad()
    def __call__(self, inputs, text_pair=None):
        if text_pair is not None:
            firsts, single = self.as_list(inputs)
            seconds, _ = self.as_list(text_pair)
            pairs = list(zip(firsts, seconds))
        else:
            pairs, single = ([inputs], True) if isinstance(inputs, tuple) else (list(inputs), False)
        for pair in pairs:
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise InputError("next-sentence takes (sentence_a, sentence_b) pairs, "
                                 "or a text and text_pair=")
        results = []
        for start in range(0, len(pairs), self.batch_size):
            chunk = pairs[start:start + self.batch_size]
            enc = self.encode([a for a, _ in chunk], [b for _, b in chunk])
            probs = self.model(**self.model_inputs(enc)).logits.float().softmax(-1)   # [B,2]
            for p in probs.tolist():
                label = int(p[1] > p[0])
                results.append({"label": LABELS[label], "score": p[label], "is_next_probability": p[0]})
        return results[0] if single else results
