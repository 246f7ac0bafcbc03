"""Label values and label names; the NLI and chatbot presets; task names with a typo.

Files keep their label values ("0", "1"); people see names ("negative", "positive").
The names are what a fine-tuned model's config saves (id2label), the values are what
the readers map to ids, and a model saved before names existed still loads.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from bertkit.common.errors import InputError
from bertkit.tasks import NLI_LABELS, get_task
from bertkit.tasks.readers import TextExample
from conftest import data_file


class Config:
    """A stand-in for a model config: num_labels and id2label (JSON keys are strings)."""

    def __init__(self, names):
        self.num_labels = len(names)
        self.id2label = {str(i): n for i, n in enumerate(names)}


# ----------------------------------------------------------------------------- built-in names

@pytest.mark.parametrize("task, names", [
    ("sst2", ["negative", "positive"]), ("nsmc", ["negative", "positive"]),
    ("cola", ["unacceptable", "acceptable"]), ("mrpc", ["not_equivalent", "equivalent"]),
    ("rte", ["entailment", "not_entailment"]), ("mnli", NLI_LABELS), ("kornli", NLI_LABELS),
    ("chatbot_intent", ["daily", "breakup", "love"]),
])
def test_built_in_tasks_have_label_names_that_the_config_saves(task, names):
    t = get_task(task)
    overrides = t.config_overrides()
    assert t.names == names
    assert overrides["id2label"] == dict(enumerate(names))
    assert overrides["label2id"] == {n: i for i, n in enumerate(names)}


def test_regression_has_no_label_names():
    assert get_task("stsb").config_overrides() == {"num_labels": 1, "problem_type": "regression"}


def test_values_stay_for_reading_names_for_display():
    task = get_task("sst2")
    assert task.labels == ["0", "1"] and task.value_of("positive") == "1" and task.value_of("1") == "1"
    assert task.display("1") == "positive" and task.display("positive") == "positive"
    assert task.display("7") == "7" and task.labels_text() == "0=negative, 1=positive"


# ----------------------------------------------------------------------------- --label-names

def intents(tmp_path):
    path = tmp_path / "intents.csv"
    path.write_text("Q,A,label\nhi,hello,0\nbye,sad,1\nlove you,too,2\nnoon,lunch,0\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("spec", ["0=daily,1=breakup,2=love", " 2=love , 0=daily,1=breakup ",
                                  "daily,breakup,love", {"0": "daily", "1": "breakup", "2": "love"}])
def test_label_names_for_labels_from_the_data(tmp_path, spec):
    task = get_task("classification", text_column="Q", label_names=spec)
    examples = task.read(intents(tmp_path))
    task.fit_labels(examples)
    assert task.labels == ["0", "1", "2"] and task.names == ["daily", "breakup", "love"]
    assert task.config_overrides()["id2label"] == {0: "daily", 1: "breakup", 2: "love"}


@pytest.mark.parametrize("spec, fragment", [
    ("0=daily,1=breakup", "gives no name for label(s) '2' of task 'classification'; add 2=NAME"),
    ("0=daily,1=breakup,2=love,3=work", "names '3', which is not a label of task 'classification' (its labels: 0, 1, 2)"),
    ("daily,love", "gives 2 name(s) for the 3 labels"),
    ("0=daily,1,2=love", "'1' is not VALUE=NAME"),
    ("0=a,1=a,2=b", "not all different"),
])
def test_label_names_that_do_not_fit_say_what_to_write(tmp_path, spec, fragment):
    task = get_task("classification", text_column="Q", label_names=spec)
    task.fit_labels(task.read(intents(tmp_path)))
    with pytest.raises(InputError) as error:
        task.check_label_names()
    assert fragment in str(error.value)


def test_built_in_names_can_be_renamed():
    task = get_task("sst2", label_names="0=bad,1=good")
    assert task.names == ["bad", "good"] and task.labels == ["0", "1"]


# ----------------------------------------------------------------------------- loading a fine-tuned model

def test_a_model_saved_before_label_names_still_loads():
    """id2label {0: "0", 1: "1"}: the values themselves; a built-in task keeps its names for display."""
    task = get_task("sst2")
    task.use_labels_from_config(Config(["0", "1"]))
    assert task.labels == ["0", "1"] and task.display("1") == "positive"
    generic = get_task("classification")
    generic.use_labels_from_config(Config(["2", "5", "10"]))
    assert generic.labels == generic.names == ["2", "5", "10"]


def test_a_model_with_names_loads_with_its_values_from_task_json():
    generic = get_task("classification")
    generic.use_labels_from_config(Config(["daily", "breakup", "love"]), labels=["0", "1", "2"])
    assert generic.labels == ["0", "1", "2"] and generic.names == ["daily", "breakup", "love"]
    sst2 = get_task("sst2")
    sst2.use_labels_from_config(Config(["negative", "positive"]), labels=["0", "1"])
    assert sst2.names == ["negative", "positive"]


def test_a_model_of_another_task_is_refused_by_its_names():
    with pytest.raises(InputError, match="task/model mismatch.*negative.*0=unacceptable, 1=acceptable"):
        get_task("cola").use_labels_from_config(Config(["negative", "positive"]), labels=["0", "1"])


def test_predictions_show_names_and_keep_the_gold_label(tmp_path):
    path = tmp_path / "eval.tsv"
    path.write_text("sentence\tlabel\ngood\t1\nbad\t1\n", encoding="utf-8")
    task = get_task("sst2")
    examples = task.read(path)
    features = [{"example_index": 0}, {"example_index": 1}]
    predictions = task.predict([np.array([0.0, 2.0]), np.array([2.0, 0.0])], features, examples)
    assert [p["label"] for p in predictions] == ["1", "0"]              # values: what metrics compare
    records = [task.format_prediction(p, ex) for p, ex in zip(predictions, examples)]
    assert [(r["line"], r["label"], r["gold"]) for r in records] == [(2, "positive", "positive"),
                                                                      (3, "negative", "positive")]
    assert task.metrics(predictions, examples)["accuracy"] == 0.5


def test_regression_records_have_score_and_gold():
    task = get_task("stsb")
    record = task.format_prediction({"score": 3.5}, TextExample("a", "b", 4.0, "", 7))
    assert record == {"line": 7, "text": "a", "text_pair": "b", "score": 3.5, "gold": 4.0}


# ----------------------------------------------------------------------------- NLI presets

MNLI_HEADER = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
               "sentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label")


def mnli_row(i, premise, hypothesis, label):
    parse = "( " + " ".join(premise.split()) + " )"
    return "\t".join([str(i), str(1000 + i), f"{1000 + i}e", "fiction", parse, parse, f"(ROOT {parse})",
                      f"(ROOT {parse})", premise, hypothesis, label, label])


def test_mnli_file_format(tmp_path):
    """GLUE MNLI train.tsv: 12 columns, the pair in sentence1/sentence2, the label in gold_label."""
    path = tmp_path / "train.tsv"
    rows = [mnli_row(0, "A man plays a guitar.", "A man makes music.", "entailment"),
            mnli_row(1, "A man plays a guitar.", "The man is asleep.", "contradiction"),
            mnli_row(2, 'He said "maybe".', "He is tall.", "neutral"),
            mnli_row(3, "No consensus here.", "None.", "-")]
    path.write_text("\n".join([MNLI_HEADER, *rows]) + "\n", encoding="utf-8")
    task = get_task("mnli")
    examples = task.read(path)
    assert [(ex.text_pair, ex.label, ex.line) for ex in examples] == [
        ("A man makes music.", "entailment", 2), ("The man is asleep.", "contradiction", 3),
        ("He is tall.", "neutral", 4)]
    assert examples[2].text == 'He said "maybe".'                       # TSV: quotes are text
    assert examples.report.skipped == {"rows without a gold label ('-': the annotators did not agree)": 1}
    assert task.labels == NLI_LABELS and task.names == NLI_LABELS and task.family == "classification"
    task.check_training_labels(examples)                               # all three are known


def test_mnli_with_a_label_column_instead_of_gold_label(tmp_path):
    path = tmp_path / "dev.tsv"
    path.write_text("sentence1\tsentence2\tlabel\nA.\tB.\tneutral\n", encoding="utf-8")
    assert [ex.label for ex in get_task("mnli").read(path)] == ["neutral"]


def test_kornli_file_format(tmp_path):
    """kakaobrain KorNLI (multinli.train.ko.tsv, xnli.dev.ko.tsv): sentence1, sentence2, gold_label."""
    path = tmp_path / "multinli.train.ko.tsv"
    path.write_text("sentence1\tsentence2\tgold_label\n"
                    "개념적으로 크림 스키밍은 제품과 지리라는 두 가지 기본 차원을 가지고 있다.\t"
                    "제품과 지리학은 크림 스키밍을 작동시키는 것이다.\tneutral\n"
                    "시즌 중에 알고 있는 거 알아?\t네 레벨에서 다음 레벨로 잃는 거야\tentailment\n"
                    "우리 번호 중 하나가 당신의 지시를 세밀하게 수행할 것이다.\t우리 팀의 일원이 당신의 명령을 엄청나게 정확하게 실행할 것이다.\t"
                    "entailment\n"
                    "내가 어떻게 아는지 알아?\t이것은 나의 정보이다.\tcontradiction\n",
                    encoding="utf-8")
    task = get_task("kornli")
    examples = task.read(path)
    assert Counter(ex.label for ex in examples) == {"entailment": 2, "neutral": 1, "contradiction": 1}
    assert examples[0].text.startswith("개념적으로") and examples[3].text_pair == "이것은 나의 정보이다."
    assert examples.report.num_skipped() == 0 and not examples.report.notes


def test_nli_label_outside_the_three_is_named_with_its_line(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("sentence1\tsentence2\tgold_label\na\tb\tentailment\nc\td\tentails\n", encoding="utf-8")
    task = get_task("kornli")
    with pytest.raises(InputError, match=r"line 3 \('entails'\).*--task pair-classification "
                                         r"--text-column sentence1 --pair-column sentence2 --label-column gold_label"):
        task.check_training_labels(task.read(path))


# ----------------------------------------------------------------------------- chatbot intents

def test_chatbot_intent_reads_the_real_file():
    """songys/Chatbot_data ChatbotData.csv: Q, A, label (0 daily, 1 breakup, 2 love; README of the data)."""
    task = get_task("chatbot_intent")
    examples = task.read(data_file("ko_corpus", "ChatbotData.csv"))
    assert len(examples) == 11_823 and examples.report.num_skipped() == 0
    assert Counter(ex.label for ex in examples) == {"0": 5290, "1": 3570, "2": 2963}   # "2   " read as "2"
    assert (examples[0].text, examples[0].line) == ("12시 땡!", 2)
    assert task.display(examples[0].label) == "daily"


# ----------------------------------------------------------------------------- task names

@pytest.mark.parametrize("typo, meant", [("sst", "sst2"), ("SST-2x", "sst2"), ("conl", "conll2003"),
                                         ("kornli2", "kornli"), ("mrcp", "mrpc"),
                                         ("classifcation", "classification"), ("chatbot", None)])
def test_unknown_task_suggests_the_closest_name(typo, meant):
    if meant is None:                                   # an alias: no error at all
        assert get_task(typo).name == "chatbot_intent"
        return
    with pytest.raises(InputError) as error:
        get_task(typo)
    message = str(error.value)
    assert f"unknown task {typo!r} (did you mean {meant!r}?)" in message and "sst2, cola" in message


def test_unknown_task_far_from_every_name_lists_them():
    with pytest.raises(InputError) as error:
        get_task("zzz")
    assert "did you mean" not in str(error.value) and "the tasks are: sst2" in str(error.value)


@pytest.mark.parametrize("task, option", [("sst2", "tag_column"), ("squad", "label_names"),
                                          ("conll2003", "text_column")])
def test_an_option_the_task_does_not_take_is_named(task, option):
    with pytest.raises(InputError, match=f"task {task!r} .* has no option {option!r} "
                                         f"\\(--{option.replace('_', '-')}\\)"):
        get_task(task, **{option: "1"})
