"""The task presets the lecture notes name, end to end through `bertkit finetune`.

* part-of-speech tagging from CoNLL-2003's POS column (`--task tagging --tag-column 1`);
* Korean chatbot intents on ChatbotData.csv (Q, A, label 0/1/2 = daily/breakup/love), as a
  documented generic command and as the `chatbot_intent` preset;
* 3-way NLI in the MNLI file format (`--task mnli`).

Tiny random BERTs with a vocab trained in the test, a few hundred rows: the scores are
not the point (except that a tagger on a small, regular tag set does learn), the wiring is:
the labels the model saves are POS tags / intent names / NLI labels, and `predict` shows them.

The shared copy of CoNLL-2003 (../shared/data/conll2003) has only the word and NER
columns, so the POS test writes a file in the original four-column layout
(``word POS chunk NER``, `-DOCSTART- -X- -X- O`) from a small hand-made grammar.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from conftest import data_file
from test_finetune import cli, cli_json, cli_json_lines, tiny_checkpoint

from bertkit.text.vocab import train_vocab


pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- POS tagging

LEXICON = {
    "NNP": ["Peter", "Blackburn", "Germany", "Paris", "EU", "Reuters", "Smith", "London", "Bonn", "Clinton"],
    "VBZ": ["rejects", "says", "plans", "wins", "expects", "backs"],
    "VBD": ["said", "rejected", "won", "expected", "backed"],
    "DT": ["the", "a", "this"],
    "JJ": ["German", "British", "new", "big", "strong", "final"],
    "NN": ["call", "plan", "deal", "market", "team", "price", "lamb", "vote"],
    "IN": ["in", "on", "for", "of"],
    "CD": ["1996", "two", "10", "three"],
    "TO": ["to"], "VB": ["boycott", "buy", "sell", "block"], ".": ["."], ",": [","],
}
TEMPLATES = [
    "NNP VBZ DT JJ NN IN NNP .",
    "NNP VBD CD NN IN NNP , NNP VBD .",
    "DT NN VBZ TO VB DT JJ NN .",
    "NNP NNP VBD DT NN IN CD .",
    "DT JJ NN VBD NNP , NNP VBZ .",
]
CHUNK = {"NNP": "I-NP", "DT": "B-NP", "JJ": "I-NP", "NN": "I-NP", "CD": "I-NP", "VBZ": "B-VP", "VBD": "B-VP",
         "TO": "B-VP", "VB": "I-VP", "IN": "B-PP", ".": "O", ",": "O"}


def conll2003_pos_file(path: Path, sentences: int, seed: int) -> Path:
    """Sentences in CoNLL-2003's own layout: `word POS chunk NER`, documents opened by -DOCSTART-."""
    rng = random.Random(seed)
    blocks = []
    for i in range(sentences):
        if i % 20 == 0:
            blocks.append("-DOCSTART- -X- -X- O")
        tags = rng.choice(TEMPLATES).split()
        words = [rng.choice(LEXICON[t]) for t in tags]
        blocks.append("\n".join(f"{w} {t} {CHUNK[t]} {'B-ORG' if t == 'NNP' else 'O'}" for w, t in zip(words, tags)))
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


def test_pos_tagger_from_the_conll2003_pos_column(tmp_path, capsys):
    train = conll2003_pos_file(tmp_path / "train.txt", 300, seed=0)
    held_out = conll2003_pos_file(tmp_path / "valid.txt", 60, seed=1)
    tokenizer = train_vocab([train], vocab_size=300)
    model = tiny_checkpoint(tmp_path / "tiny", tokenizer, hidden_dropout_prob=0.0)
    out = tmp_path / "pos"
    code, _, err = cli(capsys, "finetune", "--task", "tagging", "--tag-column", "1", "--model", model,
                       "--train", train, "--eval", held_out, "--out", out, "--epochs", "4", "--batch-size", "16",
                       "--learning-rate", "3e-3", "--max-seq-length", "32", "--patience", "0")
    assert code == 0, err
    config = json.loads((out / "best" / "config.json").read_text())
    assert sorted(config["id2label"].values()) == sorted(LEXICON)            # POS tags, no O, no B-/I-
    result = json.loads((out / "results.json").read_text())
    assert "token_accuracy" in result["best"] and "f1" not in result["best"]   # POS: token accuracy
    assert result["best"]["token_accuracy"] > 0.9, result["epochs"]
    scores = cli_json(capsys, "eval", "--model", out / "best", "--data", held_out)
    assert scores["token_accuracy"] == pytest.approx(result["best"]["token_accuracy"], abs=1e-12)
    [row] = cli_json_lines(capsys, "predict", "--model", out / "best", "Smith rejects the new plan in Paris .")
    assert set(row["tags"]) <= set(LEXICON) and "entities" not in row
    assert row["tags"][0] == "NNP" and row["tags"][1] == "VBZ"
    code, text, _ = cli(capsys, "predict", "--model", out / "best", "Smith rejects the new plan in Paris .")
    assert code == 0 and "Smith/NNP rejects/VBZ" in text


# ----------------------------------------------------------------------------- chatbot intents

@pytest.fixture(scope="module")
def korean_tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("chatbot")
    source = data_file("ko_corpus", "ChatbotData.csv")
    lines = source.read_text(encoding="utf-8").splitlines()
    corpus = root / "questions.txt"
    corpus.write_text("\n".join(line.split(",")[0] for line in lines[1:]), encoding="utf-8")
    tokenizer = train_vocab([corpus], vocab_size=2000, do_lower_case=False)
    return {"root": root, "data": source, "model": tiny_checkpoint(root / "tiny", tokenizer)}


INTENT_FLAGS = ("--max-train-examples", "300", "--max-eval-examples", "100", "--epochs", "1", "--batch-size", "32",
                "--max-seq-length", "32")


def test_chatbot_intents_with_the_documented_generic_command(korean_tiny, capsys):
    out = korean_tiny["root"] / "generic"
    code, _, err = cli(capsys, "finetune", "--task", "classification", "--text-column", "Q", "--label-column",
                       "label", "--label-names", "0=daily,1=breakup,2=love", "--model", korean_tiny["model"],
                       "--train", korean_tiny["data"], "--out", out, *INTENT_FLAGS)
    assert code == 0, err
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["id2label"] == {"0": "daily", "1": "breakup", "2": "love"}
    result = json.loads((out / "results.json").read_text())
    assert result["train_examples"] == 300 and result["eval_examples"] == 100
    code, text, _ = cli(capsys, "predict", "--model", out / "best", "헤어진 여자친구가 생각나", "오늘 점심 뭐 먹지")
    header, *rows = text.splitlines()
    assert code == 0 and header.split() == ["#", "label", "prob", "text"]
    assert all(row.split()[1] in ("daily", "breakup", "love") for row in rows)


def test_chatbot_intent_preset_is_the_same_command(korean_tiny, capsys):
    out = korean_tiny["root"] / "preset"
    code, _, err = cli(capsys, "finetune", "--task", "chatbot_intent", "--model", korean_tiny["model"],
                       "--train", korean_tiny["data"], "--out", out, *INTENT_FLAGS)
    assert code == 0, err
    assert json.loads((out / "best" / "config.json").read_text())["id2label"] == {
        "0": "daily", "1": "breakup", "2": "love"}
    generic = json.loads((korean_tiny["root"] / "generic" / "results.json").read_text())
    preset = json.loads((out / "results.json").read_text())
    assert preset["epochs"] == generic["epochs"]                  # same data, labels and seed: same run


# ----------------------------------------------------------------------------- 3-way NLI

def test_mnli_format_end_to_end(tmp_path, capsys):
    from test_tasks_labels import MNLI_HEADER, mnli_row
    rng = random.Random(0)
    subjects = ["A man", "A woman", "The child", "Two dogs", "A chef", "The band"]
    facts = [("plays a guitar", "makes music", "is asleep", "is famous"),
             ("cooks dinner", "prepares food", "is swimming", "is hungry"),
             ("runs in a park", "is outside", "sits on a sofa", "is training")]
    rows = []
    for i in range(60):
        s, (act, yes, no, maybe) = rng.choice(subjects), rng.choice(facts)
        label, hyp = rng.choice([("entailment", yes), ("contradiction", no), ("neutral", maybe)])
        rows.append(mnli_row(i, f"{s} {act}.", f"{s} {hyp}.", label))
    train = tmp_path / "train.tsv"
    train.write_text("\n".join([MNLI_HEADER, *rows]) + "\n", encoding="utf-8")
    tokenizer = train_vocab([train], vocab_size=400)
    model = tiny_checkpoint(tmp_path / "tiny", tokenizer)
    out = tmp_path / "mnli"
    code, _, err = cli(capsys, "finetune", "--task", "mnli", "--model", model, "--train", train, "--out", out,
                       "--epochs", "1", "--batch-size", "16", "--max-seq-length", "32", "--eval-fraction", "0.25")
    assert code == 0, err
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["id2label"] == {"0": "contradiction", "1": "entailment", "2": "neutral"}
    [row] = cli_json_lines(capsys, "predict", "--model", out / "best", "A man plays a guitar.", "A man makes music.")
    assert row["label"] in ("contradiction", "entailment", "neutral") and row["text_pair"] == "A man makes music."
