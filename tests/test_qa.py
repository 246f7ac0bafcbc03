"""Extractive QA: windows over long contexts, training positions, and post-processing parity.

The reference windows come from the Hugging Face fast tokenizer's own overflow logic
(`return_overflowing_tokens` with the stride that gives the same window starts), and
the reference post-processing is the standard algorithm of Hugging Face's
`postprocess_qa_predictions` (examples/pytorch/question-answering/utils_qa.py), written
out below independently of bertkit.  Tokenizer: a small Korean WordPiece vocab trained
here with `tokenizers` on the KorQuAD text; bertkit's tokenizer is tested the same way.
"""
from __future__ import annotations

import collections
import json

import numpy as np
import pytest

from bertkit.tasks import get_task
from bertkit.tasks.qa import doc_windows
from bertkit.tasks.readers import QAExample
from bertkit.tasks.squad import read_squad
from conftest import data_file

MAX_LENGTH, DOC_STRIDE, MAX_QUERY, N_BEST, MAX_ANSWER = 384, 128, 64, 20, 30


@pytest.fixture(scope="module")
def korquad():
    return read_squad(data_file("korquad1", "KorQuAD_v1.0_dev_half_a.json"))


@pytest.fixture(scope="module")
def ko_vocab(korquad, tmp_path_factory):
    tokenizers = pytest.importorskip("tokenizers")
    texts = list(dict.fromkeys(ex.context for ex in korquad)) + [ex.question for ex in korquad]
    trainer = tokenizers.BertWordPieceTokenizer(lowercase=False, strip_accents=False)
    trainer.train_from_iterator(texts, vocab_size=8000, min_frequency=2, show_progress=False)
    out = tmp_path_factory.mktemp("ko_vocab")
    trainer.save_model(str(out))
    return out / "vocab.txt"


@pytest.fixture(scope="module")
def hf_tokenizer(ko_vocab):
    transformers = pytest.importorskip("transformers")
    return transformers.BertTokenizerFast(vocab=str(ko_vocab), do_lower_case=False, strip_accents=False)


def bertkit_tokenizer(ko_vocab):
    try:
        from bertkit.text.tokenizer import BertTokenizer
    except ImportError:
        pytest.skip("bertkit.text.tokenizer is not available yet")
    return BertTokenizer(str(ko_vocab), do_lower_case=False, strip_accents=False)


@pytest.fixture(scope="module", params=["hf", "bertkit"])
def tokenizer(request, ko_vocab, hf_tokenizer):
    return hf_tokenizer if request.param == "hf" else bertkit_tokenizer(ko_vocab)


# ------------------------------------------------------------------- reference (independent)

def reference_features(example: QAExample, tok) -> list[dict]:
    """Windows made by the HF tokenizer: question cut to MAX_QUERY pieces, then the context
    split with overflow; HF's `stride` is the overlap, so overlap = room - DOC_STRIDE."""
    q = tok(example.question, add_special_tokens=False, return_offsets_mapping=True)
    question = example.question
    if len(q["input_ids"]) > MAX_QUERY:
        question = question[:q["offset_mapping"][MAX_QUERY - 1][1]]
    q_len = min(len(q["input_ids"]), MAX_QUERY)
    room = MAX_LENGTH - q_len - 3
    enc = tok(question, example.context, truncation="only_second", max_length=MAX_LENGTH,
              stride=max(0, room - DOC_STRIDE), return_overflowing_tokens=True, return_offsets_mapping=True)
    features = []
    for i in range(len(enc["input_ids"])):
        sequence_ids = enc.sequence_ids(i)
        offsets = [o if sequence_ids[k] == 1 else None for k, o in enumerate(enc["offset_mapping"][i])]
        features.append({"input_ids": enc["input_ids"][i], "offset_mapping": offsets})
    return features


def reference_postprocess(example: QAExample, features: list[dict], all_logits: list[tuple]) -> str:
    """HF `postprocess_qa_predictions` (v1, no null answer) for one example."""
    prelim_predictions = []
    for feature, (start_logits, end_logits) in zip(features, all_logits):
        offset_mapping = feature["offset_mapping"]
        start_indexes = np.argsort(start_logits)[-1: -N_BEST - 1: -1].tolist()
        end_indexes = np.argsort(end_logits)[-1: -N_BEST - 1: -1].tolist()
        for start_index in start_indexes:
            for end_index in end_indexes:
                if (start_index >= len(offset_mapping) or end_index >= len(offset_mapping)
                        or offset_mapping[start_index] is None or len(offset_mapping[start_index]) < 2
                        or offset_mapping[end_index] is None or len(offset_mapping[end_index]) < 2):
                    continue
                if end_index < start_index or end_index - start_index + 1 > MAX_ANSWER:
                    continue
                prelim_predictions.append({
                    "offsets": (offset_mapping[start_index][0], offset_mapping[end_index][1]),
                    "score": start_logits[start_index] + end_logits[end_index]})
    predictions = sorted(prelim_predictions, key=lambda x: x["score"], reverse=True)[:N_BEST]
    for pred in predictions:
        offsets = pred.pop("offsets")
        pred["text"] = example.context[offsets[0]: offsets[1]]
    if len(predictions) == 0 or (len(predictions) == 1 and predictions[0]["text"] == ""):
        predictions.insert(0, {"text": "empty", "score": 0.0})
    return predictions[0]["text"]


# ------------------------------------------------------------------- tests

def test_windows_follow_the_original_doc_stride_rule():
    assert doc_windows(10, 4, 2) == [(0, 4), (2, 4), (4, 4), (6, 4)]
    assert doc_windows(3, 4, 2) == [(0, 3)]
    assert doc_windows(0, 4, 2) == [(0, 0)]
    assert doc_windows(9, 4, 8) == [(0, 4), (4, 4), (8, 1)]      # stride > window: step = window
    for n in range(1, 60):
        w = doc_windows(n, 7, 3)
        assert w[-1][0] + w[-1][1] == n and all(b[0] - a[0] == 3 for a, b in zip(w, w[1:]))


def test_windows_match_the_reference_tokenizer_windows(korquad, tokenizer, hf_tokenizer):
    task = get_task("korquad", max_query_length=MAX_QUERY, doc_stride=DOC_STRIDE)
    examples = korquad[:1500]
    features = task.encode(examples, tokenizer, MAX_LENGTH)
    by_example = collections.defaultdict(list)
    for f in features:
        by_example[f["example_index"]].append(f)
    multi = 0
    for i, ex in enumerate(examples):
        ref = reference_features(ex, hf_tokenizer)
        ours = by_example[i]
        assert [f["input_ids"] for f in ours] == [r["input_ids"] for r in ref], ex.id
        for f, r in zip(ours, ref):
            context = [o for o in r["offset_mapping"] if o is not None]
            assert [tuple(o) for o in f["context_offsets"]] == [tuple(o) for o in context]
            assert r["offset_mapping"][f["context_start"]] is not None
            assert r["offset_mapping"][f["context_start"] - 1] is None
        multi += len(ours) > 1
    assert multi >= 20                     # long contexts really are part of the comparison


def test_postprocessing_equals_reference_on_real_korquad(korquad, tokenizer, hf_tokenizer):
    """Same seeded random logits → the same answer text for every question."""
    task = get_task("korquad", max_query_length=MAX_QUERY, doc_stride=DOC_STRIDE, n_best_size=N_BEST,
                    max_answer_length=MAX_ANSWER)
    examples = korquad[:1200]
    features = task.encode(examples, tokenizer, MAX_LENGTH)
    rng = np.random.default_rng(1234)
    logits = [(rng.standard_normal(len(f["input_ids"])).astype(np.float32),
               rng.standard_normal(len(f["input_ids"])).astype(np.float32)) for f in features]
    ours = task.predict(logits, features, examples)
    by_example = collections.defaultdict(list)
    for f, lg in zip(features, logits):
        by_example[f["example_index"]].append(lg)
    compared = long_contexts = 0
    for i, ex in enumerate(examples):
        ref_features = reference_features(ex, hf_tokenizer)
        expected = reference_postprocess(ex, ref_features, by_example[i])
        got = ours[i]["answer"] or "empty"
        assert got == expected, (ex.id, got, expected)
        compared += 1
        long_contexts += len(ref_features) > 1
    assert compared >= 1000 and long_contexts >= 15
    assert len({p["answer"] for p in ours}) > 500            # random logits → varied answers


def test_training_positions_cover_exactly_the_answer(korquad, tokenizer):
    task = get_task("korquad")
    features = task.encode(korquad, tokenizer, MAX_LENGTH, training=True)
    inside = outside = 0
    for f in features:
        ex = korquad[f["example_index"]]
        s, e = f["start_positions"], f["end_positions"]
        if s == 0:
            assert e == 0
            outside += 1
            continue
        inside += 1
        first, offsets = f["context_start"], f["context_offsets"]
        span_start, span_end = offsets[s - first][0], offsets[e - first][1]
        a_start = ex.answers[0]["answer_start"]
        a_end = a_start + len(ex.answers[0]["text"])
        # the first piece holds the answer's first character, the last piece its last one
        # (characters that no piece covers, like a trailing space in the answer, aside)
        assert a_start < offsets[s - first][1] and ex.context[a_start:span_start].strip() == ""
        assert offsets[e - first][0] < a_end and ex.context[span_end:a_end].strip() == ""
        assert s == first or offsets[s - first - 1][1] <= a_start or s - first == 0
        assert e - s + 1 <= 64
    assert inside >= len(korquad) * 0.98 and outside > 0


def test_oracle_logits_give_back_the_gold_answers(korquad, hf_tokenizer):
    """Logits that peak at the gold pieces → exactly the text of those pieces, from the original context."""
    task = get_task("korquad")
    examples = korquad[:600]
    features = task.encode(examples, hf_tokenizer, MAX_LENGTH, training=True)
    logits = []
    for f in features:
        start, end = np.zeros(len(f["input_ids"]), np.float32), np.zeros(len(f["input_ids"]), np.float32)
        if f["start_positions"]:
            start[f["start_positions"]], end[f["end_positions"]] = 10, 10
        logits.append((start, end))
    predictions = task.predict(logits, features, examples)
    expected = {}
    for f in features:
        if f["start_positions"] and f["example_index"] not in expected:
            offsets, first = f["context_offsets"], f["context_start"]
            span = (offsets[f["start_positions"] - first][0], offsets[f["end_positions"] - first][1])
            expected[f["example_index"]] = examples[f["example_index"]].context[span[0]:span[1]]
    assert len(expected) == len(examples)
    assert [p["answer"] for p in predictions] == [expected[i] for i in range(len(examples))]
    # pieces often carry a particle (날은 = 날 + 은), so EM < 100 even for perfect logits
    scores = task.metrics(predictions, examples)
    assert scores["exact_match"] > 60 and scores["f1"] > 90
    record = task.format_prediction(predictions[0], examples[0])
    assert record["id"] == examples[0].id and record["answer"] == predictions[0]["answer"]
    json.dumps(record)


def test_answers_not_in_context_are_counted_not_trained(tmp_path, hf_tokenizer):
    context = "세종대왕은 1443년에 훈민정음을 창제하였다. " * 60           # longer than one window
    data = {"data": [{"title": "세종", "paragraphs": [{"context": context, "qas": [
        {"id": "a", "question": "훈민정음은 언제?", "answers": [{"text": "1443년", "answer_start": 6}]},
        {"id": "b", "question": "누가?", "answers": [{"text": "이순신", "answer_start": 0}]},
    ]}]}]}
    path = tmp_path / "qa.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    task = get_task("korquad")
    examples = task.read(path)
    train = task.encode(examples, hf_tokenizer, 128, training=True)
    assert {f["example_index"] for f in train} == {0}
    assert train.report.skipped["no usable answer in the context (left out of training)"] == 1
    assert train.report.notes["context longer than one window (split into windows)"] == 1
    assert sum(f["start_positions"] > 0 for f in train) == 1        # only the first window holds it
    evaluation = task.encode(examples, hf_tokenizer, 128)
    assert {f["example_index"] for f in evaluation} == {0, 1}          # still scored
    batch = task.collate(evaluation[:2])
    assert "start_positions" in batch and batch["input_ids"].shape[0] == 2
    with pytest.raises(ValueError, match="no room for the context"):
        task.encode(examples, hf_tokenizer, 10)


def test_model_config_checks():
    task = get_task("squad")
    assert task.config_overrides() == {"num_labels": 2}

    class Config:
        num_labels, id2label = 3, {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}

    with pytest.raises(ValueError, match="task/model mismatch.*num_labels=3"):
        task.check_config(Config())


def test_gather_trims_padding():
    import torch

    class Out:
        start_logits = torch.arange(8.0).view(2, 4)
        end_logits = -torch.arange(8.0).view(2, 4)

    batch = {"attention_mask": torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])}
    gathered = get_task("qa").gather(Out(), batch)
    assert [len(s) for s, _ in gathered] == [3, 4] and gathered[1][0].tolist() == [4, 5, 6, 7]


def _assert_parity(task, examples, features, logits, hf_tokenizer) -> int:
    ours = task.predict(logits, features, examples)
    by_example = collections.defaultdict(list)
    for f, lg in zip(features, logits):
        by_example[f["example_index"]].append(lg)
    long_contexts = 0
    for i, ex in enumerate(examples):
        ref_features = reference_features(ex, hf_tokenizer)
        expected = reference_postprocess(ex, ref_features, by_example[i])
        assert (ours[i]["answer"] or "empty") == expected, ex.id
        long_contexts += len(ref_features) > 1
    return long_contexts


def test_postprocessing_parity_with_logits_of_a_random_model(korquad, hf_tokenizer):
    """Logits from a randomly initialised tiny BERT, through run_model/gather (padding, batching)."""
    try:
        from bertkit import BertConfig, BertForQuestionAnswering
    except ImportError:
        pytest.skip("bertkit.modeling.encoder is not available yet")
    import torch
    torch.manual_seed(0)
    config = BertConfig.preset("tiny", vocab_size=len(hf_tokenizer), num_labels=2)
    model = BertForQuestionAnswering(config).eval()
    task = get_task("korquad")
    long_contexts = [ex for ex in korquad if len(ex.context) > 1500][:20]
    examples = long_contexts + korquad[:30]
    features = task.encode(examples, hf_tokenizer, MAX_LENGTH)
    logits = task.run_model(model, features, batch_size=8)
    assert [len(s) for s, _ in logits] == [len(f["input_ids"]) for f in features]
    assert _assert_parity(task, examples, features, logits, hf_tokenizer) >= 15


@pytest.mark.slow
def test_postprocessing_parity_on_every_korquad_question(korquad, tokenizer, hf_tokenizer):
    task = get_task("korquad")
    features = task.encode(korquad, tokenizer, MAX_LENGTH)
    rng = np.random.default_rng(99)
    logits = [(rng.standard_normal(len(f["input_ids"])).astype(np.float32),
               rng.standard_normal(len(f["input_ids"])).astype(np.float32)) for f in features]
    assert _assert_parity(task, korquad, features, logits, hf_tokenizer) >= 50
