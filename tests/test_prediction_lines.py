"""`task.format_lines`: the one table `bertkit predict` and `bertkit classify` print, each family its own."""
from __future__ import annotations

import json

from bertkit.tasks import Task, get_task


def prediction_lines(rows, task="classification"):
    return get_task(task).format_lines(rows)


def test_classification_rows_from_a_file_show_lines_and_gold():
    rows = [{"line": 2, "text": "good", "label": "positive", "probability": 0.91, "gold": "positive"},
            {"line": 7, "text": "bad", "text_pair": "worse", "label": "positive", "probability": 0.6,
             "gold": "negative"}]
    header, first, second = prediction_lines(rows)
    assert header.split() == ["line", "label", "prob", "gold", "text"]
    assert first.split() == ["2", "positive", "0.910", "positive", "✓", "good"]
    assert second.split() == ["7", "positive", "0.600", "negative", "✗", "bad", "|||", "worse"]


def test_classification_rows_from_the_command_line_are_numbered():
    header, *rows = prediction_lines([{"text": "a", "label": "x", "probability": 0.5},
                                      {"text": "b", "label": "y", "probability": 0.7,
                                       "others": [{"label": "x", "score": 0.3}]}])
    assert header.split() == ["#", "label", "prob", "text"]
    assert rows[0].split() == ["1", "x", "0.500", "a"] and rows[1].endswith("b   (next: x 0.300)")


def test_regression_rows_show_score_and_gold_score():
    header, row = prediction_lines([{"line": 2, "text": "a", "text_pair": "b", "score": 3.25, "gold": 4.0}],
                                   "regression")
    assert header.split() == ["line", "score", "gold", "text"]
    assert row.split() == ["2", "3.250", "4.000", "a", "|||", "b"]


def test_tagging_rows_print_word_slash_tag():
    rows = [{"line": 3, "words": ["EU", "rejects", "German"], "tags": ["B-ORG", "O", "B-MISC"],
             "gold": ["B-ORG", "O", "O"]},
            {"words": ["Smith", "runs"], "tags": ["NNP", "VBZ"]}]
    header, first, second = prediction_lines(rows, "tagging")
    assert header.startswith(" line")
    assert first == "    3  EU/B-ORG rejects German/B-MISC   (gold: 2/3 tags agree)"
    assert second == "    2  Smith/NNP runs/VBZ"


def test_qa_rows_print_answer_score_and_question():
    header, row, empty = prediction_lines([
        {"id": "q1", "question": "Who sat?", "answer": "The cat", "score": 0.75, "start": 0, "end": 7},
        {"id": "q2", "question": "Why?", "answer": "", "score": None}], "qa")
    assert header.split()[:2] == ["id", "score"]
    assert row == "   q1    0.750  'The cat'  ← Who sat?"
    assert empty == "   q2        -  (no answer)  ← Why?"


def test_a_task_without_a_table_prints_json_lines():
    assert Task().format_lines([{"x": 1}]) == [json.dumps({"x": 1})]
    assert all(get_task(name).format_lines([]) == [] for name in ("classification", "tagging", "qa"))
