"""The pipeline verbs of the CLI: similarity, classify, tag, answer (plain and --json output, user errors)."""
from __future__ import annotations

import json
import warnings

import pytest

from pipeline_fixtures import tiny_model_dir


@pytest.fixture(scope="module")
def dirs(tmp_path_factory, minilm_path):
    root = tmp_path_factory.mktemp("cli")
    return {
        "cls": tiny_model_dir(root / "cls", "BertForSequenceClassification", minilm_path, scale=30,
                              id2label={0: "neg", 1: "pos"}),
        "ner": tiny_model_dir(root / "ner", "BertForTokenClassification", minilm_path, scale=30,
                              id2label={0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}),
        "qa": tiny_model_dir(root / "qa", "BertForQuestionAnswering", minilm_path, scale=30),
    }


def run(capsys, *argv):
    from bertkit.cli import main
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_similarity(capsys, minilm_path):
    code, out, _ = run(capsys, "similarity", "A man is eating food.", "A plane is taking off.", "A man eats a meal.",
                       "--model", str(minilm_path), "--json")
    rows = json.loads(out)
    assert code == 0 and rows[0]["text"] == "A man eats a meal." and rows[0]["score"] > rows[1]["score"]
    code, _, err = run(capsys, "similarity", "only a source", "--model", str(minilm_path))
    assert code == 2 and "candidate" in err


def test_classify(capsys, dirs):
    from bertkit import pipeline
    code, out, _ = run(capsys, "classify", "I love Paris", "Sam hated the movie", "--model", str(dirs["cls"]),
                       "--top-k", "2", "--json")
    assert code == 0
    want = pipeline("text-classification", model=dirs["cls"])(["I love Paris", "Sam hated the movie"], top_k=2)
    got = json.loads(out)
    assert [[r["label"] for r in row] for row in got] == [[r["label"] for r in row] for row in want]
    assert [[r["score"] for r in row] for row in got] == [pytest.approx([r["score"] for r in row]) for row in want]
    code, out, _ = run(capsys, "classify", "He is playing", "--pair", "He is sleeping", "--model", str(dirs["cls"]))
    header, row = out.splitlines()
    best = pipeline("text-classification", model=dirs["cls"])({"text": "He is playing", "text_pair": "He is sleeping"})
    assert code == 0 and header.split() == ["#", "label", "prob", "text"]      # the table of `bertkit predict`
    assert row.split()[:3] == ["1", best["label"], f"{best['score']:.3f}"]
    assert row.endswith("He is playing ||| He is sleeping")
    code, out, _ = run(capsys, "classify", "I love Paris", "--model", str(dirs["cls"]), "--top-k", "2")
    assert code == 0 and "(next: " in out.splitlines()[1]


def test_tag(capsys, dirs):
    text = "Jeremy lives in Paris"
    code, out, _ = run(capsys, "tag", text, "--model", str(dirs["ner"]), "--aggregation", "first", "--json")
    groups = json.loads(out)[0]
    assert code == 0 and all(text[g["start"]:g["end"]] for g in groups)
    code, out, _ = run(capsys, "tag", text, "--model", str(dirs["ner"]))
    assert code == 0 and out.startswith(text)


def test_answer(capsys, dirs, tmp_path):
    passage = tmp_path / "p.txt"
    context = "Players live on a deserted island. Up to eight players can live together on one island."
    passage.write_text(context, encoding="utf-8")
    code, out, _ = run(capsys, "answer", "How many?", "--context-file", str(passage), "--model", str(dirs["qa"]),
                       "--top-k", "2", "--json")
    answers = json.loads(out)
    assert code == 0 and len(answers) == 2 and all(context[a["start"]:a["end"]] == a["answer"] for a in answers)
    code, _, err = run(capsys, "answer", "How many?", "--model", str(dirs["qa"]))
    assert code == 2 and "--context" in err
    code, _, err = run(capsys, "answer", "How many?", "--context", "x", "--model", str(tmp_path / "none"))
    assert code == 2 and "not found" in err
