"""Readers: the real files read completely and fast; bad input is counted, never silent."""
from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from bertkit.common.errors import InputError, NotFoundError
from bertkit.tasks import get_task, describe_tasks, TASK_NAMES
from bertkit.tasks.metrics import get_entities
from bertkit.tasks.readers import (kmou_tag_to_iob2, read_conll, read_jsonl, read_kmou, read_table,
                                   train_valid_split)
from bertkit.tasks.squad import read_squad
from conftest import data_file


# ------------------------------------------------------------------------ real files

@pytest.mark.parametrize("task,parts,count,first", [
    ("nsmc", ("nsmc", "ratings_train.txt"), 150_000, ("아 더빙.. 진짜 짜증나네요 목소리", None, "0")),
    ("sst2", ("glue", "SST-2", "train.tsv"), 67_349, ("hide new secretions from the parental units ", None, "0")),
    ("cola", ("glue", "CoLA", "train.tsv"), 8_551,
     ("Our friends won't buy this analysis, let alone the next one we propose.", None, "1")),
    ("mrpc", ("glue", "MRPC", "train.tsv"), 3_668,
     ('Amrozi accused his brother, whom he called "the witness", of deliberately distorting his evidence.',
      'Referring to him as only "the witness", Amrozi accused his brother of deliberately distorting his evidence.',
      "1")),
    ("rte", ("glue", "RTE", "train.tsv"), 2_490,
     ("No Weapons of Mass Destruction Found in Iraq Yet.", "Weapons of Mass Destruction Found in Iraq.",
      "not_entailment")),
    ("stsb", ("glue", "STS-B", "train.tsv"), 5_749, ("A plane is taking off.", "An air plane is taking off.", 5.0)),
])
def test_real_text_files_read_completely(task, parts, count, first):
    t = get_task(task)
    examples = t.read(data_file(*parts))
    assert len(examples) == count
    assert (examples[0].text, examples[0].text_pair, examples[0].label) == first
    assert examples.report.num_skipped() == 0
    labels = {ex.label for ex in examples}
    if t.family == "classification":
        assert labels == set(t.labels)                  # every label known, none missing
    else:
        assert min(labels) == 0.0 and max(labels) == 5.0


def test_nsmc_is_read_in_a_few_seconds_and_keeps_quotes():
    start = time.perf_counter()
    examples = get_task("nsmc").read(data_file("nsmc", "ratings_train.txt"))
    assert time.perf_counter() - start < 8.0
    assert sum('"' in ex.text for ex in examples) > 0           # QUOTE_NONE: quotes stay in the text
    assert Counter(ex.label for ex in examples) == Counter({"0": 75173, "1": 74827})
    assert examples.report.notes["rows with an empty text (kept)"] == 5


def test_conll2003_sentence_and_entity_counts_match_the_official_statistics():
    examples = get_task("conll2003").read(data_file("conll2003", "train.txt"))
    assert len(examples) == 14_041
    assert examples.report.notes["'-DOCSTART-' document separators (not words)"] == 946
    assert [ex.line for ex in examples[:3]] == [3, 13, 16]              # where each sentence starts
    counts = Counter(t for t, _, _ in get_entities([ex.tags for ex in examples]))
    assert counts == {"LOC": 7140, "MISC": 3438, "ORG": 6321, "PER": 6600}
    assert all(len(ex.words) == len(ex.tags) for ex in examples)


def test_korean_ner_blocks_become_iob2_morpheme_sentences():
    path = data_file("ko_ner", "ner.train")
    examples = read_kmou(path)
    assert len(examples) == 2_928 and examples.report.num_skipped() == 0
    first = examples[0]
    assert first.words[:5] == ["나", "도", "때늦", "은", "홍길동"] and first.tags[4] == "B-PS"
    assert first.text.startswith("나도 때늦은 홍길동이보다는")
    # entity count = number of B_ tags in the file; every I got its entity's type
    raw_b = Counter(line.split("\t")[3][2:].strip() for line in open(path, encoding="utf-8")
                    if line.count("\t") == 3 and line.split("\t")[3].startswith("B_"))
    entities = Counter(t for t, _, _ in get_entities([ex.tags for ex in examples]))
    assert entities == raw_b == {"PS": 2518, "LC": 1390, "OG": 1065, "DT": 1089, "TI": 213}
    assert all(t == "O" or t[:2] in ("B-", "I-") for ex in examples for t in ex.tags)


def test_kmou_tag_conversion():
    assert kmou_tag_to_iob2("B_PS", None) == ("B-PS", "PS")
    assert kmou_tag_to_iob2("I", "PS") == ("I-PS", "PS")
    assert kmou_tag_to_iob2("I", None) == ("O", None)
    assert kmou_tag_to_iob2("O", "PS") == ("O", None)


def test_korquad_reads_every_question_with_answers_in_place():
    examples = read_squad(data_file("korquad1", "KorQuAD_v1.0_dev_half_a.json"))
    assert len(examples) == 3_316
    assert len({ex.article for ex in examples}) == 70
    for ex in examples:
        for answer, ok in zip(ex.answers, ex.answer_ok):
            if ok:
                start = answer["answer_start"]
                assert ex.context[start:start + len(answer["text"])] == answer["text"]
    assert sum(all(ex.answer_ok) for ex in examples) >= 3_300


# ------------------------------------------------------------------------ bad input

def test_table_bad_rows_are_counted_with_line_numbers(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text('text\tlabel\nfine "quoted" text\tpos\n\nno label column\n\tneg\nlast\t\n', encoding="utf-8")
    examples = read_table(path, "text", label_column="label")
    assert [(ex.text, ex.label) for ex in examples] == [('fine "quoted" text', "pos"), ("", "neg")]
    assert [ex.line for ex in examples] == [2, 5]
    report = examples.report
    short = "rows with fewer than 2 tab-separated columns"
    assert report.skipped == {"empty lines": 1, short: 1, "rows with an empty label": 1}
    assert report.where[short] == [4]
    assert report.notes["rows with an empty text (kept)"] == 1
    text = report.summary()
    assert "2 examples, 3 skipped" in text
    assert (f"skipped: 1 row with fewer than 2 tab-separated columns (line 4 of {path}); "
            "a .csv file is split at commas, any other file at tabs") in text
    assert f"skipped: 1 empty line (line 3 of {path})" in text


def test_table_errors_name_the_problem(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("sentence\tlabel\nhello\t1\n", encoding="utf-8")
    with pytest.raises(InputError, match="no column named 'text'.*sentence"):
        read_table(path, "text", label_column="label")
    with pytest.raises(NotFoundError, match="not found"):
        read_table(tmp_path / "missing.tsv", "text")
    # a missing label column means unlabelled data (predict), said out loud
    examples = read_table(path, "sentence", label_column="gold")
    assert examples[0].label is None and "unlabelled" in examples.report.summary()


def test_regression_label_that_is_not_a_number(tmp_path):
    path = tmp_path / "sts.tsv"
    path.write_text("a\tb\tscore\nx\ty\t4.5\nx\ty\thigh\n", encoding="utf-8")
    examples = read_table(path, "a", "b", "score", label_type=float)
    assert [ex.label for ex in examples] == [4.5]
    assert examples.report.skipped["rows whose label is not a number"] == 1
    assert f"(line 3 ('high') of {path})" in examples.report.summary()


def test_csv_with_quotes_and_bom_and_jsonl(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text('\ufeffreview,stars\n"good, really",5\n"said ""meh""",2\n', encoding="utf-8")
    examples = read_table(path, "review", label_column="stars")
    assert [(ex.text, ex.label) for ex in examples] == [("good, really", "5"), ('said "meh"', "2")]
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text(json.dumps({"q": "a", "p": "b", "y": 1}) + "\n\nnot json\n" + json.dumps({"p": "c"}) + "\n",
                     encoding="utf-8")
    examples = read_jsonl(jsonl, "q", "p", "y")
    assert [(ex.text, ex.text_pair, ex.label) for ex in examples] == [("a", "b", "1")]
    assert examples.report.num_skipped() == 3


def test_conll_custom_columns_and_short_lines(tmp_path):
    path = tmp_path / "ner.txt"
    path.write_text("-DOCSTART- -X- O\n\nJohn NNP B-PER\nlives VBZ O\nbroken\n\n\nParis NNP B-LOC\n", encoding="utf-8")
    examples = read_conll(path, word_column=0, tag_column=2)
    assert [(ex.words, ex.tags) for ex in examples] == [(["John", "lives"], ["B-PER", "O"]), (["Paris"], ["B-LOC"])]
    assert examples.report.skipped == {"word lines with fewer than 3 columns": 1}
    assert f"(line 5 of {path}); the tag is read from column 2" in examples.report.summary()
    unlabelled = read_conll(path, tag_column=None)
    assert unlabelled[0].tags is None and unlabelled[0].words == ["John", "lives", "broken"]


def test_squad_answers_out_of_place_and_unanswerable(tmp_path):
    data = {"data": [{"title": "t", "paragraphs": [{"context": "The cat sat on the mat. The cat left.", "qas": [
        {"id": "ok", "question": "who sat?", "answers": [{"text": "The cat", "answer_start": 0}]},
        {"id": "moved", "question": "who left?", "answers": [{"text": "The cat", "answer_start": 26}]},
        {"id": "absent", "question": "where?", "answers": [{"text": "the sofa", "answer_start": 3}]},
        {"id": "impossible", "question": "why?", "answers": [], "is_impossible": True},
    ]}]}]}
    path = tmp_path / "qa.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    examples = read_squad(path)
    assert [ex.id for ex in examples] == ["ok", "moved", "absent"]
    assert examples[1].answers[0]["answer_start"] == 24 and examples[1].answer_ok == [True]
    assert examples[2].answer_ok == [False]
    r = examples.report
    assert r.notes["answer_start corrected to the nearest occurrence of the text"] == 1
    assert r.notes["answer text not found in context (scored, not trained on)"] == 1
    assert r.skipped["unanswerable question (SQuAD 2.0): read with version_2_with_negative=True (task squad2)"] == 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1}', encoding="utf-8")
    with pytest.raises(ValueError, match="SQuAD-format"):
        read_squad(bad)


# ------------------------------------------------------------------------ splitting & registry

def test_split_is_seeded_and_by_article_for_qa():
    examples = read_squad(data_file("korquad1", "KorQuAD_v1.0_dev_half_a.json"))
    task = get_task("korquad")
    train, valid = task.train_valid_split(examples, 0.1, seed=1)
    again_train, again_valid = task.train_valid_split(examples, 0.1, seed=1)
    assert [e.id for e in valid] == [e.id for e in again_valid]
    assert len(train) + len(valid) == len(examples)
    assert not {e.article for e in train} & {e.article for e in valid}
    assert len({e.article for e in valid}) == 7
    _, other = task.train_valid_split(examples, 0.1, seed=2)
    assert {e.id for e in other} != {e.id for e in valid}


def test_plain_split_sizes():
    train, valid = train_valid_split(list(range(1000)), 0.05, seed=0)
    assert len(valid) == 50 and sorted(train + valid) == list(range(1000))
    with pytest.raises(InputError, match="between 0 and 1"):
        train_valid_split([1, 2], 1.5)


def test_registry():
    assert set(describe_tasks()) == set(TASK_NAMES)
    for name in TASK_NAMES:
        task = get_task(name)
        assert task.model_class.startswith("BertFor") and task.main_metric
    assert get_task("SST-2").name == "sst2" and get_task("ko-ner").name == "ko_ner"
    with pytest.raises(InputError, match="unknown task 'sst3'.*sst2"):
        get_task("sst3")
    assert get_task("classification", text_column="review").columns["text_column"] == "review"
