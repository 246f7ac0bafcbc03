"""What the CLI reads from files and arguments: plain text files, the eval table, and user mistakes
(a missing or mistyped column, an unusable --device) as one line with exit status 2."""
from __future__ import annotations

import json
import re
import warnings

import pytest

from pipeline_fixtures import tiny_model_dir


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, minilm_path):
    """A tiny sst2 classifier folder (random weights, task.json as `bertkit finetune` writes it)."""
    folder = tiny_model_dir(tmp_path_factory.mktemp("inputs") / "cls", "BertForSequenceClassification", minilm_path,
                            scale=30, id2label={0: "negative", 1: "positive"})
    (folder / "task.json").write_text(json.dumps({"task": "sst2", "family": "classification", "options": {},
                                                  "max_seq_length": 64, "labels": ["0", "1"]}))
    return folder


def run(capsys, *argv):
    from bertkit.cli import main
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bertkit: error:"), lines
    return lines[0]


# ------------------------------------------------------------------ 1. plain text files, classify --file
def test_predict_and_classify_read_a_plain_text_file_one_text_per_line(capsys, classifier, tmp_path):
    texts = tmp_path / "reviews.txt"
    texts.write_text("a gorgeous, witty film\n\na dull mess\n", encoding="utf-8")
    code, out, err = run(capsys, "predict", "--model", classifier, "--file", texts)
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split()[:3] == ["line", "label", "prob"]
    assert [r.split()[0] for r in rows] == ["1", "3"] and rows[1].endswith("a dull mess")
    code, out2, err = run(capsys, "classify", "--model", classifier, "--file", texts)
    assert code == 0, err
    assert [r.split()[:2] for r in out2.splitlines()[1:]] == [r.split()[:2] for r in rows]


def test_a_file_given_as_a_text_says_to_use_file(capsys, classifier, tmp_path):
    texts = tmp_path / "reviews.txt"
    texts.write_text("a dull mess\n", encoding="utf-8")
    for verb in ("classify", "predict"):
        code, _, err = run(capsys, verb, texts, "--model", classifier)
        assert code == 2 and f"--file {texts}" in one_error_line(err)


def test_a_table_without_the_models_column_is_one_line_naming_the_header(capsys, classifier, tmp_path):
    table = tmp_path / "reviews.tsv"
    table.write_text("review\tlabel\na dull mess\t0\n", encoding="utf-8")
    code, _, err = run(capsys, "predict", "--model", classifier, "--file", table)
    line = one_error_line(err)
    assert code == 2 and "'sentence'" in line and "['review', 'label']" in line and "plain text" in line


# ------------------------------------------------------------------ 4. eval prints a table
def test_eval_prints_a_table_of_metric_and_value_and_json_on_request(capsys, classifier, tmp_path):
    data = tmp_path / "dev.tsv"
    data.write_text("sentence\tlabel\na gorgeous, witty film\t1\na dull mess\t0\nfine\t1\n", encoding="utf-8")
    code, out, err = run(capsys, "eval", "--model", classifier, "--data", data)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].split() == ["metric", "value"]
    rows = dict(line.split() for line in lines[1:])
    assert re.fullmatch(r"\d\.\d{4}", rows["accuracy"])
    assert len({len(line) for line in lines}) == 1                       # values aligned on the right
    code, out, _ = run(capsys, "eval", "--model", classifier, "--data", data, "--json")
    assert code == 0 and f"{json.loads(out)['accuracy']:.4f}" == rows["accuracy"]


# ------------------------------------------------------------------ 5. user mistakes: one line, exit 2
@pytest.fixture
def train_files(tmp_path):
    rows = [f"text number {i}\t{i % 2}" for i in range(40)]
    labelled, unlabelled = tmp_path / "train.tsv", tmp_path / "nolabel.tsv"
    labelled.write_text("sentence\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    unlabelled.write_text("sentence\tscore\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return labelled, unlabelled


def test_training_file_without_the_label_column_names_it_and_the_header(capsys, classifier, train_files, tmp_path):
    _, unlabelled = train_files
    code, _, err = run(capsys, "finetune", "--task", "sst2", "--model", classifier, "--train", unlabelled,
                       "--out", tmp_path / "run", "--epochs", "1")
    line = one_error_line(err)
    assert code == 2 and "'label'" in line and "['sentence', 'score']" in line and "--label-column" in line


def test_label_column_typo_names_the_column_and_the_header(capsys, classifier, train_files, tmp_path):
    labelled, _ = train_files
    code, _, err = run(capsys, "finetune", "--task", "classification", "--text-column", "sentence",
                       "--label-column", "lable", "--model", classifier, "--train", labelled,
                       "--out", tmp_path / "run", "--epochs", "1")
    line = one_error_line(err)
    assert code == 2 and "'lable'" in line and "['sentence', 'label']" in line


@pytest.mark.parametrize("argv", [
    ["finetune", "--task", "sst2", "--model", "{model}", "--train", "{train}", "--out", "{tmp}/run", "--epochs", "1"],
    ["eval", "--model", "{model}", "--data", "{train}"],
    ["predict", "--model", "{model}", "a dull mess"],
    ["classify", "a dull mess", "--model", "{model}"],
    ["embed", "a dull mess", "--model", "{model}"],
], ids=lambda argv: argv[0])
def test_a_device_this_machine_lacks_is_one_line_before_anything_loads(argv, capsys, classifier, train_files, tmp_path,
                                                                        monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = []
    monkeypatch.setattr("bertkit.tasks.classification.read_table", lambda *a, **k: loaded.append(a))
    argv = [a.format(model=classifier, train=train_files[0], tmp=tmp_path) for a in argv]
    code, _, err = run(capsys, *argv, "--device", "cuda")
    line = one_error_line(err)
    assert code == 2 and "--device cuda" in line and "the devices here: cpu" in line and not loaded


def test_resolve_device_checks_names_and_indices(monkeypatch):
    import torch

    from bertkit.common.devices import resolve_device
    from bertkit.common.errors import BertkitError
    assert resolve_device("cpu") == torch.device("cpu") and resolve_device(-1) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1") and resolve_device(None).type == "cuda"
    with pytest.raises(BertkitError, match=r"has 2 CUDA GPUs; the devices here: cpu, cuda:0, cuda:1"):
        resolve_device("cuda:2")
    with pytest.raises(BertkitError, match="not a device name"):
        resolve_device("gpu")
