"""question-answering: windows over long contexts, the standard post-processing, char offsets."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from pipeline_fixtures import tiny_model_dir

FILLER = " ".join(f"Sentence number {i} talks about the city of Paris and its {i * 7} bridges." for i in range(30))
CONTEXT = FILLER + " The keeper counted seventeen zebras in the park. " + FILLER


class KeywordQA(torch.nn.Module):
    """A stand-in QA model whose start logit fires on one token id and end logit on another.

    With it the test knows the right answer, so windowing, offsets and the span search
    are checked end to end without training anything.
    """

    def __init__(self, config, start_id: int, end_id: int):
        super().__init__()
        self.config = config
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.start_id, self.end_id = start_id, end_id

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        from types import SimpleNamespace
        noise = torch.sin(torch.arange(input_ids.shape[1], dtype=torch.float))[None] * 0.1   # [1,T]
        start = (input_ids == self.start_id).float() * 10 + noise
        end = (input_ids == self.end_id).float() * 10 + noise
        return SimpleNamespace(start_logits=start, end_logits=end)


@pytest.fixture(scope="module")
def tok(minilm_path):
    from bertkit import BertTokenizer
    return BertTokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="module")
def keyword_pipe(tok):
    from bertkit import BertConfig
    from bertkit.pipelines.qa import QuestionAnsweringPipeline
    config = BertConfig.preset("tiny", vocab_size=tok.vocab_size, num_labels=2)
    start_id, end_id = tok.convert_tokens_to_ids(["seventeen", "zebra"])
    return QuestionAnsweringPipeline(KeywordQA(config, start_id, end_id), tokenizer=tok, device="cpu")


@pytest.mark.parametrize("max_seq_length,doc_stride", [(384, 128), (64, 16), (48, 7)])
def test_answer_deep_in_a_long_context_is_found(keyword_pipe, max_seq_length, doc_stride):
    result = keyword_pipe(question="How many zebras?", context=CONTEXT, max_seq_length=max_seq_length,
                          doc_stride=doc_stride)
    assert result["answer"] == "seventeen zebra"
    assert CONTEXT[result["start"]:result["end"]] == result["answer"]
    assert result["start"] > 1000                        # far beyond the first window
    assert 0 < result["score"] <= 1 and result["logit"] == pytest.approx(20, abs=0.5)


def test_max_answer_length_limits_the_span(keyword_pipe):
    result = keyword_pipe(question="How many zebras?", context=CONTEXT, max_answer_length=1, top_k=1)
    assert result["answer"] != "seventeen zebra"
    assert len(keyword_pipe.tokenizer.tokenize(result["answer"])) == 1


@pytest.fixture(scope="module")
def random_qa(tmp_path_factory, minilm_path):
    d = tiny_model_dir(tmp_path_factory.mktemp("qa"), "BertForQuestionAnswering", minilm_path, scale=30)
    from bertkit import pipeline
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pipeline("question-answering", model=d, device="cpu")


@pytest.mark.parametrize("max_seq_length,doc_stride,max_query_length", [(384, 128, 64), (64, 16, 64), (40, 5, 6)])
def test_best_answer_equals_the_standard_post_processing(random_qa, max_seq_length, doc_stride, max_query_length):
    from bertkit.tasks import QAExample, QATask
    questions = ["How many bridges does Paris have, according to sentence number twelve of the text?",
                 "Who counted the zebras?"]
    got = random_qa(question=questions, context=CONTEXT, max_seq_length=max_seq_length, doc_stride=doc_stride,
                    max_query_length=max_query_length)
    task = QATask(max_query_length=max_query_length, doc_stride=doc_stride)
    examples = [QAExample(id=str(i), question=q, context=CONTEXT) for i, q in enumerate(questions)]
    max_length = min(max_seq_length, random_qa.model.config.max_position_embeddings)   # what the pipeline uses
    features = task.encode(examples, random_qa.tokenizer, max_seq_length=max_length)
    assert len(features) > 2 * len(examples)               # really several windows
    want = task.predict(task.run_model(random_qa.model, features), features, examples)
    for g, w in zip(got, want):
        assert (g["answer"], g["start"], g["end"]) == (w["answer"], w["start"], w["end"])
        assert g["logit"] == pytest.approx(w["score"], abs=1e-4)


def test_top_k_is_ranked_and_consistent(random_qa):
    top = random_qa(question="How many bridges?", context=CONTEXT, max_seq_length=96, doc_stride=32, top_k=5)
    assert len(top) == 5
    assert [t["logit"] for t in top] == sorted((t["logit"] for t in top), reverse=True)
    assert len({(t["start"], t["end"]) for t in top}) == 5
    assert 0 < sum(t["score"] for t in top) <= 1 + 1e-9
    for t in top:
        assert CONTEXT[t["start"]:t["end"]] == t["answer"]
    best = random_qa(question="How many bridges?", context=CONTEXT, max_seq_length=96, doc_stride=32)
    assert best["answer"] == top[0]["answer"] and best["score"] == pytest.approx(top[0]["score"])


def test_korean_answers_are_original_characters(random_qa):
    context = ("이미 존재하던 마을의 주인이 되어 살아가는 기존 작품들에서 나아가, 아무것도 없는 무인도에 "
               "초기 주민 둘과 함께 이주해 처음부터 섬을 개척해 나가는 게임이다. 하나의 섬에서 최대 8명까지 "
               "함께 생활할 수 있다.") * 3
    for r in random_qa(question="동숲 섬에 몇 명까지 살 수 있음?", context=context, top_k=3, max_seq_length=64,
                       doc_stride=20):
        assert r["answer"] == context[r["start"]:r["end"]] and r["answer"]
        assert "#" not in r["answer"] and "ᄒ" not in r["answer"]     # no pieces, no decomposed jamo


def test_input_forms(random_qa):
    q, c = "How many bridges?", FILLER[:300]
    one = random_qa(question=q, context=c)
    assert random_qa(q, c) == one
    assert random_qa({"question": q, "context": c}) == one
    assert random_qa([{"question": q, "context": c}] * 2) == [one, one]
    assert random_qa(question=[q, q], context=[c, c]) == [one, one]


def test_user_errors(random_qa):
    with pytest.raises(ValueError, match="context"):
        random_qa(question="Where?", context="   ")
    with pytest.raises(ValueError, match="question"):
        random_qa(question="", context="Paris")
    with pytest.raises(ValueError, match="both"):
        random_qa(question="Where?")
    with pytest.raises(ValueError, match="context"):
        random_qa(question=["a", "b"], context=["only one"])
    with pytest.raises(ValueError, match="no room"):
        random_qa(question="long question " * 30, context="Paris", max_seq_length=20, max_query_length=64)
    with pytest.raises(ValueError, match="top_k"):
        random_qa(question="Where?", context="Paris", top_k=0)


def test_span_candidates_first_is_best_span(random_qa):
    from bertkit.pipelines.qa import span_candidates
    from bertkit.tasks import QATask
    rng = np.random.default_rng(0)
    task = QATask(max_answer_length=5)
    feature = {"context_start": 4, "context_offsets": [(i * 3, i * 3 + 2) for i in range(20)]}
    for _ in range(50):
        s, e = rng.normal(size=25).astype(np.float32), rng.normal(size=25).astype(np.float32)
        cands = span_candidates(task, s, e, feature)
        best = task.best_span(s, e, feature)
        assert (best is None) == (not cands)
        if cands:
            assert cands[0] == (pytest.approx(float(best[0])), best[1], best[2])
            assert [c[0] for c in cands] == sorted((c[0] for c in cands), reverse=True)


# ------------------------------------------------------------------- unanswerable questions (SQuAD 2.0)

class NullQA(KeywordQA):
    """KeywordQA that also scores [CLS] (position 0): start and end `cls_logit` each."""

    def __init__(self, config, start_id: int, end_id: int, cls_logit: float):
        super().__init__(config, start_id, end_id)
        self.cls_logit = cls_logit

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        out = super().forward(input_ids, attention_mask, token_type_ids)
        out.start_logits[:, 0] += self.cls_logit
        out.end_logits[:, 0] += self.cls_logit
        return out


@pytest.fixture(scope="module")
def null_pipe(tok):
    from bertkit import BertConfig
    from bertkit.pipelines.qa import QuestionAnsweringPipeline
    config = BertConfig.preset("tiny", vocab_size=tok.vocab_size, num_labels=2)
    start_id, end_id = tok.convert_tokens_to_ids(["seventeen", "zebra"])
    return QuestionAnsweringPipeline(NullQA(config, start_id, end_id, cls_logit=15.0), tokenizer=tok, device="cpu")


def test_handle_impossible_answer_returns_the_empty_answer_when_null_wins(null_pipe):
    ask = dict(question="How many zebras?", context=CONTEXT, max_seq_length=64, doc_stride=16)
    span = null_pipe(**ask)                                       # null logit 30 vs span logit ≈ 20
    assert span["answer"] == "seventeen zebra"
    null = null_pipe(**ask, handle_impossible_answer=True)
    assert (null["answer"], null["start"], null["end"]) == ("", 0, 0)
    assert null["logit"] == pytest.approx(30.0) and 0.5 < null["score"] <= 1
    # null − span ≈ 10: a threshold above that keeps the span, below it gives ""
    assert null_pipe(**ask, handle_impossible_answer=True, null_score_diff_threshold=11.0)["answer"] == span["answer"]
    assert null_pipe(**ask, handle_impossible_answer=True, null_score_diff_threshold=9.0)["answer"] == ""
    top = null_pipe(**ask, handle_impossible_answer=True, top_k=3)
    assert top[0]["answer"] == "" and top[1]["answer"] == "seventeen zebra"
    assert [t["logit"] for t in top] == sorted((t["logit"] for t in top), reverse=True)
    assert 0 < sum(t["score"] for t in top) <= 1 + 1e-9


def test_handle_impossible_answer_keeps_the_span_when_it_wins(keyword_pipe):
    ask = dict(question="How many zebras?", context=CONTEXT, max_seq_length=64, doc_stride=16)
    with_null = keyword_pipe(**ask, handle_impossible_answer=True, top_k=2)
    assert with_null[0]["answer"] == "seventeen zebra"
    assert keyword_pipe(**ask)["answer"] == with_null[0]["answer"]


def test_pipeline_null_rule_equals_the_squad2_task(random_qa):
    """The pipeline's "" decision and span = the squad2 task's predict (same windows, same rule),
    at thresholds between the questions' null_score_diffs (so 0, 1, ..., all answers are "")."""
    from bertkit.tasks import QAExample, get_task
    questions = ["How many bridges does Paris have?", "Who counted the zebras?", "Which city?", "What number?",
                 "Where is the park?", "Talks about what?"]
    task = get_task("squad2", doc_stride=32)
    examples = [QAExample(id=str(i), question=q, context=CONTEXT) for i, q in enumerate(questions)]
    features = task.encode(examples, random_qa.tokenizer, max_seq_length=96)
    predictions = task.predict(task.run_model(random_qa.model, features), features, examples)
    diffs = sorted(p["null_score_diff"] for p in predictions)
    cuts = [diffs[0] - 1] + [(a + b) / 2 for a, b in zip(diffs, diffs[1:])] + [diffs[-1] + 1]
    for n_answered, threshold in enumerate(cuts):
        got = random_qa(question=questions, context=CONTEXT, max_seq_length=96, doc_stride=32,
                        handle_impossible_answer=True, null_score_diff_threshold=threshold)
        want = task.apply_threshold(predictions, threshold)
        assert sum(w["answer"] != "" for w in want) == n_answered
        for g, w in zip(got, want):
            assert g["answer"] == w["answer"]
            assert (g["start"], g["end"]) == ((0, 0) if w["answer"] == "" else (w["start"], w["end"]))
            assert g["logit"] == pytest.approx(w["score"], abs=1e-4)


# ------------------------------------------------------------------- the reference pipeline's names

@pytest.mark.parametrize("old,new,value", [("max_seq_len", "max_seq_length", 64),
                                           ("max_question_len", "max_query_length", 6),
                                           ("max_answer_len", "max_answer_length", 2),
                                           ("n_best", "n_best_size", 5)])
def test_old_keyword_names_warn_and_give_the_same_result(random_qa, old, new, value):
    ask = dict(question="How many bridges does Paris have?", context=CONTEXT, doc_stride=16, top_k=3)
    with pytest.warns(DeprecationWarning, match=f"{old}= is deprecated, use {new}=") as record:
        got = random_qa(**ask, **{old: value})
    assert record[0].filename == __file__                         # the warning points at the caller
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        want = random_qa(**ask, **{new: value})
    assert got == want
    assert got != random_qa(**ask) or new == "n_best_size"          # the value really was used


def test_old_and_new_names_together(random_qa):
    ask = dict(question="Where?", context=FILLER[:300])
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="disagree"):
        random_qa(**ask, max_seq_len=64, max_seq_length=96)
    with pytest.warns(DeprecationWarning):
        assert random_qa(**ask, max_seq_len=64, max_seq_length=64) == random_qa(**ask, max_seq_length=64)
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_seq_lenght'"):
        random_qa(**ask, max_seq_lenght=64)


@pytest.mark.parametrize("side", ["no answer", "span"])
def test_saved_squad2_threshold_decides_in_the_pipeline_answer_predict_and_serve(side, tmp_path, minilm_path, capsys):
    """One model, one decision: task.json's tuned null_score_diff_threshold is the default of every route."""
    import json

    from bertkit.cli import main
    from bertkit.pipelines.qa import QuestionAnsweringPipeline
    folder = tiny_model_dir(tmp_path / "qa", "BertForQuestionAnswering", minilm_path, scale=30)
    question, context = "How many players?", "Up to eight players can live together on one island."
    plain = QuestionAnsweringPipeline(folder, device="cpu")
    span = plain(question=question, context=context)                       # no task.json: a span
    null = plain(question=question, context=context, handle_impossible_answer=True, null_score_diff_threshold=-1e9)
    diff = null["logit"] - span["logit"]                 # null − best span: "" when it beats the threshold
    saved, other = (diff - 1.0, diff + 1.0) if side == "no answer" else (diff + 1.0, diff - 1.0)
    expected = "" if side == "no answer" else span["answer"]
    (folder / "task.json").write_text(json.dumps({"task": "squad2", "family": "qa", "max_seq_length": 128,
                                                  "options": {"null_score_diff_threshold": saved}}))
    pipe = QuestionAnsweringPipeline(folder, device="cpu")
    assert pipe(question=question, context=context)["answer"] == expected
    assert pipe(question=question, context=context, null_score_diff_threshold=other)["answer"] != expected
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["answer", question, "--context", context, "--model", str(folder), "--json"]) == 0
        answered = json.loads(capsys.readouterr().out)[0]["answer"]
        assert main(["predict", question, context, "--model", str(folder), "--json"]) == 0
        predicted = json.loads(capsys.readouterr().out)["answer"]
        assert main(["answer", question, "--context", context, "--model", str(folder), "--json",
                     "--null-score-diff-threshold", str(other)]) == 0
        overridden = json.loads(capsys.readouterr().out)[0]["answer"]
    assert answered == predicted == expected != overridden
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from bertkit.apps.serve import ModelHost, create_app
    served = TestClient(create_app(host=ModelHost(folder, folder))).post(
        "/api/qa", json={"question": question, "context": context})
    assert served.json()["answers"][0]["answer"] == expected
