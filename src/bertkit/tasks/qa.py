"""Extractive question answering (SQuAD, KorQuAD): find the answer span in the context.

BERT reads ``[CLS] question [SEP] context-window [SEP]``; the head gives every token a
start logit and an end logit (`BertForQuestionAnswering`).

Long contexts → windows (as the original BERT `run_squad.py`):
  * the question is cut to `max_query_length` (64) pieces;
  * the context is tokenized *once* with character offsets, then cut into windows of
    at most `max_length - len(question) - 3` pieces; each window starts `doc_stride`
    (128) pieces after the previous one, and the last one reaches the end;
  * training: the answer's first/last piece inside the window, or (0, 0) = [CLS]
    when the answer is not (entirely) in that window.

Back from logits to text (the standard post-processing):
  for every window of a question, take the `n_best` (20) highest start logits and end
  logits; keep pairs with both tokens in the context part, start ≤ end and at most
  `max_answer_length` (30) pieces; score = start_logit + end_logit; the best pair over
  all windows wins and the answer is `context[char_start_of_start : char_end_of_end]`
  — the original characters, so Korean and accents come back untouched.
  (Like Hugging Face's `postprocess_qa_predictions`, no "max context" rule: a span
  seen in two overlapping windows competes with both scores.)
"""
from __future__ import annotations

import warnings
from bisect import bisect_left, bisect_right
from collections import defaultdict
from typing import Sequence

import numpy as np
import torch

from . import metrics as M
from .base import FeatureList, PredictionList, Task, collate_inputs, real_lengths, to_numpy
from .readers import ExampleList, QAExample, ReadReport, read_squad, train_valid_split


class QATask(Task):
    """SQuAD-style extractive QA; `metric="squad"` (word F1) or `"korquad"` (character F1)."""

    family = "qa"
    model_class = "BertForQuestionAnswering"
    main_metric = "f1"

    def __init__(self, name: str = "qa", *, metric: str = "squad", max_query_length: int = 64,
                 doc_stride: int = 128, n_best: int = 20, max_answer_length: int = 30,
                 pad_token_id: int = 0):
        super().__init__(None, pad_token_id)
        if metric not in ("squad", "korquad"):
            raise ValueError(f"unknown QA metric {metric!r}: use 'squad' or 'korquad'")
        self.name = name
        self.metric = metric
        self.max_query_length = max_query_length
        self.doc_stride = doc_stride
        self.n_best = n_best
        self.max_answer_length = max_answer_length

    @property
    def num_labels(self) -> int:
        return 2                     # the QA head has two outputs per token: start and end

    def config_overrides(self) -> dict:
        return {"num_labels": 2}

    def fit_labels(self, examples) -> None:
        return None

    def use_labels_from_config(self, config) -> None:
        self.check_config(config)

    # -- reading -----------------------------------------------------------------------
    def read(self, path, **_) -> ExampleList:
        return read_squad(path)

    def train_valid_split(self, examples, valid_fraction: float = 0.1, seed: int = 42):
        """Split by article, never by question, so no context is in both halves."""
        return train_valid_split(examples, valid_fraction, seed, group=lambda ex: ex.article)

    # -- encoding ----------------------------------------------------------------------
    def encode(self, examples: Sequence[QAExample], tokenizer, max_length: int = 384,
               training: bool = False) -> FeatureList:
        """Windows of every example: {input_ids, token_type_ids, example_index, context_start,
        context_offsets (char span of each context piece in the window) [, start/end_positions]}.

        With `training=True` questions whose first answer cannot be located in the context
        are left out (counted in `features.report`); otherwise every question gets windows.
        """
        report = ReadReport(source=f"{self.name} encode (max_length={max_length}, doc_stride={self.doc_stride})")
        questions = _batch_ids(tokenizer, [ex.question for ex in examples])
        contexts = _tokenize_contexts(tokenizer, examples)
        features = FeatureList(report=report)
        cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
        for i, ex in enumerate(examples):
            query = questions[i][:self.max_query_length]
            if len(questions[i]) > self.max_query_length:
                report.note(f"question longer than max_query_length={self.max_query_length} (cut)", f"id {ex.id}")
            doc_ids, doc_offsets = contexts[ex.context]
            answer = _answer_tokens(ex, doc_offsets) if ex.answer_ok and ex.answer_ok[0] else None
            if training and answer is None:
                report.skip("no usable answer in the context (left out of training)", f"id {ex.id}")
                continue
            room = max_length - len(query) - 3                 # [CLS] question [SEP] window [SEP]
            if room <= 0:
                raise ValueError(f"max_length={max_length} leaves no room for the context after a "
                                 f"{len(query)}-piece question; raise max_length or lower max_query_length")
            windows = doc_windows(len(doc_ids), room, self.doc_stride)
            if len(windows) > 1:
                report.note("context longer than one window (split into windows)", f"id {ex.id}")
            prefix = [cls_id] + query + [sep_id]
            for start, length in windows:
                feature = {"input_ids": prefix + doc_ids[start:start + length] + [sep_id],
                           "token_type_ids": [0] * len(prefix) + [1] * (length + 1),
                           "example_index": i, "context_start": len(prefix),
                           "context_offsets": doc_offsets[start:start + length]}
                feature["start_positions"], feature["end_positions"] = _window_positions(
                    answer, start, length, len(prefix))
                features.append(feature)
        report.examples, report.unit = len(features), f"windows from {len(examples):,} questions"
        return features

    def collate(self, features: Sequence[dict]) -> dict:
        batch = collate_inputs(features, self.pad_token_id)
        if all(f["start_positions"] is not None for f in features):
            batch["start_positions"] = torch.tensor([f["start_positions"] for f in features])   # [B]
            batch["end_positions"] = torch.tensor([f["end_positions"] for f in features])       # [B]
        return batch

    # -- prediction and scoring ----------------------------------------------------------
    def gather(self, output, batch) -> list[tuple[np.ndarray, np.ndarray]]:
        """Model output of one batch → (start_logits [T_i], end_logits [T_i]) per feature."""
        start, end = to_numpy(output.start_logits), to_numpy(output.end_logits)   # [B, T] each
        return [(start[b, :n], end[b, :n]) for b, n in enumerate(real_lengths(batch))]

    def predict(self, outputs: Sequence[tuple], features, examples) -> PredictionList:
        """The best span of each question over all its windows: {"id", "answer", "score", "start", "end"}."""
        report = ReadReport(source=f"{self.name} predict")
        by_example = defaultdict(list)
        for output, feature in zip(outputs, features):
            by_example[feature["example_index"]].append((output, feature))
        predictions = PredictionList(report=report)
        for i, ex in enumerate(examples):
            best = None
            for (start_logits, end_logits), feature in by_example.get(i, []):
                candidate = self.best_span(start_logits, end_logits, feature)
                if candidate is not None and (best is None or candidate[0] > best[0]):
                    best = candidate
            if best is None:
                report.note("no valid answer span (empty answer)", f"id {ex.id}")
                predictions.append({"id": ex.id, "answer": "", "score": None, "start": None, "end": None})
            else:
                score, char_start, char_end = best
                predictions.append({"id": ex.id, "answer": ex.context[char_start:char_end],
                                    "score": float(score), "start": char_start, "end": char_end})
        report.examples = len(predictions)
        return predictions

    def best_span(self, start_logits: np.ndarray, end_logits: np.ndarray, feature: dict):
        """(score, char_start, char_end) of the best valid span in one window, or None.

        The n_best start and end candidates form an n_best × n_best grid of scores; the
        invalid cells are masked and the first maximum (start rank, then end rank) wins.
        """
        first, count = feature["context_start"], len(feature["context_offsets"])
        starts = np.argsort(start_logits)[-1:-self.n_best - 1:-1]          # best first
        ends = np.argsort(end_logits)[-1:-self.n_best - 1:-1]
        s, e = starts[:, None], ends[None, :]
        valid = ((s >= first) & (s < first + count) & (e >= first) & (e < first + count)
                 & (e >= s) & (e - s + 1 <= self.max_answer_length))
        if not valid.any():
            return None
        scores = np.where(valid, start_logits[starts][:, None] + end_logits[ends][None, :], -np.inf)
        k = int(np.argmax(scores))
        i, j = starts[k // len(ends)], ends[k % len(ends)]
        offsets = feature["context_offsets"]
        return scores.flat[k], offsets[i - first][0], offsets[j - first][1]

    def metrics(self, predictions: Sequence[dict], examples: Sequence[QAExample]) -> dict:
        """Exact match and F1 (in %), official SQuAD v1.1 or KorQuAD 1.0 definitions."""
        references = [[a["text"] for a in ex.answers] for ex in examples]
        if any(not r for r in references):
            raise ValueError(f"task {self.name!r}: {sum(not r for r in references)} questions have no "
                             "reference answers and cannot be scored")
        answers = [p["answer"] for p in predictions]
        score = M.korquad_scores if self.metric == "korquad" else M.squad_scores
        return {**score(answers, references), "num_examples": len(examples)}

    def format_prediction(self, prediction: dict, example: QAExample) -> dict:
        return {"id": example.id, "question": example.question, **prediction}


def doc_windows(num_tokens: int, room: int, doc_stride: int) -> list[tuple[int, int]]:
    """(start, length) of each window over `num_tokens` context pieces (original BERT rule)."""
    windows, start = [], 0
    while True:
        length = min(num_tokens - start, room)
        windows.append((start, length))
        if start + length >= num_tokens:
            return windows
        start += min(length, doc_stride)


def _batch_ids(tokenizer, texts: list[str]) -> list[list[int]]:
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []


def _tokenize_contexts(tokenizer, examples) -> dict[str, tuple[list[int], list[tuple[int, int]]]]:
    """Each distinct context → (piece ids, (char_start, char_end) per piece), tokenized once."""
    contexts = list(dict.fromkeys(ex.context for ex in examples))
    if not contexts:
        return {}
    with warnings.catch_warnings():          # long contexts are expected here: they get windows
        warnings.simplefilter("ignore", UserWarning)
        enc = tokenizer(contexts, add_special_tokens=False, return_offsets_mapping=True)
    return {c: (list(ids), [tuple(o) for o in offs])
            for c, ids, offs in zip(contexts, enc["input_ids"], enc["offset_mapping"])}


def _answer_tokens(ex: QAExample, offsets: list[tuple[int, int]]) -> tuple[int, int] | None:
    """First and last context piece that overlap the first answer's characters, or None."""
    char_start = ex.answers[0]["answer_start"]
    char_end = char_start + len(ex.answers[0]["text"])
    ends = [e for _, e in offsets]
    starts = [s for s, _ in offsets]
    first = bisect_right(ends, char_start)          # first piece ending after the answer starts
    last = bisect_left(starts, char_end) - 1        # last piece starting before the answer ends
    if first >= len(offsets) or last < first:
        return None
    return first, last


def _window_positions(answer, start: int, length: int, offset: int) -> tuple[int | None, int | None]:
    """Training target inside one window: token positions of the answer, or (0, 0) = [CLS]."""
    if answer is None:
        return None, None
    first, last = answer
    if first < start or last >= start + length:
        return 0, 0
    return offset + first - start, offset + last - start
