"""SQuAD-format JSON (SQuAD 1.1, KorQuAD 1.0, SQuAD 2.0) → `QAExample`s.

    {"data": [{"title": ..., "paragraphs": [{"context": ..., "qas": [
        {"id": ..., "question": ..., "answers": [{"text": ..., "answer_start": 17}],
         "is_impossible": false}]}]}]}

Answers are checked against their context (the text must be at `answer_start`); SQuAD 2.0's
unanswerable questions are read with `version_2_with_negative=True`.
"""
from __future__ import annotations

import json
from pathlib import Path

from bertkit.common.compression import open_text
from bertkit.common.errors import InputError

from bertkit.data.named import DatasetSplit

from .readers import ExampleList, QAExample, ReadReport, _check_file


def _locate_answer(context: str, text: str, start: int) -> int | None:
    """Where `text` really starts in `context`: at `start`, else the nearest occurrence, else None."""
    if context[start:start + len(text)] == text:
        return start
    hits, i = [], context.find(text)
    while i != -1 and text:
        hits.append(i)
        i = context.find(text, i + 1)
    return min(hits, key=lambda h: abs(h - start)) if hits else None


def read_squad(path: str | Path, version_2_with_negative: bool = False) -> ExampleList:
    """Read SQuAD-format JSON (SQuAD 1.1, KorQuAD 1.0; SQuAD 2.0) into `QAExample`s.

    Each answer is checked against its context: when the text is not at `answer_start`
    the nearest occurrence is used (counted: "answer_start corrected"); when the text
    does not occur at all the answer is kept for scoring but marked unusable for
    training (counted).

    Unanswerable questions (SQuAD 2.0: ``"is_impossible": true``, ``"answers": []``) are
    read only with `version_2_with_negative=True` (task ``squad2``): they become examples
    with `is_impossible=True` and no answers, their `plausible_answers` kept aside.  As in
    the official evaluate-v2.0.py, a question with no answers at all is unanswerable
    there, flag or not.  Without the option they are skipped (counted).
    """
    if isinstance(path, DatasetSplit):
        return read_squad_dataset(path, version_2_with_negative)
    path = Path(path)
    _check_file(path)
    report = ReadReport(source=str(path))
    out = ExampleList(report=report)
    try:
        with open_text(path) as f:
            data = json.load(f)["data"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise InputError(f"{path} is not SQuAD-format JSON ({{'data': [{{'paragraphs': [...]}}]}}): {e}") from e
    for a, article in enumerate(data):
        for paragraph in article.get("paragraphs", []):
            for qa in paragraph.get("qas", []):
                example = _squad_question(qa, paragraph["context"], article.get("title", ""), a,
                                          f"{a}-{len(out)}", version_2_with_negative, report)
                if example is not None:
                    out.append(example)
    report.examples = len(out)
    return out


def _squad_question(qa: dict, context: str, title: str, article: int, default_id: str,
                    version_2_with_negative: bool, report: ReadReport) -> QAExample | None:
    """One entry of a paragraph's "qas" → a `QAExample` (None when it is skipped, counted)."""
    qid = str(qa.get("id", default_id))
    impossible = bool(qa.get("is_impossible"))
    if impossible and not version_2_with_negative:
        report.skip("unanswerable question (SQuAD 2.0): read with version_2_with_negative=True "
                    "(task squad2)", f"id {qid}")
        return None
    if not qa.get("question", "").strip():
        report.skip("empty question", f"id {qid}")
        return None
    if version_2_with_negative and not impossible and not qa.get("answers"):
        report.note("no answers and no is_impossible flag: unanswerable (the SQuAD 2.0 rule)", f"id {qid}")
        impossible = True
    if impossible:
        if qa.get("answers"):
            report.note("is_impossible with answers: the answers are ignored", f"id {qid}")
        report.note("unanswerable question (SQuAD 2.0)", f"id {qid}")
        plausible = [{"text": p.get("text", ""), "answer_start": int(p.get("answer_start", -1))}
                     for p in qa.get("plausible_answers", [])]
        return QAExample(qid, qa["question"], context, [], [], title, article, True, plausible)
    answers, ok = _check_answers(qa.get("answers", []), context, qid, report)
    return QAExample(qid, qa["question"], context, answers, ok, title, article)


def _check_answers(raw: list[dict], context: str, qid: str, report: ReadReport):
    answers, ok = [], []
    for ans in raw:
        text, start = ans.get("text", ""), int(ans.get("answer_start", -1))
        where = _locate_answer(context, text, start) if text.strip() else None
        if where is None:
            report.note("answer text not found in context (scored, not trained on)", f"id {qid}")
        elif where != start:
            report.note("answer_start corrected to the nearest occurrence of the text", f"id {qid}")
        answers.append({"text": text, "answer_start": start if where is None else where})
        ok.append(where is not None)
    return answers, ok


def read_squad_dataset(split: DatasetSplit, version_2_with_negative: bool = False) -> ExampleList:
    """Rows in the `datasets` layout of SQuAD (id, title, context, question, answers: {text: [...],
    answer_start: [...]}) → `QAExample`s, checked as `read_squad` checks a file; articles by title."""
    split.require("context", "question", "answers")
    report = ReadReport(source=split.source)
    out = ExampleList(report=report)
    articles: dict[str, int] = {}
    for _, n, row in split.records():
        answers = row.get("answers") or {}
        qa = {"id": row.get("id", f"row {n}"), "question": row["question"], "is_impossible": not answers.get("text"),
              "answers": [{"text": t, "answer_start": s} for t, s in zip(answers.get("text", []),
                                                                         answers.get("answer_start", []))]}
        title = str(row.get("title", ""))
        article = articles.setdefault(title or row["context"][:200], len(articles))
        example = _squad_question(qa, row["context"], title, article, f"row {n}", version_2_with_negative, report)
        if example is not None:
            out.append(example)
    report.examples = len(out)
    return out
