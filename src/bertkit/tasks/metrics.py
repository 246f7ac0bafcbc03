"""Evaluation metrics of the BERT fine-tuning tasks, written out so that they can be read.

    accuracy, binary_f1          SST-2, NSMC, RTE, MRPC (F1 of the positive class)
    matthews_corrcoef            CoLA (the multi-class form, as scikit-learn computes it)
    pearson, spearman            STS-B (Spearman = Pearson of the ranks, ties get their mean rank)
    get_entities, entity_scores  NER, entity level, exactly as `seqeval` does by default
                                 (IOB2, non-strict: an I- after O or after another type opens an entity)
    squad_scores                 SQuAD v1.1 official EM/F1 (words; drop case, punctuation, a/an/the)
    korquad_scores               KorQuAD 1.0 official EM/F1 (F1 over *characters*; drops quotes,
                                 brackets 《》〈〉<>() and ‘’ as well as ASCII punctuation; no article rule)
    squad_v2_scores              SQuAD 2.0 official evaluation (evaluate-v2.0.py): exact/f1, HasAns_*,
                                 NoAns_*, and the best no-answer threshold (best_exact/f1 and _thresh)

Every function takes plain Python lists and returns plain floats; tests check them
against scikit-learn, scipy, seqeval and the official SQuAD/KorQuAD scripts.
"""
from __future__ import annotations

import math
import re
import string
from collections import Counter
from typing import Callable, Sequence

from bertkit.common.errors import InputError

# ------------------------------------------------------------------ classification


def _check_lengths(predictions: Sequence, references: Sequence) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not references:
        raise InputError("no examples to score")


def accuracy(predictions: Sequence, references: Sequence) -> float:
    """Fraction of predictions equal to their reference."""
    _check_lengths(predictions, references)
    return sum(p == r for p, r in zip(predictions, references)) / len(references)


def binary_f1(predictions: Sequence, references: Sequence, positive=1) -> float:
    """F1 of the positive class: 2·TP / (2·TP + FP + FN); 0 when there is no positive at all."""
    _check_lengths(predictions, references)
    tp = sum(p == positive and r == positive for p, r in zip(predictions, references))
    fp = sum(p == positive and r != positive for p, r in zip(predictions, references))
    fn = sum(p != positive and r == positive for p, r in zip(predictions, references))
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def matthews_corrcoef(predictions: Sequence, references: Sequence) -> float:
    """Matthews correlation (multi-class R_K statistic), 0 when undefined.

    With C the confusion matrix, t_k = times class k is true, p_k = times it is predicted,
    c = correct, s = samples:  (c·s − Σ t_k p_k) / √((s² − Σ p_k²)(s² − Σ t_k²)).
    """
    _check_lengths(predictions, references)
    s = len(references)
    c = sum(p == r for p, r in zip(predictions, references))
    t, p = Counter(references), Counter(predictions)
    tp_sum = sum(t[k] * p[k] for k in t)
    p2 = sum(v * v for v in p.values())
    t2 = sum(v * v for v in t.values())
    denominator = (s * s - p2) * (s * s - t2)
    return 0.0 if denominator == 0 else (c * s - tp_sum) / math.sqrt(denominator)


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation: covariance over the product of standard deviations (nan if one is constant)."""
    _check_lengths(x, y)
    n = len(x)
    mx, my = math.fsum(x) / n, math.fsum(y) / n
    sxy = math.fsum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = math.fsum((a - mx) ** 2 for a in x)
    syy = math.fsum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return float("nan")
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks; tied values share the mean of the ranks they occupy."""
    order = sorted(range(len(values)), key=values.__getitem__)
    result = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            result[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return result


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation: Pearson correlation of the ranks."""
    return pearson(ranks(x), ranks(y))


# ------------------------------------------------------------------ entity-level NER


def _split_tag(tag: str) -> tuple[str, str]:
    """'B-PER' → ('B', 'PER'); 'O' → ('O', '_'); a bare 'B' → ('B', '_') — as seqeval reads a tag."""
    return tag[0], (tag[1:].split("-", maxsplit=1)[-1] or "_")


def _entity_ends(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    """Does the entity that the previous tag belongs to end before this tag?"""
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != type_


def _entity_starts(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    """Does a new entity start at this tag?  (An I- after O or after E/S starts one: non-strict.)"""
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and prev_type != type_


def get_entities(tags: Sequence[str] | Sequence[Sequence[str]]) -> list[tuple[str, int, int]]:
    """Entities as (type, first, last) positions, inclusive — seqeval's default reading.

    A list of sentences is flattened with an 'O' between sentences, so positions are
    global and an entity never crosses a sentence boundary.
    """
    if tags and not isinstance(tags[0], str):
        tags = [t for sentence in tags for t in list(sentence) + ["O"]]
    entities = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, chunk in enumerate(list(tags) + ["O"]):
        tag, type_ = _split_tag(chunk)
        if _entity_ends(prev_tag, tag, prev_type, type_):
            entities.append((prev_type, begin, i - 1))
        if _entity_starts(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return entities


def entity_scores(predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> dict:
    """Micro precision / recall / F1 over entities (an entity counts when type and span match).

    Also returns per-type F1 (`f1_PER`, ...) and the counts behind the numbers.
    """
    _check_lengths(predictions, references)
    for i, (p, r) in enumerate(zip(predictions, references)):
        if len(p) != len(r):
            raise ValueError(f"sentence {i}: {len(p)} predicted tags for {len(r)} words")
    pred = set(get_entities(predictions))
    true = set(get_entities(references))
    scores = _prf(len(pred & true), len(pred), len(true))
    for type_ in sorted({e[0] for e in true | pred}):
        p_t = {e for e in pred if e[0] == type_}
        t_t = {e for e in true if e[0] == type_}
        scores[f"f1_{type_}"] = _prf(len(p_t & t_t), len(p_t), len(t_t))["f1"]
    scores.update(num_predicted=len(pred), num_true=len(true), num_correct=len(pred & true))
    return scores


def _prf(correct: int, predicted: int, true: int) -> dict:
    precision = correct / predicted if predicted else 0.0
    recall = correct / true if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


# ------------------------------------------------------------------ extractive QA

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_KORQUAD_EXTRA = re.compile("['\"《》<>〈〉()‘’]")


def normalize_squad(text: str) -> str:
    """SQuAD v1.1: lower case, drop ASCII punctuation, drop the articles a/an/the, squeeze spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def normalize_korquad(text: str) -> str:
    """KorQuAD 1.0: quotes/brackets (incl. 《》〈〉‘’) → space, lower case, drop ASCII punctuation, squeeze spaces."""
    text = _KORQUAD_EXTRA.sub(" ", text).lower()
    return " ".join("".join(ch for ch in text if ch not in _PUNCTUATION).split())


def _overlap_f1(prediction: list, truth: list) -> float:
    common = sum((Counter(prediction) & Counter(truth)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(prediction), common / len(truth)
    return 2 * precision * recall / (precision + recall)


def squad_f1(prediction: str, truth: str) -> float:
    """Bag-of-words F1 between normalized answers."""
    return _overlap_f1(normalize_squad(prediction).split(), normalize_squad(truth).split())


def korquad_f1(prediction: str, truth: str) -> float:
    """Bag-of-characters F1 between normalized answers (spaces do not count)."""
    return _overlap_f1(list(normalize_korquad(prediction).replace(" ", "")),
                       list(normalize_korquad(truth).replace(" ", "")))


def _qa_scores(predictions: Sequence[str], references: Sequence[Sequence[str]],
               normalize: Callable[[str], str], f1: Callable[[str, str], float]) -> dict:
    _check_lengths(predictions, references)
    em = f1_sum = 0.0
    for prediction, truths in zip(predictions, references):
        if not truths:
            raise InputError("a question without reference answers cannot be scored (a SQuAD 2.0 file with "
                             "unanswerable questions? use --task squad2)")
        norm = normalize(prediction)
        em += max(float(norm == normalize(t)) for t in truths)
        f1_sum += max(f1(prediction, t) for t in truths)
    n = len(references)
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1_sum / n}


def squad_scores(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict:
    """Official SQuAD v1.1 EM and F1 (in %), each the max over a question's reference answers."""
    return _qa_scores(predictions, references, normalize_squad, squad_f1)


def korquad_scores(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict:
    """Official KorQuAD 1.0 EM and F1 (in %): KorQuAD normalization, character-level F1."""
    return _qa_scores(predictions, references, normalize_korquad, korquad_f1)


# ------------------------------------------------------------------ SQuAD 2.0 (unanswerable questions)
#
# The official evaluate-v2.0.py, as functions over lists: a question whose reference list
# is empty (after normalisation) is unanswerable, and its only right answer is "".
# `na_probs` is any number that grows with "no answer" (bertkit passes run_squad.py's
# null_score_diff = null score − best span score); an answer is replaced by "" when its
# na_prob exceeds `na_prob_thresh`, and `best_*` say which threshold would have been best.


def _v2_f1(prediction: list, truth: list) -> float:
    """v2.0 F1: when either side is empty (no answer) it is 1 if both are, else 0."""
    if not prediction or not truth:
        return float(prediction == truth)
    return _overlap_f1(prediction, truth)


def _korquad_chars(text: str) -> list[str]:
    return list(normalize_korquad(text).replace(" ", ""))


def squad_v2_raw_scores(predictions: Sequence[str], references: Sequence[Sequence[str]],
                        metric: str = "squad") -> tuple[list[float], list[float]]:
    """Exact match and F1 (0..1) of every question, before any no-answer threshold.

    `metric="squad"`: the official v2.0 rules (words, SQuAD normalisation);
    `metric="korquad"`: KorQuAD 1.0's normalisation and character F1 with the same v2.0 rules
    for unanswerable questions (bertkit's combination: KorQuAD 1.0 has no such questions).
    """
    _check_lengths(predictions, references)
    normalize, tokens = ((normalize_korquad, _korquad_chars) if metric == "korquad"
                         else (normalize_squad, lambda t: normalize_squad(t).split()))
    exact, f1 = [], []
    for prediction, truths in zip(predictions, references):
        golds = [t for t in truths if normalize(t)] or [""]
        exact.append(max(float(normalize(g) == normalize(prediction)) for g in golds))
        f1.append(max(_v2_f1(tokens(prediction), tokens(g)) for g in golds))
    return exact, f1


def find_best_threshold(predictions: Sequence[str], scores: Sequence[float], na_probs: Sequence[float],
                        has_answer: Sequence[bool]) -> tuple[float, float]:
    """(best score in %, its threshold): the official sweep over na_probs, lowest first.

    Start from "every answer is ''" (each unanswerable question right); letting question
    q answer adds its score when it has an answer, and costs 1 when it has none and the
    prediction is not empty.  The threshold is the na_prob of the last question let in
    at the best running total (so "answer when na_prob ≤ threshold").
    """
    current = best = float(sum(not h for h in has_answer))
    threshold = 0.0
    for q in sorted(range(len(na_probs)), key=na_probs.__getitem__):
        current += scores[q] if has_answer[q] else (-1.0 if predictions[q] else 0.0)
        if current > best:
            best, threshold = current, float(na_probs[q])
    return 100.0 * best / len(scores), threshold


def _v2_summary(exact: Sequence[float], f1: Sequence[float], keep: Sequence[bool] | None = None) -> dict:
    chosen = [i for i in range(len(exact)) if keep is None or keep[i]]
    n = len(chosen)
    return {"exact": 100.0 * sum(exact[i] for i in chosen) / n, "f1": 100.0 * sum(f1[i] for i in chosen) / n,
            "total": n}


def squad_v2_scores(predictions: Sequence[str], references: Sequence[Sequence[str]],
                    na_probs: Sequence[float] | None = None, na_prob_thresh: float = 1.0,
                    metric: str = "squad") -> dict:
    """The official SQuAD 2.0 evaluation (in %): exact, f1, total; HasAns_* and NoAns_* (each only
    when such questions exist); with `na_probs`, best_exact(_thresh) and best_f1(_thresh).

    Same as ``evaluate-v2.0.py data.json predictions.json --na-prob-file na_probs.json
    --na-prob-thresh T``, with the references in the data's order.  Without `na_probs`
    every na_prob is 0 (the script without --na-prob-file): the predictions count as given.
    """
    exact_raw, f1_raw = squad_v2_raw_scores(predictions, references, metric)
    probs = list(na_probs) if na_probs is not None else [0.0] * len(predictions)
    _check_lengths(probs, predictions)
    has_answer = [bool(truths) for truths in references]       # the script's qid_to_has_ans: any reference at all
    exact = [float(not h) if p > na_prob_thresh else s for s, p, h in zip(exact_raw, probs, has_answer)]
    f1 = [float(not h) if p > na_prob_thresh else s for s, p, h in zip(f1_raw, probs, has_answer)]
    out = _v2_summary(exact, f1)
    for prefix, keep in (("HasAns", has_answer), ("NoAns", [not h for h in has_answer])):
        if any(keep):
            out.update({f"{prefix}_{k}": v for k, v in _v2_summary(exact, f1, keep).items()})
    if na_probs is not None:
        out["best_exact"], out["best_exact_thresh"] = find_best_threshold(predictions, exact_raw, probs, has_answer)
        out["best_f1"], out["best_f1_thresh"] = find_best_threshold(predictions, f1_raw, probs, has_answer)
    return out
