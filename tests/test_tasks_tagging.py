"""Token tagging: word → first-piece label alignment, back to words, truncation, bad tags."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bertkit.common.errors import InputError
from bertkit.tasks import get_task
from bertkit.tasks.metrics import entity_scores
from bertkit.tasks.readers import TaggedExample
from bertkit.tasks.tagging import IGNORE_INDEX
from conftest import data_file


@pytest.fixture(scope="module")
def conll():
    return get_task("conll2003").read(data_file("conll2003", "train.txt"))


def oracle_logits(task, features, examples):
    """Logits that put all mass on each word's gold tag at its first piece."""
    outputs = []
    for f in features:
        logits = np.zeros((len(f["input_ids"]), task.num_labels), np.float32)
        tags = examples[f["example_index"]].tags
        for word, position in enumerate(f["word_starts"]):
            logits[position, task.label2id[tags[word]]] = 5.0
        outputs.append(logits)
    return outputs


def test_alignment_matches_reference_word_ids(conll, tokenizer, hf_tokenizer):
    """Pieces = the reference's `is_split_into_words` pieces; only each word's first piece is labelled."""
    task = get_task("conll2003")
    examples = conll[:2000]
    features = task.encode(examples, tokenizer, max_seq_length=256, training=True)
    assert not features.report.notes                                   # nothing cut, no odd words
    for f, ex in zip(features, examples):
        ref = hf_tokenizer(ex.words, is_split_into_words=True)
        assert f["input_ids"] == ref["input_ids"]
        word_ids = ref.word_ids()
        expected = [IGNORE_INDEX if w is None or (k and word_ids[k - 1] == w) else task.label2id[ex.tags[w]]
                    for k, w in enumerate(word_ids)]
        assert f["labels"] == expected
        assert f["word_starts"] == [word_ids.index(w) for w in range(len(ex.words))]


def test_oracle_logits_give_back_every_tag_on_full_conll(conll, tokenizer):
    task = get_task("conll2003")
    features = task.encode(conll, tokenizer, max_seq_length=256)
    predictions = task.predict(oracle_logits(task, features, conll), features, conll)
    assert [p["tags"] for p in predictions] == [ex.tags for ex in conll]
    scores = task.metrics(predictions, conll)
    assert scores["f1"] == 1.0 and scores["num_true"] == 23_499
    assert predictions[0]["entities"][0] == {"type": "ORG", "start": 0, "end": 0, "text": "EU"}


def test_truncated_words_are_counted_predicted_O_and_still_scored(conll, tokenizer):
    task = get_task("conll2003")
    examples = conll[:3000]
    features = task.encode(examples, tokenizer, max_seq_length=16)
    kept = [len(f["word_starts"]) for f in features]
    cut = sum(len(ex.words) - k for ex, k in zip(examples, kept))
    assert cut > 1000
    reason = "words beyond max_seq_length=16 word pieces were cut (predicted O, still scored)"
    assert features.report.notes[reason] == cut
    first_cut = [ex.line for ex, k in zip(examples, kept) if k < len(ex.words)][:3]
    path = data_file("conll2003", "train.txt")
    assert (f"(lines {first_cut[0]}, {first_cut[1]}, {first_cut[2]}, … of {path}); raise --max-seq-length"
            in features.report.summary())
    assert all(len(f["input_ids"]) <= 16 for f in features)
    predictions = task.predict(oracle_logits(task, features, examples), features, examples)
    assert predictions.report.notes["words beyond max_seq_length predicted O"] == cut
    truncated_gold = [ex.tags[:k] + ["O"] * (len(ex.tags) - k) for ex, k in zip(examples, kept)]
    assert [p["tags"] for p in predictions] == truncated_gold
    scores = task.metrics(predictions, examples)
    gold = [ex.tags for ex in examples]
    assert scores == pytest.approx({**entity_scores(truncated_gold, gold), "token_accuracy": scores["token_accuracy"],
                                    "num_examples": 3000})
    assert scores["num_true"] == entity_scores(gold, gold)["num_true"]      # the test set did not shrink
    assert scores["recall"] < 0.95


def test_korean_ner_alignment_and_round_trip(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    task = get_task("ko_ner")
    examples = task.read(data_file("ko_ner", "ner.train"))
    trainer = tokenizers.BertWordPieceTokenizer(lowercase=False, strip_accents=False)
    trainer.train_from_iterator([ex.text for ex in examples], vocab_size=4000, show_progress=False)
    trainer.save_model(str(tmp_path))
    from bertkit.text.tokenizer import BertTokenizer
    tok = BertTokenizer(str(tmp_path / "vocab.txt"), do_lower_case=False, strip_accents=False)
    features = task.encode(examples, tok, max_seq_length=256, training=True)
    assert not [reason for reason in features.report.notes if "were cut" in reason]
    first = features[0]
    assert sum(label != IGNORE_INDEX for label in first["labels"]) == len(examples[0].words)
    assert first["labels"][first["word_starts"][4]] == task.label2id["B-PS"]     # 홍길동
    predictions = task.predict(oracle_logits(task, features, examples), features, examples)
    assert task.metrics(predictions, examples)["f1"] == 1.0
    assert {"type": "PS", "start": 4, "end": 4, "text": "홍길동"} in predictions[0]["entities"]


def test_unknown_tags_and_wordless_pieces(tokenizer):
    task = get_task("conll2003")
    examples = [TaggedExample(["Alice", "\x07", "visits", "Oslo"], ["B-PER", "O", "O", "B-CITY"], "s1")]
    features = task.encode(examples, tokenizer, 32)
    notes = features.report.notes
    assert notes["tags outside the labels of task 'conll2003' (scored, ignored by the loss; lines are sentence starts)"] == 1
    assert notes["words with no word pieces (encoded as [UNK])"] == 1
    f = features[0]
    assert f["input_ids"][f["word_starts"][1]] == tokenizer.unk_token_id
    assert f["labels"][f["word_starts"][3]] == IGNORE_INDEX
    with pytest.raises(InputError, match="outside"):
        task.encode(examples, tokenizer, 32, training=True)
    # the unknown entity still counts in the score: a perfect model on known tags gets recall 1/2
    outputs = [np.zeros((len(f["input_ids"]), 9), np.float32)]
    outputs[0][f["word_starts"][0], task.label2id["B-PER"]] = 1
    scores = task.metrics(task.predict(outputs, features, examples), examples)
    assert scores["recall"] == 0.5 and scores["precision"] == 1.0


def test_collate_pads_labels_with_ignore_index(conll, tokenizer):
    task = get_task("conll2003")
    features = task.encode(conll[:5], tokenizer, 64)
    batch = task.collate(features)
    assert batch["labels"].shape == batch["input_ids"].shape
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()

    class Out:
        logits = torch.randn(5, batch["input_ids"].shape[1], 9)

    gathered = task.gather(Out(), batch)
    assert [g.shape[0] for g in gathered] == [len(f["input_ids"]) for f in features]


def test_generic_tagging_labels_and_predict_from_text(tmp_path, tokenizer):
    path = tmp_path / "train.conll"
    path.write_text("Kim\tB-PER\nsaw\tO\nSeoul\tB-GPE\n\nPark\tB-PER\nJi\tI-PER\n", encoding="utf-8")
    task = get_task("tagging", tag_column=1)
    examples = task.read(path)
    assert task.fit_labels(examples) == ["O", "B-GPE", "I-GPE", "B-PER", "I-PER"]
    assert task.config_overrides()["num_labels"] == 5
    new = task.examples_from_texts(["Lee met Kim"])
    features = task.encode(new, tokenizer, 16)
    logits = np.zeros((len(features[0]["input_ids"]), 5), np.float32)
    logits[features[0]["word_starts"][2], 3] = 1.0
    predictions = task.predict([logits], features, new)
    assert predictions[0]["tags"] == ["O", "O", "B-PER"]
    record = task.format_prediction(predictions[0], new[0])
    assert record["words"] == ["Lee", "met", "Kim"] and record["entities"][0]["text"] == "Kim"
    json.dumps(record)
    with pytest.raises(InputError, match="unlabelled"):
        task.metrics(predictions, new)
