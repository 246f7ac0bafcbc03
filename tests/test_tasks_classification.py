"""Single-text / pair classification and pair regression: encode, collate, predict, score."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bertkit.common.errors import InputError
from bertkit.tasks import get_task
from bertkit.tasks.classification import IGNORE_INDEX
from conftest import data_file


def tiny_classifier(num_labels: int, vocab_size: int = 30522):
    from bertkit import BertConfig, BertForSequenceClassification
    torch.manual_seed(0)
    config = BertConfig.preset("tiny", vocab_size=vocab_size, num_labels=num_labels)
    return BertForSequenceClassification(config).eval()


def test_encode_equals_the_reference_tokenizer_on_mrpc_pairs(tokenizer, hf_tokenizer):
    task = get_task("mrpc")
    examples = task.read(data_file("glue", "MRPC", "train.tsv"))[:500]
    features = task.encode(examples, tokenizer, max_seq_length=48, training=True)
    ref = hf_tokenizer([e.text for e in examples], [e.text_pair for e in examples], truncation=True, max_length=48)
    assert [f["input_ids"] for f in features] == ref["input_ids"]
    assert [f["token_type_ids"] for f in features] == ref["token_type_ids"]
    assert [f["labels"] for f in features] == [int(e.label) for e in examples]
    full = hf_tokenizer([e.text for e in examples], [e.text_pair for e in examples])["input_ids"]
    longer = [e.line for e, x in zip(examples, full) if len(x) > 48]          # exactly 48 tokens is not cut
    reason = "text pairs longer than max_seq_length=48 tokens were cut"
    assert features.report.notes[reason] == len(longer) > 50
    assert features.report.where[reason] == longer[:3]
    line = next(x for x in features.report.summary().splitlines() if reason in x)
    path = str(data_file("glue", "MRPC", "train.tsv"))
    assert f"(lines {longer[0]}, {longer[1]}, {longer[2]}, … of {path}); raise --max-seq-length" in line


def test_max_length_keyword_is_a_deprecated_alias(tokenizer):
    task = get_task("sst2")
    examples = task.read(data_file("glue", "SST-2", "train.tsv"))[:50]
    with pytest.warns(DeprecationWarning, match="max_seq_length"):
        old = task.encode(examples, tokenizer, max_length=8)
    assert old == task.encode(examples, tokenizer, max_seq_length=8) == task.encode(examples, tokenizer, 8)


def test_file_lines_count_the_header_and_multi_line_cells(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text('text,label\none,0\n"two\nlines",1\nthree,0\n', encoding="utf-8")
    examples = get_task("classification").read(path)
    assert [(ex.text, ex.line) for ex in examples] == [("one", 2), ("two\nlines", 3), ("three", 5)]


def test_collate_pads_and_types(tokenizer):
    task = get_task("sst2")
    examples = task.read(data_file("glue", "SST-2", "train.tsv"))[:8]
    features = task.encode(examples, tokenizer, 64)
    batch = task.collate(features)
    lengths = [len(f["input_ids"]) for f in features]
    assert batch["input_ids"].shape == (8, max(lengths))
    assert batch["attention_mask"].sum(1).tolist() == lengths
    assert (batch["input_ids"][batch["attention_mask"] == 0] == tokenizer.pad_token_id).all()
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [int(e.label) for e in examples]
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask", "labels"}


def test_batched_evaluation_equals_one_by_one(tokenizer):
    """Padding and batching must not change a prediction (attention_mask from lengths)."""
    task = get_task("rte")
    examples = task.read(data_file("glue", "RTE", "train.tsv"))[:40]
    features = task.encode(examples, tokenizer, 96)
    model = tiny_classifier(task.num_labels, len(tokenizer))
    batched = task.run_model(model, features, batch_size=16)
    single = task.run_model(model, features, batch_size=1)
    np.testing.assert_allclose(np.stack(batched), np.stack(single), atol=1e-5)
    predictions = task.predict(batched, features, examples)
    assert {p["label"] for p in predictions} <= set(task.labels)
    scores = task.evaluate(model, examples, features, batch_size=16)
    expected = np.mean([p["label"] == e.label for p, e in zip(predictions, examples)])
    assert scores["accuracy"] == pytest.approx(expected) and task.main_metric == "accuracy"


def test_unknown_labels_are_scored_as_wrong_and_refused_for_training(tmp_path, tokenizer):
    path = tmp_path / "eval.tsv"
    path.write_text("sentence\tlabel\ngood film\t1\nbad film\t0\nodd film\t2\nfine film\tpositive\n",
                    encoding="utf-8")
    task = get_task("sst2")
    examples = task.read(path)
    assert [ex.label for ex in examples] == ["1", "0", "2", "1"]      # a label's name reads as its value
    summary = examples.report.summary()
    assert "1 label outside the labels of task 'sst2' (0=negative, 1=positive)" in summary
    assert f"(line 4 ('2') of {path})" in summary
    features = task.encode(examples, tokenizer, 32)
    assert [f["labels"] for f in features] == [1, 0, IGNORE_INDEX, 1]
    outputs = [np.array([0.0, 1.0]), np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([0.0, 1.0])]
    scores = task.metrics(task.predict(outputs, features, examples), examples)
    assert scores["accuracy"] == pytest.approx(3 / 4)          # the unknown label counts as an error
    with pytest.raises(InputError) as error:
        task.encode(examples, tokenizer, 32, training=True)
    message = str(error.value)
    assert f"line 4 ('2') of {path}" in message and "0=negative, 1=positive" in message
    assert "--task classification --text-column sentence --label-column label" in message
    assert "--label-names" in message


def test_generic_classification_labels_from_data_and_config_checks(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("review,stars\nfine,10\nbad,2\nok,5\ngreat,10\n", encoding="utf-8")
    task = get_task("classification", text_column="review", label_column="stars")
    examples = task.read(path)
    assert task.fit_labels(examples) == ["2", "5", "10"]          # numbers sorted as numbers
    overrides = task.config_overrides()
    assert overrides["num_labels"] == 3 and overrides["id2label"] == {0: "2", 1: "5", 2: "10"}
    assert overrides["problem_type"] == "single_label_classification"

    class Config:
        num_labels = 3
        id2label = {"0": "2", "1": "5", "2": "10"}        # json keys are strings

    task.check_config(Config())
    fresh = get_task("classification")
    fresh.use_labels_from_config(Config())                 # eval/predict take the saved labels
    assert fresh.labels == ["2", "5", "10"]

    class Wrong:
        num_labels = 2
        id2label = {0: "LABEL_0", 1: "LABEL_1"}

    with pytest.raises(InputError, match="task/model mismatch.*num_labels=2.*3 label"):
        task.check_config(Wrong())

    class Renamed:
        num_labels = 3
        id2label = {0: "neg", 1: "neu", 2: "pos"}

    with pytest.raises(InputError, match="fine-tuned for labels"):
        task.check_config(Renamed())
    with pytest.raises(InputError, match="no label set yet"):
        get_task("classification").num_labels


def test_regression_stsb(tokenizer):
    task = get_task("stsb")
    examples = task.read(data_file("glue", "STS-B", "train.tsv"))[:200]
    features = task.encode(examples, tokenizer, 64, training=True)
    batch = task.collate(features[:4])
    assert batch["labels"].dtype == torch.float32
    assert batch["labels"].tolist() == pytest.approx([e.label for e in examples[:4]])
    assert task.num_labels == 1 and task.config_overrides() == {"num_labels": 1, "problem_type": "regression"}
    gold = np.array([e.label for e in examples])
    outputs = list(gold + np.random.default_rng(0).normal(0, 0.5, len(gold)))
    scores = task.metrics(task.predict(outputs, features, examples), examples)
    assert 0.8 < scores["pearson"] < 1 and 0.8 < scores["spearman"] < 1
    assert task.main_metric == "pearson"

    class Out:
        logits = torch.tensor([[1.5], [4.0]])

    assert task.gather(Out(), None) == [1.5, 4.0]


def test_cola_uses_mcc_and_mrpc_f1():
    assert get_task("cola").main_metric == "mcc" and get_task("mrpc").main_metric == "f1"
    examples = get_task("cola").read(data_file("glue", "CoLA", "train.tsv"))[:100]
    preds = [{"label": "1"} for _ in examples]
    assert get_task("cola").metrics(preds, examples)["mcc"] == 0.0      # constant prediction


def test_predict_for_unlabelled_texts_and_format(tokenizer):
    task = get_task("nsmc")
    examples = task.examples_from_texts(["재밌어요", "별로"])
    features = task.encode(examples, tokenizer, 32)
    assert all(f["labels"] is None for f in features) and "labels" not in task.collate(features)
    predictions = task.predict([np.array([2.0, 0.0]), np.array([0.0, 2.0])], features, examples)
    assert [p["label"] for p in predictions] == ["0", "1"]
    assert predictions[0]["probability"] == pytest.approx(1 / (1 + np.exp(-2)))
    record = task.format_prediction(predictions[0], examples[0])
    assert record == {"text": "재밌어요", "label": "negative", "probability": predictions[0]["probability"]}
    json.dumps(record, ensure_ascii=False)
    with pytest.raises(InputError, match="no label"):
        task.metrics(predictions, examples)
    with pytest.raises(InputError, match="got no prediction"):
        task.predict([np.array([2.0, 0.0])], features[:1], examples)
