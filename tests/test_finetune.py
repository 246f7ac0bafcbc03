"""Fine-tuning glue, end to end: `run_finetune`, then `bertkit eval` / `bertkit predict`.

Every family of the BERT paper is fine-tuned once (module fixtures) on a tiny *real*
subset (a few dozen to a few hundred examples from ../shared/data) with a tiny random
BERT (2 layers, H=32) whose WordPiece vocab is trained in the test from the same text
(English: GLUE + CoNLL lines; Korean: the KorQuAD contexts and questions).  Then:

* `best/` holds everything eval/predict need, `results.json` one row per epoch;
* `bertkit eval` on the validation file gives back exactly the best epoch's score
  (so best/ really is the best model, saved and reloaded without loss);
* `bertkit predict` gives well-formed, sane predictions;
* a model used for the wrong task, and bad input files, give one-line errors.

The scores themselves are meaningless (random tiny models); one test checks that the
glue can learn at all by letting a tiny model memorise 64 SST-2 sentences.
"""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import data_file
from test_time_budget import FakeClock

import bertkit.training.budget as budget_module
from bertkit import BertConfig, BertModel
from bertkit.cli import main
from bertkit.training.finetune import FinetuneSettings, FinetuneTraining, run_finetune
from bertkit.training.settings import TrainingSettings
from bertkit.tasks import CONLL2003_LABELS
from bertkit.text.vocab import train_vocab

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
BEST_FILES = ("config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", "task.json")


# ----------------------------------------------------------------------------- helpers

def head_lines(src: Path, dst: Path, start: int, stop: int, header: bool = True) -> Path:
    """Copy lines [start, stop) of a table (plus its header line) to `dst`."""
    lines = src.read_text(encoding="utf-8-sig").splitlines()
    body = lines[1:] if header else lines
    dst.write_text("\n".join(([lines[0]] if header else []) + body[start:stop]) + "\n", encoding="utf-8")
    return dst


def conll_sentences(src: Path, dst: Path, start: int, stop: int) -> Path:
    """Copy sentences [start, stop) of a CoNLL file (blank-line separated, -DOCSTART- dropped)."""
    blocks = [b for b in src.read_text(encoding="utf-8").split("\n\n") if b.strip() and "-DOCSTART-" not in b]
    dst.write_text("\n\n".join(b.strip("\n") for b in blocks[start:stop]) + "\n", encoding="utf-8")
    return dst


def tiny_checkpoint(out: Path, tokenizer, max_positions: int = 128, seed: int = 0, **overrides) -> Path:
    """A random 2-layer BERT + tokenizer saved in the standard layout (an encoder without a head)."""
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tokenizer.vocab_size, max_position_embeddings=max_positions,
                        **{**TINY, **overrides})
    BertModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def finetune(model: Path, task: str, train: Path, out: Path, eval_file: Path | None = None, **settings) -> dict:
    settings = {"epochs": 2, "batch_size": 16, "learning_rate": 1e-3, "max_seq_length": 64, "patience": 0,
                "progress": False, **settings}
    names = {f.name for f in dataclasses.fields(TrainingSettings)}
    training = FinetuneTraining(**{k: settings.pop(k) for k in list(settings) if k in names})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)     # "classifier weights newly initialized"
        return run_finetune(FinetuneSettings(task=task, model=str(model), train=str(train), out=str(out),
                                             eval=str(eval_file) if eval_file else None, training=training,
                                             **settings))


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run `bertkit ARGV` in-process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys, *argv: str):
    code, out, err = cli(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def cli_json_lines(capsys, *argv: str) -> list[dict]:
    code, out, err = cli(capsys, *argv, "--json")
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("bertkit: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def check_run(result: dict, out: Path, metric: str, epochs: int, steps_per_epoch: int, eval_examples: int):
    """results.json = the returned dict; one row per epoch at the epoch's last step; best = the max."""
    saved = json.loads((out / "results.json").read_text())
    assert saved == json.loads(json.dumps(result))
    rows = saved["epochs"]
    assert [r["step"] for r in rows] == [steps_per_epoch * (e + 1) for e in range(epochs)]
    assert all(r["num_examples"] == eval_examples for r in rows)
    assert saved["best"] == max(rows, key=lambda r: r[metric])        # first of equal maxima
    assert saved["steps"] == epochs * steps_per_epoch and saved["train_examples_per_s"] > 0
    for name in BEST_FILES:
        assert (out / "best" / name).is_file(), name
    return saved


# ----------------------------------------------------------------------------- fixtures

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def english(tmp_path_factory) -> dict:
    """Tiny real subsets of SST-2, MRPC, RTE, STS-B, CoNLL-2003 and a tiny BERT with a vocab trained on them."""
    root = tmp_path_factory.mktemp("english")
    glue = lambda name: data_file("glue", name, "train.tsv")          # noqa: E731
    files = {
        "sst2_train": head_lines(glue("SST-2"), root / "sst2_train.tsv", 0, 176),    # 11 batches of 16
        "sst2_eval": head_lines(glue("SST-2"), root / "sst2_eval.tsv", 1000, 1064),
        "mrpc_train": head_lines(glue("MRPC"), root / "mrpc_train.tsv", 0, 96),
        "mrpc_eval": head_lines(glue("MRPC"), root / "mrpc_eval.tsv", 500, 548),
        "rte_train": head_lines(glue("RTE"), root / "rte_train.tsv", 0, 64),
        "stsb_train": head_lines(glue("STS-B"), root / "stsb_train.tsv", 0, 96),
        "stsb_eval": head_lines(glue("STS-B"), root / "stsb_eval.tsv", 3000, 3048),
        "conll_train": conll_sentences(data_file("conll2003", "train.txt"), root / "conll_train.txt", 0, 96),
        "conll_eval": conll_sentences(data_file("conll2003", "train.txt"), root / "conll_eval.txt", 5000, 5048),
    }
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(p.read_text(encoding="utf-8") for p in files.values()), encoding="utf-8")
    tokenizer = train_vocab([corpus], vocab_size=2000)
    return {"root": root, "model": tiny_checkpoint(root / "tiny", tokenizer), "tokenizer": tokenizer, **files}


@pytest.fixture(scope="module")
def sst2(english) -> dict:
    out = english["root"] / "sst2_run"
    result = finetune(english["model"], "sst2", english["sst2_train"], out, english["sst2_eval"], epochs=3)
    return {"out": out, "best": out / "best", "result": result}


@pytest.fixture(scope="module")
def korquad(tmp_path_factory) -> dict:
    """4 KorQuAD articles (3 to train, 1 to evaluate), a Korean vocab trained on them, a tiny BERT."""
    root = tmp_path_factory.mktemp("korquad")
    data = json.loads(data_file("korquad1", "KorQuAD_v1.0_dev_half_a.json").read_text(encoding="utf-8"))
    articles = data["data"][:4]
    for name, part in (("train", articles[:3]), ("eval", articles[3:])):
        (root / f"{name}.json").write_text(json.dumps({"version": "sub", "data": part}, ensure_ascii=False),
                                           encoding="utf-8")
    text = [p["context"] for a in articles for p in a["paragraphs"]]
    text += [q["question"] for a in articles for p in a["paragraphs"] for q in p["qas"]]
    (root / "corpus.txt").write_text("\n".join(text), encoding="utf-8")
    tokenizer = train_vocab([root / "corpus.txt"], vocab_size=1500, do_lower_case=False)
    model = tiny_checkpoint(root / "tiny", tokenizer, max_positions=256)
    result = finetune(model, "korquad", root / "train.json", root / "run", root / "eval.json",
                      max_seq_length=192, epochs=2)
    return {"root": root, "best": root / "run" / "best", "result": result, "articles": articles}


# ----------------------------------------------------------------------------- single text: SST-2

def test_sst2_finetune_writes_best_dir_and_per_epoch_results(sst2, english):
    saved = check_run(sst2["result"], sst2["out"], "accuracy", epochs=3, steps_per_epoch=11, eval_examples=64)
    assert saved["train_examples"] == 176 and saved["eval_examples"] == 64
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in saved["epochs"])
    info = json.loads((sst2["best"] / "task.json").read_text())
    assert info["task"] == "sst2" and info["family"] == "classification" and info["max_seq_length"] == 64
    assert info["labels"] == ["0", "1"] and info["names"] == ["negative", "positive"]   # file values, names
    config = json.loads((sst2["best"] / "config.json").read_text())
    assert config["num_labels"] == 2 and config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["label2id"] == {"negative": 0, "positive": 1}
    assert config["architectures"] == ["BertForSequenceClassification"]


def test_sst2_eval_cli_gives_back_the_best_epoch_score(sst2, english, capsys):
    scores = cli_json(capsys, "eval", "--model", sst2["best"], "--data", english["sst2_eval"])
    assert scores["examples"] == 64 and scores["skipped_rows"] == 0
    assert scores["accuracy"] == pytest.approx(sst2["result"]["best"]["accuracy"], abs=1e-12)


def test_sst2_predict_cli_texts_and_file(sst2, english, capsys):
    rows = cli_json_lines(capsys, "predict", "--model", sst2["best"], "a gorgeous , witty film", "dull and tired")
    assert [r["text"] for r in rows] == ["a gorgeous , witty film", "dull and tired"]
    for row in rows:
        assert row["label"] in ("negative", "positive") and 0.5 <= row["probability"] <= 1.0
        assert "gold" not in row and "line" not in row
    from_file = cli_json_lines(capsys, "predict", "--model", sst2["best"], "--file", english["sst2_eval"])
    assert len(from_file) == 64 and all(r["label"] in ("negative", "positive") for r in from_file)
    gold = [("negative", "positive")[int(line.rsplit("\t", 1)[1])]
            for line in english["sst2_eval"].read_text().splitlines()[1:]]
    assert [r["gold"] for r in from_file] == gold                       # the file's label is kept, as gold
    assert [r["line"] for r in from_file] == list(range(2, 66))         # file lines, the header is line 1
    code, out, _ = cli(capsys, "predict", "--model", sst2["best"], "a gorgeous , witty film", "dull and tired")
    header, *table = out.splitlines()                                    # people get a table
    assert code == 0 and header.split() == ["#", "label", "prob", "text"]
    assert [line.split()[0] for line in table] == ["1", "2"] and table[1].endswith("dull and tired")
    assert all(line.split()[1] in ("negative", "positive") for line in table)


def test_label_names_are_what_transformers_and_the_pipelines_see(sst2):
    transformers = pytest.importorskip("transformers")
    assert transformers.AutoConfig.from_pretrained(sst2["best"]).id2label == {0: "negative", 1: "positive"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = transformers.BertForSequenceClassification.from_pretrained(sst2["best"])
    assert reference.config.id2label == {0: "negative", 1: "positive"}
    assert reference.config.label2id == {"negative": 0, "positive": 1}
    from bertkit import pipeline
    [best] = pipeline("text-classification", model=sst2["best"])("a gorgeous , witty film")
    assert best["label"] in ("negative", "positive")


def test_predict_file_table_numbers_file_lines_and_marks_gold(sst2, english, capsys):
    rows = cli_json_lines(capsys, "predict", "--model", sst2["best"], "--file", english["sst2_eval"])
    code, out, _ = cli(capsys, "predict", "--model", sst2["best"], "--file", english["sst2_eval"])
    header, *table = out.splitlines()
    assert code == 0 and header.split() == ["line", "label", "prob", "gold", "text"] and len(table) == 64
    for line, row in zip(table, rows):
        number, label, prob, gold, mark = line.split()[:5]
        assert (int(number), label, gold) == (row["line"], row["label"], row["gold"])
        assert float(prob) == pytest.approx(row["probability"], abs=5e-4)
        assert mark == ("✓" if row["label"] == row["gold"] else "✗")


def test_classify_prints_the_table_of_predict(sst2, capsys):
    text = "a gorgeous , witty film"
    [row] = cli_json_lines(capsys, "predict", "--model", sst2["best"], text)
    code, out, _ = cli(capsys, "classify", text, "--model", sst2["best"])
    predicted = cli(capsys, "predict", "--model", sst2["best"], text)[1]
    assert code == 0 and out == predicted                                 # the same table, line for line
    code, out, _ = cli(capsys, "classify", text, "--model", sst2["best"], "--top-k", "2")
    other = ({"negative", "positive"} - {row["label"]}).pop()
    assert code == 0 and f"(next: {other} " in out.splitlines()[1]


def test_a_model_fine_tuned_before_label_names_still_works(sst2, english, capsys, tmp_path):
    """id2label {0: "0", 1: "1"} and a task.json without labels: what bertkit wrote before names."""
    old = tmp_path / "old"
    shutil.copytree(sst2["best"], old)
    config = json.loads((old / "config.json").read_text())
    config.update(id2label={"0": "0", "1": "1"}, label2id={"0": 0, "1": 1})
    (old / "config.json").write_text(json.dumps(config))
    info = json.loads((old / "task.json").read_text())
    info.pop("labels"), info.pop("names")
    (old / "task.json").write_text(json.dumps(info))
    scores = cli_json(capsys, "eval", "--model", old, "--data", english["sst2_eval"])
    assert scores["accuracy"] == pytest.approx(sst2["result"]["best"]["accuracy"], abs=1e-12)
    new_rows = cli_json_lines(capsys, "predict", "--model", sst2["best"], "--file", english["sst2_eval"])
    old_rows = cli_json_lines(capsys, "predict", "--model", old, "--file", english["sst2_eval"])
    assert old_rows == new_rows                                          # sst2 keeps its own names


def test_label_names_flag_on_your_own_data(english, capsys, tmp_path):
    out = tmp_path / "run"
    code, _, err = cli(capsys, "finetune", "--task", "classification", "--text-column", "sentence",
                       "--label-names", "0=neg,1=pos", "--model", english["model"], "--train",
                       english["sst2_train"], "--eval", english["sst2_eval"], "--out", out, "--epochs", "1",
                       "--batch-size", "32", "--max-seq-length", "32")
    assert code == 0, err
    assert json.loads((out / "best" / "config.json").read_text())["id2label"] == {"0": "neg", "1": "pos"}
    info = json.loads((out / "best" / "task.json").read_text())
    assert info["labels"] == ["0", "1"] and info["options"]["label_names"] == "0=neg,1=pos"
    best = json.loads((out / "results.json").read_text())["best"]
    scores = cli_json(capsys, "eval", "--model", out / "best", "--data", english["sst2_eval"])
    assert scores["accuracy"] == pytest.approx(best["accuracy"], abs=1e-12)   # files are read by value
    rows = cli_json_lines(capsys, "predict", "--model", out / "best", "--file", english["sst2_eval"])
    assert {r["label"] for r in rows} <= {"neg", "pos"} and {r["gold"] for r in rows} == {"neg", "pos"}


def test_bad_labels_are_refused_before_any_model_is_loaded(english, capsys, tmp_path):
    train = tmp_path / "train.tsv"
    train.write_text("sentence\tlabel\ngood film\t1\nodd film\t2\nbad film\t0\nmeh\tneutral\n",
                     encoding="utf-8")
    no_model = tmp_path / "never_loaded"                  # would fail if anything tried to load it
    code, _, err = cli(capsys, "finetune", "--task", "sst2", "--model", no_model, "--train", train,
                       "--out", tmp_path / "run")
    assert_one_line_error(code, err, f"lines 3 ('2'), 5 ('neutral') of {train}", "0=negative, 1=positive",
                          "--task classification --text-column sentence --label-column label", "--label-names")
    assert "never_loaded" not in err and not (tmp_path / "run").exists()
    code, _, err = cli(capsys, "finetune", "--task", "classification", "--text-column", "sentence",
                       "--label-names", "0=bad,1=good", "--model", no_model, "--train", train, "--out",
                       tmp_path / "run")
    assert_one_line_error(code, err, "--label-names gives no name for label(s) '2', 'neutral'")


def test_unknown_task_names_the_closest(capsys, tmp_path):
    code, _, err = cli(capsys, "finetune", "--task", "sst", "--train", tmp_path / "t.tsv", "--out", tmp_path / "r")
    assert_one_line_error(code, err, "unknown task 'sst' (did you mean 'sst2'?)", "the tasks are: sst2, cola")


def test_finetune_learns_a_tiny_sst2_subset(english, tmp_path):
    """The loop, labels and head are wired right: a tiny model memorises 64 sentences."""
    train = head_lines(data_file("glue", "SST-2", "train.tsv"), tmp_path / "train.tsv", 0, 64)
    model = tiny_checkpoint(tmp_path / "tiny", english["tokenizer"], hidden_dropout_prob=0.0,
                            attention_probs_dropout_prob=0.0)
    result = finetune(model, "sst2", train, tmp_path / "run", train, epochs=12, learning_rate=3e-3,
                      warmup_ratio=0.0)
    accuracies = [r["accuracy"] for r in result["epochs"]]
    assert accuracies[0] < 0.9 and result["best"]["accuracy"] >= 0.95, accuracies


# ----------------------------------------------------------------------------- text pairs: MRPC, RTE

def test_mrpc_pair_classification_end_to_end(english, capsys):
    out = english["root"] / "mrpc_run"
    result = finetune(english["model"], "mrpc", english["mrpc_train"], out, english["mrpc_eval"])
    check_run(result, out, "f1", epochs=2, steps_per_epoch=6, eval_examples=48)
    assert {"f1", "accuracy"} <= set(result["best"])
    scores = cli_json(capsys, "eval", "--model", out / "best", "--data", english["mrpc_eval"])
    assert scores["f1"] == pytest.approx(result["best"]["f1"], abs=1e-12)
    assert scores["accuracy"] == pytest.approx(result["best"]["accuracy"], abs=1e-12)
    rows = cli_json_lines(capsys, "predict", "--model", out / "best", "He said it.", "It was said by him.",
                          "The cat sat.", "Stocks fell sharply.")
    assert [(r["text"], r["text_pair"]) for r in rows] == [("He said it.", "It was said by him."),
                                                          ("The cat sat.", "Stocks fell sharply.")]
    assert all(r["label"] in ("not_equivalent", "equivalent") for r in rows)


def test_rte_through_the_cli_with_generic_pair_task_and_column_options(english, capsys):
    """`bertkit finetune --task pair-classification --text-column ... --pair-column ...` (labels from data)."""
    out = english["root"] / "rte_run"
    code, _, err = cli(capsys, "finetune", "--task", "pair-classification", "--model", english["model"],
                       "--train", english["rte_train"], "--out", out, "--epochs", "1", "--batch-size", "16",
                       "--max-length", "64", "--eval-fraction", "0.25", "--text-column", "sentence1",
                       "--pair-column", "sentence2", "--label-column", "label")
    assert code == 0, err
    # the notes say what was cut, where (lines of which file) and what to do
    assert re.search(r"note: \d+ text pairs longer than max_seq_length=64 tokens were cut \(lines \d+, \d+, \d+, … "
                     rf"of {re.escape(str(english['rte_train']))}\); raise --max-seq-length to keep more", err), err
    assert "[train_encode]" not in err and "max_length" not in err
    info = json.loads((out / "best" / "task.json").read_text())
    assert info["options"] == {"text_column": "sentence1", "text_pair_column": "sentence2", "label_column": "label"}
    result = json.loads((out / "results.json").read_text())
    assert result["train_examples"] == 48 and result["eval_examples"] == 16 and len(result["epochs"]) == 1
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["id2label"] == {"0": "entailment", "1": "not_entailment"}
    rows = cli_json_lines(capsys, "predict", "--model", out / "best", "A man sleeps.", "Someone is asleep.")
    assert len(rows) == 1 and rows[0]["text_pair"] == "Someone is asleep."
    assert rows[0]["label"] in ("entailment", "not_entailment")
    scores = cli_json(capsys, "eval", "--model", out / "best", "--data", english["rte_train"])
    assert scores["examples"] == 64 and 0.0 <= scores["accuracy"] <= 1.0


# ----------------------------------------------------------------------------- regression: STS-B

def test_stsb_regression_end_to_end(english, capsys):
    out = english["root"] / "stsb_run"
    result = finetune(english["model"], "stsb", english["stsb_train"], out, english["stsb_eval"])
    check_run(result, out, "pearson", epochs=2, steps_per_epoch=6, eval_examples=48)
    assert all(-1.0 <= r["pearson"] <= 1.0 and -1.0 <= r["spearman"] <= 1.0 for r in result["epochs"])
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["num_labels"] == 1 and config["problem_type"] == "regression"
    scores = cli_json(capsys, "eval", "--model", out / "best", "--data", english["stsb_eval"])
    assert scores["pearson"] == pytest.approx(result["best"]["pearson"], abs=1e-9)
    rows = cli_json_lines(capsys, "predict", "--model", out / "best", "A man plays a flute.", "A man plays music.")
    assert len(rows) == 1 and isinstance(rows[0]["score"], float) and "label" not in rows[0]


# ----------------------------------------------------------------------------- tagging: CoNLL-2003

def test_conll2003_tagging_end_to_end(english, capsys):
    out = english["root"] / "conll_run"
    result = finetune(english["model"], "conll2003", english["conll_train"], out, english["conll_eval"],
                      max_seq_length=128)
    check_run(result, out, "f1", epochs=2, steps_per_epoch=6, eval_examples=48)
    assert {"precision", "recall", "f1", "token_accuracy"} <= set(result["best"])
    config = json.loads((out / "best" / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(9)] == CONLL2003_LABELS
    scores = cli_json(capsys, "eval", "--model", out / "best", "--data", english["conll_eval"])
    assert scores["f1"] == pytest.approx(result["best"]["f1"], abs=1e-12)
    assert scores["token_accuracy"] == pytest.approx(result["best"]["token_accuracy"], abs=1e-12)
    sentence = "EU rejects German call to boycott British lamb ."
    [row] = cli_json_lines(capsys, "predict", "--model", out / "best", sentence)
    assert row["words"] == sentence.split() and len(row["tags"]) == len(row["words"])
    assert set(row["tags"]) <= set(CONLL2003_LABELS)
    for entity in row["entities"]:
        assert entity["text"] == " ".join(row["words"][entity["start"]:entity["end"] + 1])


# ----------------------------------------------------------------------------- QA: KorQuAD

def test_korquad_finetune_eval_predict(korquad, capsys):
    n_eval = sum(len(p["qas"]) for p in korquad["articles"][3]["paragraphs"])
    saved = json.loads((korquad["root"] / "run" / "results.json").read_text())
    assert saved["train_features"] >= saved["train_examples"]             # long contexts → several windows
    rows = saved["epochs"]
    assert len(rows) == 2 and all(r["num_examples"] == n_eval for r in rows)
    assert all(0.0 <= r["exact_match"] <= 100.0 and 0.0 <= r["f1"] <= 100.0 for r in rows)
    assert json.loads((korquad["best"] / "task.json").read_text())["max_seq_length"] == 192
    scores = cli_json(capsys, "eval", "--model", korquad["best"], "--data", korquad["root"] / "eval.json")
    assert scores["f1"] == pytest.approx(saved["best"]["f1"], abs=1e-9) and scores["examples"] == n_eval
    paragraph = korquad["articles"][0]["paragraphs"][0]
    question, context = paragraph["qas"][0]["question"], paragraph["context"]
    [row] = cli_json_lines(capsys, "predict", "--model", korquad["best"], question, context)
    assert row["question"] == question
    assert row["answer"] and row["answer"] == context[row["start"]:row["end"]]      # a span of the context


# ----------------------------------------------------------------------------- task/model mismatch

@pytest.mark.parametrize("task, data_key", [("conll2003", "conll_eval"), ("stsb", "stsb_eval"),
                                            ("korquad", None)])
def test_eval_with_the_wrong_task_is_refused(sst2, english, capsys, task, data_key):
    data = english[data_key] if data_key else data_file("korquad1", "KorQuAD_v1.0_dev_half_a.json")
    code, _, err = cli(capsys, "eval", "--model", sst2["best"], "--task", task, "--data", data)
    assert_one_line_error(code, err, "task/model mismatch", "sst2")


def test_finetune_from_a_head_of_another_size_is_refused(sst2, english, capsys, tmp_path):
    code, _, err = cli(capsys, "finetune", "--task", "conll2003", "--model", sst2["best"], "--train",
                       english["conll_train"], "--out", tmp_path / "run")
    assert_one_line_error(code, err, "classifier", "num_labels")


def test_qa_predict_needs_question_context_pairs(korquad, capsys):
    code, _, err = cli(capsys, "predict", "--model", korquad["best"], "질문만 있다")
    assert_one_line_error(code, err, "pairs")


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("task, content, fragment", [
    ("sst2", "", "empty"),
    ("cola", "", "no usable training examples"),
    ("conll2003", "\n\n", "no usable training examples"),
    ("sst2", "text\tscore\nfine\t1\n", "no column named 'sentence'"),
    ("korquad", "", "not SQuAD-format JSON"),
])
def test_finetune_bad_train_file_is_one_line(english, capsys, tmp_path, task, content, fragment):
    train = tmp_path / "train.txt"
    train.write_text(content, encoding="utf-8")
    code, _, err = cli(capsys, "finetune", "--task", task, "--model", english["model"], "--train", train,
                       "--out", tmp_path / "run")
    assert_one_line_error(code, err, fragment)
    assert not (tmp_path / "run" / "best").exists()


def test_finetune_missing_train_file_and_model_are_one_line(english, capsys, tmp_path):
    code, _, err = cli(capsys, "finetune", "--task", "sst2", "--model", english["model"], "--train",
                       tmp_path / "nope.tsv", "--out", tmp_path / "run")
    assert_one_line_error(code, err, "not found", "nope.tsv")
    code, _, err = cli(capsys, "finetune", "--task", "sst2", "--model", tmp_path / "no_model", "--train",
                       english["sst2_train"], "--out", tmp_path / "run")
    assert_one_line_error(code, err, "no_model")


def test_eval_and_predict_bad_input_is_one_line(sst2, english, capsys, tmp_path):
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    code, _, err = cli(capsys, "eval", "--model", sst2["best"], "--data", tmp_path / "nope.tsv")
    assert_one_line_error(code, err, "not found", "nope.tsv")
    code, _, err = cli(capsys, "eval", "--model", sst2["best"], "--data", empty)
    assert_one_line_error(code, err, "empty")
    code, _, err = cli(capsys, "eval", "--model", tmp_path / "no_model", "--data", english["sst2_eval"])
    assert_one_line_error(code, err, "not found", "no_model")
    code, _, err = cli(capsys, "predict", "--model", sst2["best"])
    assert_one_line_error(code, err, "nothing to predict")
    code, _, err = cli(capsys, "predict", "--model", sst2["best"], "--file", empty)
    assert_one_line_error(code, err, "empty")


def test_a_fine_tune_can_run_for_a_time_budget(english, tmp_path, monkeypatch):
    """`--time-budget` on fine-tuning: the epochs no longer count; the run ends when the (fake) clock
    says the budget is spent — 0.25 s per step, 5 s: 20 steps, about two epochs of 11 — evaluating at
    each epoch's end and at the last step, and keeping the best model."""
    monkeypatch.setattr(budget_module, "time", SimpleNamespace(perf_counter=FakeClock(0.25).perf_counter))
    result = finetune(english["model"], "sst2", english["sst2_train"], tmp_path / "run", english["sst2_eval"],
                      epochs=1, time_budget="5s")
    assert result["steps"] == 20 and [e["step"] for e in result["epochs"]] == [11, 20]
    assert (tmp_path / "run" / "best" / "model.safetensors").exists()
