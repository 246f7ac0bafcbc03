"""Token classification (NER, POS): a label for every token, grouped into entities.

BERT gives each wordpiece a vector; the tagging head turns it into one score per label
(B-PER, I-PER, B-LOC, ..., O).  Words are often split ("Jeremy" → "jeremy", or
"Nakamura" → "nak ##amura"), so labels must be put back together:

``aggregation_strategy``
  * ``"none"``   — one result per wordpiece: ``entity``, ``score``, ``index``, ``word``, ``start``, ``end``;
  * ``"simple"`` — adjacent pieces with the same entity type (B-X then I-X ...) form one group;
  * ``"first"``  — a word takes the label of its first piece, then words are grouped;
  * ``"max"``    — a word takes the label of its most confident piece;
  * ``"average"``— a word takes the label with the best score averaged over its pieces.

Grouped results have ``entity_group`` (the type without B-/I-), ``score`` (mean over the
group), ``word`` (the pieces glued back together) and ``start``/``end`` character offsets
into the original text, so ``text[start:end]`` is the entity as the user wrote it.
The rules (and outputs) are those of the reference pipeline; a piece "continues a word"
when it starts with ``##``.

    >>> ner = pipeline("ner", model="runs/conll/best", aggregation_strategy="simple")
    >>> ner("Jeremy lives in Paris")
    [{'entity_group': 'PER', 'score': 0.99, 'word': 'jeremy', 'start': 0, 'end': 6},
     {'entity_group': 'LOC', 'score': 0.99, 'word': 'paris', 'start': 16, 'end': 21}]
"""
from __future__ import annotations

import numpy as np
import torch

from bertkit.common.errors import InputError
from bertkit.modeling import BertForTokenClassification
from bertkit.pipelines.base import Pipeline

STRATEGIES = ("none", "simple", "first", "max", "average")
_CLEANUP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
            (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


def tokens_to_string(tokens: list[str]) -> str:
    """Glue wordpieces back into text: "##" pieces join the previous one, others get a space
    (then the reference decoder's clean-up of spaces before punctuation)."""
    text = " ".join(tokens).replace(" ##", "").strip()
    for dirty, clean in _CLEANUP:
        text = text.replace(dirty, clean)
    return text


def split_tag(label: str) -> tuple[str, str]:
    """"B-PER" → ("B", "PER"); "I-PER" → ("I", "PER"); "PER" (no prefix) counts as inside."""
    if label.startswith("B-"):
        return "B", label[2:]
    if label.startswith("I-"):
        return "I", label[2:]
    return "I", label


class TokenClassificationPipeline(Pipeline):
    """`pipe(texts, aggregation_strategy=None, ignore_labels=("O",))` → entities per text."""

    model_class = BertForTokenClassification

    def __init__(self, model, tokenizer=None, device=None, aggregation_strategy: str = "none",
                 ignore_labels=("O",), **kwargs):
        super().__init__(model, tokenizer, device, **kwargs)
        self.aggregation_strategy = self._check_strategy(aggregation_strategy)
        self.ignore_labels = list(ignore_labels)

    @staticmethod
    def _check_strategy(name) -> str:
        name = "none" if name is None else str(getattr(name, "value", name)).lower()
        if name not in STRATEGIES:
            raise InputError(f"aggregation_strategy={name!r}: choose one of {STRATEGIES}")
        return name

    @torch.no_grad()
    def __call__(self, inputs, aggregation_strategy: str | None = None, ignore_labels=None):
        texts, single = self.as_list(inputs)
        for t in texts:
            if not isinstance(t, str):
                raise TypeError(f"token-classification takes strings, got {type(t).__name__}")
        strategy = self._check_strategy(aggregation_strategy or self.aggregation_strategy)
        ignore = self.ignore_labels if ignore_labels is None else list(ignore_labels)
        results = [None] * len(texts)
        for indices in self.length_batches(texts):                 # longest first; back in input order below
            for i, entities in zip(indices, self._batch([texts[i] for i in indices], strategy, ignore)):
                results[i] = entities
        return results[0] if single else results

    def _batch(self, texts, strategy, ignore):
        enc = self.encode(texts, return_offsets_mapping=True, return_special_tokens_mask=True)
        logits = self.model(**self.model_inputs(enc)).logits.float().cpu().numpy()   # [B,T,C]
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        out = []
        for i, text in enumerate(texts):
            n = int(enc["attention_mask"][i].sum())
            pieces = self._pieces(text, enc["input_ids"][i, :n].tolist(), probs[i, :n],
                                  enc["offset_mapping"][i, :n].tolist(), enc["special_tokens_mask"][i, :n].tolist())
            entities = self.aggregate(pieces, strategy)
            out.append([e for e in entities
                        if e.get("entity") not in ignore and e.get("entity_group") not in ignore])
        return out

    def _pieces(self, text, ids, probs, offsets, special) -> list[dict]:
        """One record per real (non-special) wordpiece: token, scores [C], char span, is_subword."""
        tokens = self.tokenizer.convert_ids_to_tokens(ids)
        pieces = []
        for index, (token, token_id, scores, (start, end), is_special) in enumerate(
                zip(tokens, ids, probs, offsets, special)):
            if is_special:
                continue
            is_subword = token.startswith("##")
            if token_id == self.tokenizer.unk_token_id:
                token, is_subword = text[start:end], False     # show what the user wrote
            pieces.append({"word": token, "scores": scores, "start": start, "end": end,
                           "index": index, "is_subword": is_subword})
        return pieces

    # -- from pieces to entities
    def aggregate(self, pieces: list[dict], strategy: str) -> list[dict]:
        if strategy in ("none", "simple"):
            entities = [self._piece_entity(p) for p in pieces]
        else:
            entities = [self._word_entity(word, strategy) for word in self._words(pieces)]
        return entities if strategy == "none" else self.group(entities)

    def _label(self, index: int) -> str:
        id2label = self.model.config.id2label or {}
        return id2label.get(int(index), id2label.get(str(int(index)), f"LABEL_{int(index)}"))

    def _piece_entity(self, piece: dict) -> dict:
        best = int(piece["scores"].argmax())
        return {"entity": self._label(best), "score": float(piece["scores"][best]), "index": piece["index"],
                "word": piece["word"], "start": piece["start"], "end": piece["end"]}

    @staticmethod
    def _words(pieces: list[dict]) -> list[list[dict]]:
        """Pieces → words: a piece that continues a word (##...) joins the previous word."""
        words: list[list[dict]] = []
        for piece in pieces:
            if words and piece["is_subword"]:
                words[-1].append(piece)
            else:
                words.append([piece])
        return words

    def _word_entity(self, pieces: list[dict], strategy: str) -> dict:
        if strategy == "first":
            scores = pieces[0]["scores"]
        elif strategy == "max":
            scores = max(pieces, key=lambda p: p["scores"].max())["scores"]
        else:                                                    # average
            scores = np.nanmean(np.stack([p["scores"] for p in pieces]), axis=0)
        best = int(scores.argmax())
        return {"entity": self._label(best), "score": float(scores[best]),
                "word": tokens_to_string([p["word"] for p in pieces]),
                "start": pieces[0]["start"], "end": pieces[-1]["end"]}

    def group(self, entities: list[dict]) -> list[dict]:
        """Adjacent entities of one type (a B- starts a new group) → one group each."""
        groups: list[list[dict]] = []
        for entity in entities:
            bi, tag = split_tag(entity["entity"])
            if groups and bi != "B" and split_tag(groups[-1][-1]["entity"])[1] == tag:
                groups[-1].append(entity)
            else:
                groups.append([entity])
        return [{"entity_group": g[0]["entity"].split("-", 1)[-1],
                 "score": float(np.nanmean([e["score"] for e in g])),
                 "word": tokens_to_string([e["word"] for e in g]),
                 "start": g[0]["start"], "end": g[-1]["end"]} for g in groups]
