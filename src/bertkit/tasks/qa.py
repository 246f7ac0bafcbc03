"""Extractive question answering (SQuAD, KorQuAD): find the answer span in the context.

BERT reads ``[CLS] question [SEP] context-window [SEP]``; the head gives every token a
start logit and an end logit (`BertForQuestionAnswering`).  The settings carry the names
of the original BERT `run_squad.py` (defaults in `bertkit.common.defaults`):
`max_seq_length` (384), `doc_stride` (128), `max_query_length` (64),
`max_answer_length` (30), `n_best_size` (20), `version_2_with_negative`,
`null_score_diff_threshold` (0.0).

Long contexts → windows (as `run_squad.py`):
  * the question is cut to `max_query_length` pieces;
  * the context is tokenized *once* with character offsets, then cut into windows of
    at most `max_seq_length - len(question) - 3` pieces; each window starts `doc_stride`
    pieces after the previous one, and the last one reaches the end;
  * training: the answer's first/last piece inside the window, or (0, 0) = [CLS]
    when the answer is not (entirely) in that window.

Back from logits to text (the standard post-processing):
  for every window of a question, take the `n_best_size` highest start logits and end
  logits; keep pairs with both tokens in the context part, start ≤ end and at most
  `max_answer_length` pieces; score = start_logit + end_logit; the best pair over
  all windows wins and the answer is `context[char_start_of_start : char_end_of_end]`
  — the original characters, so Korean and accents come back untouched.
  (Like Hugging Face's `postprocess_qa_predictions`, no "max context" rule: a span
  seen in two overlapping windows competes with both scores.)

Unanswerable questions (SQuAD 2.0, `version_2_with_negative=True`, task ``squad2``):
  * training: every window of an unanswerable question targets [CLS] (0, 0), like the
    windows of an answerable one that do not hold its answer;
  * prediction: the null score is start_logit[CLS] + end_logit[CLS], the *lowest* over
    the question's windows; the answer is "" when
    ``null_score − best span score > null_score_diff_threshold``;
  * scoring: the official evaluate-v2.0 numbers (`metrics.squad_v2_scores`), with the
    best threshold for this evaluation set (`best_f1_thresh`; `tune_threshold` takes it).
"""
from __future__ import annotations

import math
import warnings
from bisect import bisect_left, bisect_right
from collections import defaultdict
from typing import Sequence

import numpy as np
import torch

from bertkit.common.defaults import (DOC_STRIDE, MAX_ANSWER_LENGTH, MAX_QUERY_LENGTH, N_BEST_SIZE,
                                     QA_MAX_SEQ_LENGTH)
from bertkit.common.errors import InputError
from bertkit.text.names import renamed

from . import metrics as M
from .base import FeatureList, PredictionList, Task, clip, collate_inputs, real_lengths, to_numpy
from .readers import ExampleList, QAExample, ReadReport, train_valid_split
from .squad import read_squad

NO_ANSWER = "no answer"          # training target of an unanswerable question: [CLS] in every window


class QATask(Task):
    """SQuAD-style extractive QA; `metric="squad"` (word F1) or `"korquad"` (character F1);
    `version_2_with_negative=True` for SQuAD 2.0 data with unanswerable questions."""

    family = "qa"
    model_class = "BertForQuestionAnswering"
    main_metric = "f1"
    pipeline_tag = "question-answering"
    default_max_seq_length = QA_MAX_SEQ_LENGTH

    @renamed(n_best="n_best_size")
    def __init__(self, name: str = "qa", *, metric: str = "squad", version_2_with_negative: bool = False,
                 null_score_diff_threshold: float = 0.0, max_seq_length: int = QA_MAX_SEQ_LENGTH,
                 doc_stride: int = DOC_STRIDE, max_query_length: int = MAX_QUERY_LENGTH,
                 max_answer_length: int = MAX_ANSWER_LENGTH, n_best_size: int = N_BEST_SIZE,
                 pad_token_id: int = 0):
        super().__init__(None, pad_token_id)
        if metric not in ("squad", "korquad"):
            raise InputError(f"unknown QA metric {metric!r}: use 'squad' or 'korquad'")
        for option, value in (("max_seq_length", max_seq_length), ("doc_stride", doc_stride),
                              ("max_query_length", max_query_length), ("max_answer_length", max_answer_length),
                              ("n_best_size", n_best_size)):
            if not isinstance(value, int) or value < 1:
                raise InputError(f"{option} must be a positive number of tokens, got {value!r}")
        self.name = name
        self.metric = metric
        self.version_2_with_negative = bool(version_2_with_negative)
        self.null_score_diff_threshold = float(null_score_diff_threshold)
        self.max_seq_length = max_seq_length
        self.max_query_length = max_query_length
        self.doc_stride = doc_stride
        self.n_best_size = n_best_size
        self.max_answer_length = max_answer_length

    @property
    def n_best(self) -> int:
        """Deprecated name of `n_best_size` (an attribute: the one alias `renamed` cannot cover)."""
        warnings.warn("QATask.n_best is deprecated, use n_best_size", DeprecationWarning, stacklevel=2)
        return self.n_best_size

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
        return read_squad(path, version_2_with_negative=self.version_2_with_negative)

    def examples_from_inputs(self, inputs: Sequence[str]) -> ExampleList:
        """Command-line strings: 'question' 'context' ['question' 'context' ...]."""
        if len(inputs) % 2:
            raise InputError("QA prediction takes pairs: 'question' 'context' ['question' 'context' ...]")
        return ExampleList(QAExample(id=str(i), question=q, context=c)
                           for i, (q, c) in enumerate(zip(inputs[0::2], inputs[1::2])))

    def texts_of(self, examples):
        for ex in examples:
            yield ex.question + " " + ex.context[:500]

    def train_valid_split(self, examples, valid_fraction: float = 0.1, seed: int = 42):
        """Split by article, never by question, so no context is in both halves."""
        return train_valid_split(examples, valid_fraction, seed, group=lambda ex: ex.article)

    # -- encoding ----------------------------------------------------------------------
    @renamed(max_length="max_seq_length")
    def encode(self, examples: Sequence[QAExample], tokenizer, max_seq_length: int | None = None,
               training: bool = False) -> FeatureList:
        """Windows of every example: {input_ids, token_type_ids, example_index, context_start,
        context_offsets (char span of each context piece in the window) [, start/end_positions]}.

        `max_seq_length` (default: the task's) is the length of a window (`max_length=` is its
        old name, as in every task's `encode`).  With `training=True`
        questions whose first answer cannot be located in the context are left out (counted
        in `features.report`); unanswerable ones (SQuAD 2.0) target [CLS] in every window.
        """
        length = self.max_seq_length if max_seq_length is None else max_seq_length
        report = ReadReport(source=f"{self.name} encode (max_seq_length={length}, doc_stride={self.doc_stride})")
        questions = _batch_ids(tokenizer, [ex.question for ex in examples])
        contexts = _tokenize_contexts(tokenizer, examples)
        features = FeatureList(report=report)
        for i, ex in enumerate(examples):
            query = questions[i][:self.max_query_length]
            if len(questions[i]) > self.max_query_length:
                report.note(f"question longer than max_query_length={self.max_query_length} (cut)", f"id {ex.id}")
            context = contexts[ex.context]                      # (piece ids, char offsets)
            target = self._target(ex, context[1])
            if training and target is None:
                report.skip("no usable answer in the context (left out of training)", f"id {ex.id}")
                continue
            if target == NO_ANSWER:
                report.note("unanswerable question (target [CLS] in every window)", f"id {ex.id}")
            features.extend(self._windows(i, ex, query, context, target, length, tokenizer, report))
        report.examples, report.unit = len(features), f"windows from {len(examples):,} questions"
        return features

    def _target(self, ex: QAExample, doc_offsets):
        """What the windows of `ex` learn: NO_ANSWER ([CLS]), the answer's (first, last) piece, or None."""
        if ex.is_impossible:
            return NO_ANSWER if self.version_2_with_negative else None
        return _answer_tokens(ex, doc_offsets) if ex.answer_ok and ex.answer_ok[0] else None

    def _windows(self, index: int, ex: QAExample, query: list[int], context, target, max_seq_length: int,
                 tokenizer, report: ReadReport) -> list[dict]:
        doc_ids, doc_offsets = context
        room = max_seq_length - len(query) - 3                 # [CLS] question [SEP] window [SEP]
        if room <= 0:
            raise InputError(f"max_seq_length={max_seq_length} leaves no room for the context after a "
                             f"{len(query)}-piece question; raise max_seq_length or lower max_query_length")
        windows = doc_windows(len(doc_ids), room, self.doc_stride)
        if len(windows) > 1:
            report.note("context longer than one window (split into windows)", f"id {ex.id}")
        sep_id = tokenizer.sep_token_id
        prefix = [tokenizer.cls_token_id] + query + [sep_id]
        out = []
        for start, length in windows:
            feature = {"input_ids": prefix + doc_ids[start:start + length] + [sep_id],
                       "token_type_ids": [0] * len(prefix) + [1] * (length + 1),
                       "example_index": index, "context_start": len(prefix),
                       "context_offsets": doc_offsets[start:start + length]}
            feature["start_positions"], feature["end_positions"] = _window_positions(
                target, start, length, len(prefix))
            out.append(feature)
        return out

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
        """The best span of each question over all its windows: {"id", "answer", "score", "start", "end"}.

        SQuAD 2.0 tasks add "null_score" (lowest [CLS] score over the windows), "null_score_diff"
        (null score − best span score; +inf without a valid span) and the best span itself
        ("span_answer", "span_score", "span_start", "span_end"); "answer" is "" (score: the null
        score, start/end None) when null_score_diff > null_score_diff_threshold.
        """
        report = ReadReport(source=f"{self.name} predict")
        by_example = defaultdict(list)
        for output, feature in zip(outputs, features):
            by_example[feature["example_index"]].append((output, feature))
        predictions = PredictionList(report=report)
        for i, ex in enumerate(examples):
            best, null = self._best_over_windows(by_example.get(i, []))
            if best is None:
                report.note("no valid answer span (empty answer)", f"id {ex.id}")
                span = {"answer": "", "score": None, "start": None, "end": None}
            else:
                span = {"answer": ex.context[best[1]:best[2]], "score": float(best[0]),
                        "start": best[1], "end": best[2]}
            if not self.version_2_with_negative:
                predictions.append({"id": ex.id, **span})
                continue
            diff = math.inf if best is None else null - span["score"]
            record = {"id": ex.id, **span, "null_score": null, "null_score_diff": diff,
                      **{f"span_{k}": v for k, v in span.items()}}
            predictions.append(decide(record, self.null_score_diff_threshold))
        report.examples = len(predictions)
        return predictions

    def _best_over_windows(self, windows) -> tuple[tuple | None, float | None]:
        """(best span over the windows or None, null score = the lowest start[CLS] + end[CLS])."""
        best, null = None, None
        for (start_logits, end_logits), feature in windows:
            candidate = self.best_span(start_logits, end_logits, feature)
            if candidate is not None and (best is None or candidate[0] > best[0]):
                best = candidate
            window_null = float(start_logits[0] + end_logits[0])
            null = window_null if null is None else min(null, window_null)
        return best, null

    def best_span(self, start_logits: np.ndarray, end_logits: np.ndarray, feature: dict):
        """(score, char_start, char_end) of the best valid span in one window, or None.

        The n_best_size start and end candidates form an n_best_size × n_best_size grid of
        scores; the invalid cells are masked and the first maximum (start rank, then end rank) wins.
        """
        first, count = feature["context_start"], len(feature["context_offsets"])
        starts = np.argsort(start_logits)[-1:-self.n_best_size - 1:-1]          # best first
        ends = np.argsort(end_logits)[-1:-self.n_best_size - 1:-1]
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
        """Exact match and F1 (in %): official SQuAD v1.1 or KorQuAD 1.0 (`exact_match`, `f1`);
        SQuAD 2.0 tasks: the official evaluate-v2.0 dict (`exact`, `f1`, `HasAns_*`, `NoAns_*`,
        `best_exact`, `best_exact_thresh`, `best_f1`, `best_f1_thresh`).

        For SQuAD 2.0, exact/f1/HasAns_*/NoAns_* score the answers as they are (the official
        script without na_probs), and best_* are the official script's sweep given the best
        spans as predictions and null_score_diff as na_probs: the best any threshold could do
        on these questions.  (For answers decided with threshold T this is exactly the script
        run once with those na_probs and ``--na-prob-thresh T``.)
        """
        references = [[a["text"] for a in ex.answers] for ex in examples]
        if self.version_2_with_negative:
            scores = M.squad_v2_scores([p["answer"] for p in predictions], references, metric=self.metric)
            spans = [p.get("span_answer", p["answer"]) for p in predictions]
            diffs = [p.get("null_score_diff", 0.0) for p in predictions]
            sweep = M.squad_v2_scores(spans, references, diffs, metric=self.metric)
            best = {k: sweep[k] for k in ("best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh")}
            return {**scores, **best, "num_examples": len(examples)}
        if any(not r for r in references):
            raise InputError(f"task {self.name!r}: {sum(not r for r in references)} questions have no "
                             "reference answers and cannot be scored (unanswerable questions need "
                             "version_2_with_negative=True, task squad2)")
        answers = [p["answer"] for p in predictions]
        score = M.korquad_scores if self.metric == "korquad" else M.squad_scores
        return {**score(answers, references), "num_examples": len(examples)}

    def tune_threshold(self, predictions: Sequence[dict], examples: Sequence[QAExample], by: str = "f1") -> float:
        """Set `null_score_diff_threshold` to the evaluation set's best_f1_thresh (or best_exact_thresh)
        and return it; `apply_threshold(predictions, ...)` re-decides predictions without the model."""
        if by not in ("f1", "exact"):
            raise InputError(f"tune the threshold by 'f1' or 'exact', not {by!r}")
        if not self.version_2_with_negative:
            raise InputError(f"task {self.name!r} has no unanswerable questions: the null threshold is for "
                             "version_2_with_negative=True (task squad2)")
        self.null_score_diff_threshold = float(self.metrics(predictions, examples)[f"best_{by}_thresh"])
        return self.null_score_diff_threshold

    def apply_threshold(self, predictions: Sequence[dict], threshold: float | None = None) -> PredictionList:
        """SQuAD 2.0 predictions decided again with another threshold (default: the task's)."""
        threshold = self.null_score_diff_threshold if threshold is None else threshold
        return PredictionList((decide(p, threshold) for p in predictions),
                              report=getattr(predictions, "report", None))

    def format_prediction(self, prediction: dict, example: QAExample) -> dict:
        """JSON record: an infinite null_score_diff (no valid span at all) is written as null."""
        record = {"id": example.id, "question": example.question, **prediction}
        return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}

    def format_lines(self, rows: Sequence[dict]) -> list[str]:
        """Each question's answer with its score: ``id  score  'answer'  ← question``."""
        lines = [f"{'id':>5}  {'score':>7}  answer  ← question"] if rows else []
        for n, row in enumerate(rows, 1):
            score = row.get("score")
            shown = f"{score:>7.3f}" if isinstance(score, (int, float)) else f"{'-':>7}"
            answer = repr(row["answer"]) if row.get("answer") else "(no answer)"
            lines.append(f"{str(row.get('id', n)):>5}  {shown}  {clip(answer, 60)}  ← {clip(row['question'], 80)}")
        return lines


def decide(prediction: dict, threshold: float) -> dict:
    """A SQuAD 2.0 prediction with "answer"/"score"/"start"/"end" set by the null rule:
    "" when null_score_diff > threshold, else the best span (run_squad.py's rule)."""
    if prediction["null_score_diff"] > threshold:
        return {**prediction, "answer": "", "score": prediction["null_score"], "start": None, "end": None}
    return {**prediction, "answer": prediction["span_answer"], "score": prediction["span_score"],
            "start": prediction["span_start"], "end": prediction["span_end"]}


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
    """Training target inside one window: token positions of the answer, or (0, 0) = [CLS]
    (the answer is not entirely in this window, or there is none: NO_ANSWER)."""
    if answer is None:
        return None, None
    if answer == NO_ANSWER:
        return 0, 0
    first, last = answer
    if first < start or last >= start + length:
        return 0, 0
    return offset + first - start, offset + last - start
