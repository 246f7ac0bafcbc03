"""Question answering: find the span of the context that answers the question.

BERT reads ``[CLS] question [SEP] context [SEP]`` and scores every context token as a
possible answer start (S·R_i) and end (E·R_i).  A context longer than one window is cut
into overlapping windows (`doc_stride` pieces apart), every window is read, and the
best (start, end) pair over all windows wins — the lecture notes' KorQuAD example:
"동숲 섬에 몇 명까지 살 수 있음?" → "8명" from the window with the highest logit.

Window building and the span search are *the same code as fine-tuning evaluation*
(`bertkit.tasks.qa.QATask`), so the pipeline's best answer is exactly the standard
post-processing's answer.  For ``top_k > 1`` this module lists every valid span of the
n-best grid (same rules) instead of only the best one.

Each result: ``answer`` (the original characters of the context), ``score`` (probability:
a softmax over the n-best candidates' start+end logits, as in the original BERT's
nbest_predictions.json), ``logit`` (start logit + end logit), ``start``/``end`` (character
offsets: ``context[start:end] == answer``).

``handle_impossible_answer=True`` (a model fine-tuned on SQuAD 2.0, task ``squad2``) adds
the "no answer" candidate: logit = start_logit[CLS] + end_logit[CLS], the lowest over the
windows; it wins when ``null logit − best span logit > null_score_diff_threshold`` and is
then ``{"answer": "", "start": 0, "end": 0, "score": ..., "logit": ...}``.

One model, one decision: left out (None), both settings come from the model's task.json —
a ``squad2`` model handles impossible answers with the threshold tuned when it was
fine-tuned (``options.null_score_diff_threshold``), exactly as ``bertkit predict`` and
``bertkit eval`` decide; other models answer a span.  Given explicitly, they override it.

The settings are named as in BERT's run_squad.py: ``max_seq_length``, ``doc_stride``,
``max_query_length``, ``max_answer_length``, ``n_best_size``; the reference pipeline's
``max_seq_len``, ``max_question_len``, ``max_answer_len`` (and ``n_best``) still work,
with a DeprecationWarning.

    >>> qa = pipeline("question-answering", model="runs/korquad/best")
    >>> qa(question="면역 체계는 무엇입니까?", context="면역 체계는 질병으로부터 ...")
    {'answer': '질병으로부터 보호하는 ...', 'score': 0.93, 'logit': 14.2, 'start': 7, 'end': 44}
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from bertkit.common.defaults import (DOC_STRIDE, MAX_ANSWER_LENGTH, MAX_QUERY_LENGTH, N_BEST_SIZE,
                                     QA_MAX_SEQ_LENGTH)
from bertkit.common.errors import InputError
from bertkit.modeling import BertForQuestionAnswering
from bertkit.pipelines.base import Pipeline
from bertkit.tasks import get_task
from bertkit.tasks.qa import QATask
from bertkit.text.names import renamed
from bertkit.tasks.readers import QAExample

#: the reference pipeline's names (and bertkit's old n_best) → the names of run_squad.py
DEPRECATED_NAMES = {"max_seq_len": "max_seq_length", "max_question_len": "max_query_length",
                    "max_answer_len": "max_answer_length", "n_best": "n_best_size"}


class QuestionAnsweringPipeline(Pipeline):
    """`pipe(question=..., context=..., top_k=1, max_seq_length=None, doc_stride=128,
    max_answer_length=30, max_query_length=64, n_best_size=20, handle_impossible_answer=None,
    null_score_diff_threshold=None)` (None: as the model's task.json says, see `null_rule`).

    Also `pipe({"question": q, "context": c})`, `pipe(q, c)`, or lists of questions and
    contexts (one context per question, or one context shared by all questions).
    One question → a dict (top_k=1) or a list of dicts; several → one such per question.
    `max_seq_length=None`: the window length the model was fine-tuned with (task.json), else 384.
    """

    model_class = BertForQuestionAnswering

    @renamed(**DEPRECATED_NAMES)
    def __call__(self, *args, question=None, context=None, top_k: int = 1,
                 max_seq_length: int | None = None, doc_stride: int = DOC_STRIDE,
                 max_answer_length: int = MAX_ANSWER_LENGTH, max_query_length: int = MAX_QUERY_LENGTH,
                 n_best_size: int = N_BEST_SIZE, handle_impossible_answer: bool | None = None,
                 null_score_diff_threshold: float | None = None):
        questions, contexts, single = self._inputs(args, question, context)
        if not isinstance(top_k, int) or top_k < 1:
            raise InputError(f"top_k must be a positive integer, got {top_k!r}")
        task = self.task(doc_stride=doc_stride, max_answer_length=max_answer_length,
                         max_query_length=max_query_length, n_best_size=max(n_best_size, top_k))
        examples = [self._example(i, q, c) for i, (q, c) in enumerate(zip(questions, contexts))]
        with warnings.catch_warnings():   # contexts are tokenized whole on purpose, then windowed
            warnings.filterwarnings("ignore", message="Token indices sequence length is longer")
            features = task.encode(examples, self.tokenizer,
                                   max_seq_length=self.window_length(max_seq_length))
        # windows longest first (short contexts give short windows), then back in their own order
        order = sorted(range(len(features)), key=lambda i: -len(features[i]["input_ids"]))
        with torch.no_grad():
            ranked = task.run_model(self.model, [features[i] for i in order], batch_size=self.batch_size,
                                    device=self.device)
        outputs = [None] * len(features)
        for i, output in zip(order, ranked):
            outputs[i] = output
        per_example: list[list] = [[] for _ in examples]
        for output, feature in zip(outputs, features):
            per_example[feature["example_index"]].append((output, feature))
        null_rule = self.null_rule(handle_impossible_answer, null_score_diff_threshold)
        results = [self._answers(task, windows, ex.context, top_k, null_rule)
                   for windows, ex in zip(per_example, examples)]
        results = [r[0] if top_k == 1 else r for r in results]
        return results[0] if single else results

    def window_length(self, max_seq_length: int | None) -> int:
        """Tokens per window: the call's, else the pipeline's (max_length=), else the fine-tuned model's
        (task.json), else BERT's 384; never more than the model's positions."""
        wanted = max_seq_length or self.given_max_length or self.saved_max_length or QA_MAX_SEQ_LENGTH
        return min(wanted, self.position_limit)

    def null_rule(self, handle_impossible_answer: bool | None = None,
                  null_score_diff_threshold: float | None = None) -> float | None:
        """The null_score_diff_threshold to answer with ("" when null − best span beats it), or None
        for "always a span".  Unset arguments take the fine-tuned model's own decision: its
        task.json (task squad2 / version_2_with_negative, and the threshold tuned then)."""
        saved = self._saved_qa_task()
        if handle_impossible_answer is None:
            handle_impossible_answer = bool(saved and saved.version_2_with_negative)
        if not handle_impossible_answer:
            return None
        if null_score_diff_threshold is not None:
            return float(null_score_diff_threshold)
        return saved.null_score_diff_threshold if saved else 0.0

    def _saved_qa_task(self) -> QATask | None:
        """The QA task the model was fine-tuned for (its task.json), or None without one."""
        info = (self.checkpoint.task if self.checkpoint is not None else None) or {}
        if info.get("family") != QATask.family or not info.get("task"):
            return None
        return get_task(info["task"], **(info.get("options") or {}))

    # -- inputs
    @staticmethod
    def _inputs(args, question, context):
        if args:
            if len(args) == 2 and question is None and context is None:
                question, context = args
            elif len(args) == 1 and question is None and context is None:
                items = args[0]
                single = isinstance(items, dict)
                items = [items] if single else list(items)
                if not all(isinstance(x, dict) and {"question", "context"} <= set(x) for x in items):
                    raise InputError("pass question= and context=, or dicts {'question': ..., 'context': ...}")
                return [x["question"] for x in items], [x["context"] for x in items], single
            else:
                raise InputError("pass question= and context= (or one dict / a list of dicts)")
        if question is None or context is None:
            raise InputError("question-answering needs both question= and context=")
        single = isinstance(question, str)
        questions = [question] if single else list(question)
        contexts = [context] * len(questions) if isinstance(context, str) else list(context)
        if len(contexts) != len(questions):
            raise InputError(f"got {len(questions)} question(s) but {len(contexts)} context(s); give one context "
                             "per question, or a single context for all")
        return questions, contexts, single

    @staticmethod
    def _example(i: int, question, context) -> QAExample:
        if not isinstance(question, str) or not question.strip():
            raise InputError(f"question #{i} is empty or not a string: {question!r}")
        if not isinstance(context, str) or not context.strip():
            raise InputError(f"context #{i} is empty or not a string: give the passage to search for the answer")
        return QAExample(id=str(i), question=question, context=context)

    @staticmethod
    def task(*, doc_stride: int = DOC_STRIDE, max_answer_length: int = MAX_ANSWER_LENGTH,
             max_query_length: int = MAX_QUERY_LENGTH, n_best_size: int = N_BEST_SIZE) -> QATask:
        """The fine-tuning task object that owns windowing and the span rules."""
        return QATask("qa", max_query_length=max_query_length, doc_stride=doc_stride,
                      n_best_size=n_best_size, max_answer_length=max_answer_length)

    # -- logits → answers
    def _answers(self, task, windows, context: str, top_k: int, null_rule: float | None) -> list[dict]:
        """All valid spans of every window (deduplicated by characters), best first; with
        `null_rule` (the null_score_diff_threshold) the "no answer" candidate among them."""
        best: dict[tuple[int, int], float] = {}
        null = None
        for (start_logits, end_logits), feature in windows:
            for score, char_start, char_end in span_candidates(task, start_logits, end_logits, feature):
                key = (char_start, char_end)
                if key not in best or score > best[key]:
                    best[key] = score
            window_null = float(start_logits[0] + end_logits[0])              # [CLS] as start and end
            null = window_null if null is None else min(null, window_null)
        ranked = sorted(best.items(), key=lambda kv: -kv[1])[:task.n_best_size]     # stable: ties keep order
        candidates = [{"answer": context[s:e], "logit": float(score), "start": int(s), "end": int(e)}
                      for (s, e), score in ranked]
        if null_rule is not None and null is not None:
            # the null goes before every span it beats by more than the threshold (ties: the span)
            place = sum(c["logit"] >= null - null_rule for c in candidates)
            candidates.insert(place, {"answer": "", "logit": null, "start": 0, "end": 0})
        if not candidates:
            return [{"answer": "", "score": 0.0, "logit": None, "start": None, "end": None}]
        logits = np.array([c["logit"] for c in candidates], dtype=np.float64)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        return [{"answer": c["answer"], "score": float(p), "logit": c["logit"], "start": c["start"], "end": c["end"]}
                for c, p in zip(candidates[:top_k], probs)]


def span_candidates(task, start_logits: np.ndarray, end_logits: np.ndarray, feature: dict):
    """Every valid (score, char_start, char_end) of one window, best first.

    The same grid as `QATask.best_span` (its n_best_size starts × n_best_size ends, both
    inside the context, start ≤ end, at most max_answer_length pieces); its first element
    is exactly `best_span`'s answer.
    """
    first, count = feature["context_start"], len(feature["context_offsets"])
    starts = np.argsort(start_logits)[-1:-task.n_best_size - 1:-1]
    ends = np.argsort(end_logits)[-1:-task.n_best_size - 1:-1]
    s, e = starts[:, None], ends[None, :]
    valid = ((s >= first) & (s < first + count) & (e >= first) & (e < first + count)
             & (e >= s) & (e - s + 1 <= task.max_answer_length))
    scores = np.where(valid, start_logits[starts][:, None] + end_logits[ends][None, :], -np.inf)
    order = np.argsort(-scores, axis=None, kind="stable")
    offsets = feature["context_offsets"]
    out = []
    for k in order:
        if not np.isfinite(scores.flat[k]):
            break
        i, j = starts[k // len(ends)], ends[k % len(ends)]
        out.append((float(scores.flat[k]), offsets[i - first][0], offsets[j - first][1]))
    return out
