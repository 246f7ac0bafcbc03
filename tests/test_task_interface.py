"""What orchestration asks of a task family is a method of the task (tasks/base.py's `Task`):
training/, pipelines/, cli/ and apps/ never branch on the family."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from bertkit.common.defaults import MAX_SEQ_LENGTH, QA_MAX_SEQ_LENGTH
from bertkit.common.errors import InputError
from bertkit.tasks import QAExample, TaggedExample, TextExample, get_task, pipeline_tag_of

SRC = Path(__file__).resolve().parents[1] / "src" / "bertkit"
ORCHESTRATION = ("training", "pipelines", "cli", "apps")
# a comparison with a family, a family's name as a string, or a guess from an example's fields
FAMILY_SWITCH = re.compile(r"""family["')\]]*\s*[!=]=\s*["']|hasattr\(ex\w*, ["'](words|question|text)["']|"""
                           r"""["'](words|question)["'] in (first|row)""")


def test_orchestration_never_branches_on_the_family():
    found = [f"{path.relative_to(SRC)}:{n}: {line.strip()}"
             for floor in ORCHESTRATION for path in sorted((SRC / floor).rglob("*.py"))
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if FAMILY_SWITCH.search(line)]
    assert found == []


def test_the_family_guard_sees_a_switch():
    assert FAMILY_SWITCH.search('    elif task.family == "qa":')
    assert FAMILY_SWITCH.search('        if hasattr(ex, "words"):')
    assert FAMILY_SWITCH.search('    if "words" in first and "tags" in first:')


def test_default_lengths_are_the_familys():
    assert get_task("sst2").default_max_seq_length == MAX_SEQ_LENGTH
    assert get_task("conll2003").default_max_seq_length == MAX_SEQ_LENGTH
    assert get_task("squad").default_max_seq_length == QA_MAX_SEQ_LENGTH


def test_texts_of_is_what_the_model_reads():
    assert list(get_task("mrpc").texts_of([TextExample("a b", "c", "1")])) == ["a b c"]
    assert list(get_task("conll2003").texts_of([TaggedExample(["EU", "rejects"], ["B-ORG", "O"])])) == ["EU rejects"]
    qa = QAExample(id="1", question="Who?", context="x" * 600)
    assert list(get_task("squad").texts_of([qa])) == ["Who? " + "x" * 500]


def test_examples_from_inputs_per_family():
    single = get_task("sst2").examples_from_inputs(["good", "bad"])
    assert [(ex.text, ex.text_pair) for ex in single] == [("good", None), ("bad", None)]
    pairs = get_task("mrpc").examples_from_inputs(["a", "b", "c", "d"])
    assert [(ex.text, ex.text_pair) for ex in pairs] == [("a", "b"), ("c", "d")]
    assert [ex.words for ex in get_task("conll2003").examples_from_inputs(["EU rejects it"])] == [["EU", "rejects", "it"]]
    qa = get_task("squad").examples_from_inputs(["Who?", "Kim sat."])
    assert [(ex.question, ex.context) for ex in qa] == [("Who?", "Kim sat.")]
    with pytest.raises(InputError, match="pairs"):
        get_task("squad").examples_from_inputs(["Who?"])
    with pytest.raises(InputError, match="pairs"):
        get_task("mrpc").examples_from_inputs(["a", "b", "c"])


class _Tokenizer:
    pad_token_id = 7


@pytest.mark.parametrize("name", ["sst2", "conll2003", "squad"])
def test_use_tokenizer_sets_the_padding_of_collate(name):
    task = get_task(name)
    task.use_tokenizer(_Tokenizer())
    feature = {"input_ids": [1, 2, 3], "token_type_ids": [0, 0, 0], "example_index": 0, "labels": 0,
               "start_positions": 0, "end_positions": 0}
    short = {**feature, "input_ids": [1], "token_type_ids": [0]}
    if name == "conll2003":
        feature["labels"], short["labels"] = [-100, 0, -100], [-100]
    batch = task.collate([feature, short])
    assert batch["input_ids"][1].tolist() == [1, 7, 7]


def test_pipeline_tag_per_family():
    assert [pipeline_tag_of(f) for f in ("classification", "regression", "tagging", "qa", None)] == [
        "text-classification", "text-classification", "token-classification", "question-answering",
        "text-classification"]
