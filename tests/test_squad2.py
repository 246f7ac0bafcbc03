"""SQuAD 2.0: unanswerable questions — reading, [CLS] targets, the null rule, the official metrics.

The data are small hand-made files in the official SQuAD 2.0 format (``"version": "v2.0"``,
``is_impossible``, ``plausible_answers``); the expected metric values are worked out by hand
in the comments.  Neither `transformers` (5.x has no SQuAD metric code) nor `evaluate` is
available offline here, so the cross-check is an independent transcription of the
official evaluate-v2.0.py flow (dicts keyed by question id, as the script does it), below.
"""
from __future__ import annotations

import collections
import json
import re
import string
import warnings

import numpy as np
import pytest

from bertkit.tasks import QATask, get_task
from bertkit.tasks import metrics as M
from bertkit.tasks.squad import read_squad
from conftest import data_file, import_bench

NORMANS = ("The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, "
           "a region in France.")
ZEBRA_FILLER = " ".join(f"Sentence number {i} talks about the city of Paris and its bridges." for i in range(25))
ZEBRA = ZEBRA_FILLER + " The keeper counted seventeen zebras in the park. " + ZEBRA_FILLER


def official_file(tmp_path, name: str = "dev-v2.0.json") -> tuple:
    """4 questions on a short paragraph (2 answerable, 2 not) + 2 on a long one (1 + 1)."""
    france, normans = NORMANS.index("France"), NORMANS.index("Normans")
    data = {"version": "v2.0", "data": [
        {"title": "Normans", "paragraphs": [{"context": NORMANS, "qas": [
            {"id": "q1", "question": "In what country is Normandy located?", "is_impossible": False,
             "answers": [{"text": "France", "answer_start": france}]},
            {"id": "q2", "question": "Who gave their name to Normandy?", "is_impossible": False,
             "answers": [{"text": "The Normans", "answer_start": 0}, {"text": "Normans", "answer_start": normans}]},
            {"id": "q3", "question": "Who gave their name to Normandy in the 1000s?", "is_impossible": True,
             "answers": [], "plausible_answers": [{"text": "The Normans", "answer_start": 0}]},
            {"id": "q4", "question": "What is France a region of?", "is_impossible": True,
             "answers": [], "plausible_answers": [{"text": "Normandy", "answer_start": NORMANS.index("Normandy")}]},
        ]}]},
        {"title": "Zoo", "paragraphs": [{"context": ZEBRA, "qas": [
            {"id": "z1", "question": "How many zebras did the keeper count?", "is_impossible": False,
             "answers": [{"text": "seventeen", "answer_start": ZEBRA.index("seventeen")}]},
            {"id": "z2", "question": "How many lions did the keeper count?", "is_impossible": True,
             "answers": [], "plausible_answers": [{"text": "seventeen", "answer_start": ZEBRA.index("seventeen")}]},
        ]}]},
    ]}
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path, data


# ------------------------------------------------------------------- reading

def test_reader_keeps_unanswerable_questions_only_for_version_2(tmp_path):
    path, _ = official_file(tmp_path)
    v2 = read_squad(path, version_2_with_negative=True)
    assert [ex.id for ex in v2] == ["q1", "q2", "q3", "q4", "z1", "z2"]
    assert [ex.is_impossible for ex in v2] == [False, False, True, True, False, True]
    q3 = v2[2]
    assert q3.answers == [] and q3.answer_ok == [] and q3.plausible_answers == [{"text": "The Normans",
                                                                                 "answer_start": 0}]
    assert v2[1].answers[1] == {"text": "Normans", "answer_start": 4} and v2[1].answer_ok == [True, True]
    assert v2.report.notes["unanswerable question (SQuAD 2.0)"] == 3 and v2.report.num_skipped() == 0
    v1 = read_squad(path)                                            # SQuAD 1.1 reading: as before
    assert [ex.id for ex in v1] == ["q1", "q2", "z1"] and not any(ex.is_impossible for ex in v1)
    assert v1.report.num_skipped() == 3
    assert [ex.id for ex in get_task("squad2").read(path)] == [ex.id for ex in v2]
    assert [ex.id for ex in get_task("qa", version_2_with_negative=True).read(path)] == [ex.id for ex in v2]
    assert [ex.id for ex in get_task("squad").read(path)] == ["q1", "q2", "z1"]


def test_reader_v2_rule_for_questions_without_answers(tmp_path):
    data = {"data": [{"paragraphs": [{"context": "Paris is in France.", "qas": [
        {"id": "a", "question": "Where is Paris?", "answers": []},                           # no flag
        {"id": "b", "question": "Why?", "is_impossible": True, "answers": [{"text": "x", "answer_start": 0}]},
    ]}]}]}
    path = tmp_path / "v2.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    examples = read_squad(path, version_2_with_negative=True)
    assert [ex.is_impossible for ex in examples] == [True, True] and examples[1].answers == []
    assert examples.report.notes["no answers and no is_impossible flag: unanswerable (the SQuAD 2.0 rule)"] == 1
    assert examples.report.notes["is_impossible with answers: the answers are ignored"] == 1


def test_squad2_task_registration():
    task = get_task("squad2")
    assert isinstance(task, QATask) and task.name == "squad2" and task.version_2_with_negative
    assert task.metric == "squad" and task.null_score_diff_threshold == 0.0 and task.main_metric == "f1"
    assert get_task("squad_v2").name == "squad2"
    assert not get_task("squad").version_2_with_negative and not get_task("korquad").version_2_with_negative
    assert get_task("squad2", metric="korquad", null_score_diff_threshold=-1.5).null_score_diff_threshold == -1.5
    assert (task.max_seq_length, task.doc_stride, task.max_query_length, task.max_answer_length,
            task.n_best_size) == (384, 128, 64, 30, 20)


# ------------------------------------------------------------------- training targets

def test_unanswerable_and_answer_less_windows_target_cls(tmp_path, tokenizer):
    path, _ = official_file(tmp_path)
    task = get_task("squad2", doc_stride=16)
    examples = task.read(path)
    features = task.encode(examples, tokenizer, max_seq_length=48, training=True)
    by_id = collections.defaultdict(list)
    for f in features:
        by_id[examples[f["example_index"]].id].append(f)
    assert set(by_id) == {"q1", "q2", "q3", "q4", "z1", "z2"}           # nothing left out of training
    assert len(by_id["z1"]) > 5 and len(by_id["z2"]) == len(by_id["z1"])   # the long context: many windows
    for qid in ("q3", "q4", "z2"):                                       # unanswerable: [CLS] everywhere
        assert all((f["start_positions"], f["end_positions"]) == (0, 0) for f in by_id[qid])
    holding = [f for f in by_id["z1"] if f["start_positions"] > 0]
    assert 1 <= len(holding) < len(by_id["z1"])                          # the rest target [CLS]
    for f in holding:
        s, e = f["start_positions"], f["end_positions"]
        assert tokenizer.decode(f["input_ids"][s:e + 1]) == "seventeen"
    assert all((f["start_positions"], f["end_positions"]) == (0, 0) for f in by_id["z1"] if f not in holding)
    assert features.report.notes["unanswerable question (target [CLS] in every window)"] == 3
    batch = task.collate(features[:8])
    assert batch["start_positions"].shape == (8,)


def test_squad1_task_leaves_unanswerable_questions_out_of_training(tmp_path, tokenizer):
    path, _ = official_file(tmp_path)
    examples = read_squad(path, version_2_with_negative=True)
    task = get_task("squad", doc_stride=16)
    train = task.encode(examples, tokenizer, max_seq_length=48, training=True)
    assert {examples[f["example_index"]].id for f in train} == {"q1", "q2", "z1"}
    assert train.report.skipped["no usable answer in the context (left out of training)"] == 3


def test_max_length_is_the_same_setting_as_max_seq_length(tmp_path, tokenizer):
    path, _ = official_file(tmp_path)
    task = get_task("squad2", doc_stride=16)
    examples = task.read(path)
    a = task.encode(examples, tokenizer, max_seq_length=48)
    with pytest.warns(DeprecationWarning, match="max_length= is deprecated, use max_seq_length="):
        b = task.encode(examples, tokenizer, max_length=48)              # the old name, as in every task's encode
    c = get_task("squad2", doc_stride=16, max_seq_length=48).encode(examples, tokenizer)
    assert [f["input_ids"] for f in a] == [f["input_ids"] for f in b] == [f["input_ids"] for f in c]
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="disagree"):
        task.encode(examples, tokenizer, max_seq_length=48, max_length=64)


# ------------------------------------------------------------------- prediction and the null rule

def handmade_logits(features, examples) -> list[tuple]:
    """Logits whose null scores and best spans are known (float32-exact values).

    z1 (answerable, long): the windows' [CLS] start/end sum to 9, 5, then 8 (lowest: 5,
      in the second window); the window holding "seventeen" scores it 4 + 3 = 7 → diff −2.
    z2 (unanswerable, long): [CLS] sums 6, 4, 6, ... (lowest 4); one token scores 1 + 1 = 2
      in the first window → diff +2.
    """
    cls_sums = {"z1": [9.0, 5.0, 8.0], "z2": [6.0, 4.0, 6.0]}
    seen = collections.Counter()
    logits = []
    for f in features:
        qid = examples[f["example_index"]].id
        start, end = np.zeros(len(f["input_ids"]), np.float32), np.zeros(len(f["input_ids"]), np.float32)
        k = seen[qid]
        seen[qid] += 1
        total = cls_sums[qid][min(k, 2)] if qid in cls_sums else 20.0
        start[0], end[0] = total / 2, total / 2
        if qid == "z1" and f["start_positions"] > 0:
            start[f["start_positions"]], end[f["end_positions"]] = 4.0, 3.0
        if qid == "z2" and k == 0:
            start[f["context_start"] + 2], end[f["context_start"] + 2] = 1.0, 1.0
        logits.append((start, end))
    return logits


@pytest.fixture()
def long_case(tmp_path, tokenizer):
    path, _ = official_file(tmp_path)
    task = get_task("squad2", doc_stride=16)
    examples = [ex for ex in task.read(path) if ex.id in ("z1", "z2")]
    features = task.encode(examples, tokenizer, max_seq_length=48)
    return task, examples, features, handmade_logits(features, examples)


def test_null_score_is_the_lowest_cls_score_over_windows(long_case):
    task, examples, features, logits = long_case
    z1, z2 = task.predict(logits, features, examples)
    assert (z1["null_score"], z1["span_score"], z1["null_score_diff"]) == (5.0, 7.0, -2.0)
    assert z1["answer"] == z1["span_answer"] == "seventeen" and ZEBRA[z1["start"]:z1["end"]] == "seventeen"
    assert (z2["null_score"], z2["span_score"], z2["null_score_diff"]) == (4.0, 2.0, 2.0)
    assert z2["answer"] == "" and (z2["start"], z2["end"], z2["score"]) == (None, None, 4.0)
    assert z2["span_answer"] and ZEBRA[z2["span_start"]:z2["span_end"]] == z2["span_answer"]


@pytest.mark.parametrize("threshold,z1_answered,z2_answered", [
    (0.0, True, False), (1.9, True, False), (2.0, True, True),        # 2.0 − 2.0 is not > 2.0: the span stays
    (-1.9, True, False), (-2.0, True, False), (-2.1, False, False), (5.0, True, True)])
def test_predict_empty_when_null_beats_the_span_by_more_than_the_threshold(long_case, threshold, z1_answered,
                                                                           z2_answered):
    task, examples, features, logits = long_case
    task.null_score_diff_threshold = threshold
    z1, z2 = task.predict(logits, features, examples)
    assert (z1["answer"] != "", z2["answer"] != "") == (z1_answered, z2_answered)
    again = task.apply_threshold(get_task("squad2").predict(logits, features, examples), threshold)
    assert [p["answer"] for p in again] == [z1["answer"], z2["answer"]]


def test_squad1_prediction_is_unchanged_by_the_null_rule(long_case):
    _, examples, features, logits = long_case
    z1, z2 = get_task("squad", doc_stride=16).predict(logits, features, examples)
    assert set(z1) == {"id", "answer", "score", "start", "end"} and z1["answer"] == "seventeen"
    assert z2["answer"] and z2["score"] == 2.0


# ------------------------------------------------------------------- metrics (hand-computed)

# q1 answerable "France"         span "France",                  diff −1.0 → EM 1, F1 1
# q2 answerable "The Normans"/"Normans"  span "Normans were the people", diff −0.7
#    → normalized "normans were people" vs "normans": EM 0, F1 = 2·(1/3)·1/(1/3+1) = 0.5
# q3 unanswerable                span "The Normans",             diff +2.0
# q4 unanswerable                span "France",                  diff −0.5
SPANS = ["France", "Normans were the people", "The Normans", "France"]
DIFFS = [-1.0, -0.7, 2.0, -0.5]
REFS = [["France"], ["The Normans", "Normans"], [], []]


def test_official_v2_scores_by_hand():
    # threshold 0: q1 answered (1/1), q2 answered (0/0.5), q3 "" (right: 1/1), q4 answered (wrong: 0/0)
    got = M.squad_v2_scores(SPANS, REFS, DIFFS, na_prob_thresh=0.0)
    want = {"exact": 50.0, "f1": 62.5, "total": 4, "HasAns_exact": 50.0, "HasAns_f1": 75.0, "HasAns_total": 2,
            "NoAns_exact": 50.0, "NoAns_f1": 50.0, "NoAns_total": 2,
            # sweep by diff: start 2 (both unanswerable right); q1 +1 → 3 (best, −1.0); q2: EM +0 → 3,
            # F1 +0.5 → 3.5 (best, −0.7); q4 −1; q3 −1
            "best_exact": 75.0, "best_exact_thresh": -1.0, "best_f1": 87.5, "best_f1_thresh": -0.7}
    assert list(got) == list(want)                     # the official script's keys, in its order
    assert got == pytest.approx(want)
    # the script's default --na-prob-thresh 1.0: only q3 (2.0 > 1.0) becomes ""
    assert M.squad_v2_scores(SPANS, REFS, DIFFS)["exact"] == 50.0
    # −0.8: q2, q3, q4 become "" → q1 1 + q2 0 + q3 1 + q4 1
    assert M.squad_v2_scores(SPANS, REFS, DIFFS, na_prob_thresh=-0.8)["f1"] == pytest.approx(75.0)
    plain = M.squad_v2_scores(["France", "", "", "x"], REFS)          # no na_probs: predictions as given
    assert plain == pytest.approx({"exact": 50.0, "f1": 50.0, "total": 4, "HasAns_exact": 50.0, "HasAns_f1": 50.0,
                                   "HasAns_total": 2, "NoAns_exact": 50.0, "NoAns_f1": 50.0, "NoAns_total": 2})
    assert "NoAns_total" not in M.squad_v2_scores(["France"], [["France"]])


def test_official_v2_edge_rules():
    # a reference that normalizes to nothing counts as "" (but the question still "has an answer")
    assert M.squad_v2_raw_scores([""], [["The"]]) == ([1.0], [1.0])
    assert M.squad_v2_scores([""], [["The"]], [5.0], na_prob_thresh=0.0)["exact"] == 0.0
    # empty vs non-empty F1 is 0, empty vs empty is 1 (v1.1 would say 0 for both)
    assert M.squad_v2_raw_scores(["", "Paris", ""], [[], [], ["Paris"]]) == ([1.0, 0.0, 0.0], [1.0, 0.0, 0.0])
    # KorQuAD normalisation and character F1 with the v2.0 rules: "세종" vs "세종대왕" → P 1, R 1/2, F1 2/3
    got = M.squad_v2_scores(["", "세종"], [[], ["세종대왕"]], metric="korquad")
    assert got["f1"] == pytest.approx(100 * (1 + 2 / 3) / 2) and got["exact"] == 50.0


def test_task_metrics_threshold_and_tuning(tmp_path):
    path, _ = official_file(tmp_path)
    task = get_task("squad2")
    examples = [ex for ex in task.read(path) if ex.id.startswith("q")]
    raw = [{"id": ex.id, "answer": "", "score": 0.0, "start": None, "end": None, "null_score": 0.0,
            "null_score_diff": d, "span_answer": s, "span_score": 0.0, "span_start": 0, "span_end": len(s)}
           for ex, s, d in zip(examples, SPANS, DIFFS)]
    predictions = task.apply_threshold(raw)
    assert [p["answer"] for p in predictions] == ["France", "Normans were the people", "", "France"]
    scores = task.metrics(predictions, examples)
    assert scores == pytest.approx({**M.squad_v2_scores(SPANS, REFS, DIFFS, 0.0), "num_examples": 4})
    assert task.tune_threshold(predictions, examples) == -0.7 and task.null_score_diff_threshold == -0.7
    tuned = task.apply_threshold(predictions)
    assert [p["answer"] for p in tuned] == ["France", "Normans were the people", "", ""]
    assert task.metrics(tuned, examples)["f1"] == pytest.approx(scores["best_f1"])     # 87.5
    assert task.tune_threshold(predictions, examples, by="exact") == -1.0
    # the answers are scored as they are, whatever the task's threshold now is
    every_span = task.metrics(task.apply_threshold(predictions, float("inf")), examples)
    assert (every_span["HasAns_f1"], every_span["NoAns_f1"], every_span["f1"]) == (75.0, 0.0, 37.5)
    assert every_span["best_f1"] == scores["best_f1"]
    with pytest.raises(ValueError, match="unanswerable"):
        get_task("squad").metrics([{"answer": "x"}], examples[2:3])
    with pytest.raises(ValueError, match="version_2_with_negative"):
        get_task("squad").tune_threshold(predictions, examples)


# ------------------------------------------------------------------- cross-check: the official flow

def _official_normalize(s):
    s = "".join(ch for ch in s.lower() if ch not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", s).split())


def _official_f1(gold, pred):
    g, p = (_official_normalize(gold).split() if gold else []), (_official_normalize(pred).split() if pred else [])
    same = sum((collections.Counter(g) & collections.Counter(p)).values())
    if not g or not p:
        return int(g == p)
    return 0 if same == 0 else 2 * (same / len(p)) * (same / len(g)) / (same / len(p) + same / len(g))


def official_evaluate(dataset, preds, na_probs, thresh):
    """evaluate-v2.0.py's main flow over dicts keyed by question id (transcribed, not imported)."""
    has_ans = {qa["id"]: bool(qa["answers"]) for a in dataset for p in a["paragraphs"] for qa in p["qas"]}
    exact, f1 = {}, {}
    for a in dataset:
        for p in a["paragraphs"]:
            for qa in p["qas"]:
                golds = [x["text"] for x in qa["answers"] if _official_normalize(x["text"])] or [""]
                exact[qa["id"]] = max(int(_official_normalize(g) == _official_normalize(preds[qa["id"]]))
                                      for g in golds)
                f1[qa["id"]] = max(_official_f1(g, preds[qa["id"]]) for g in golds)
    cut = {q: na_probs[q] > thresh for q in exact}
    ex_t = {q: float(not has_ans[q]) if cut[q] else s for q, s in exact.items()}
    f1_t = {q: float(not has_ans[q]) if cut[q] else s for q, s in f1.items()}
    out = {"exact": 100 * sum(ex_t.values()) / len(ex_t), "f1": 100 * sum(f1_t.values()) / len(f1_t),
           "total": len(ex_t)}
    for name, keep in (("HasAns", True), ("NoAns", False)):
        ids = [q for q, h in has_ans.items() if h == keep]
        if ids:
            out.update({f"{name}_exact": 100 * sum(ex_t[q] for q in ids) / len(ids),
                        f"{name}_f1": 100 * sum(f1_t[q] for q in ids) / len(ids), f"{name}_total": len(ids)})
    for name, scores in (("exact", exact), ("f1", f1)):
        cur = best = sum(not h for h in has_ans.values())
        best_t = 0.0
        for q in sorted(na_probs, key=lambda k: na_probs[k]):
            cur += scores[q] if has_ans[q] else (-1 if preds[q] else 0)
            if cur > best:
                best, best_t = cur, na_probs[q]
        out[f"best_{name}"], out[f"best_{name}_thresh"] = 100.0 * best / len(scores), best_t
    return out


def test_v2_scores_equal_the_official_flow_on_korquad_made_unanswerable(tmp_path):
    bench = import_bench("bench_squad2")
    files = bench.build_files(data_file("korquad1", "KorQuAD_v1.0_dev_half_a.json"), tmp_path, 0.2, 1 / 3, 7)
    dataset = json.loads(files["eval"].read_text(encoding="utf-8"))["data"]
    examples = read_squad(files["eval"], version_2_with_negative=True)
    rng = np.random.default_rng(3)
    preds, na_probs = {}, {}
    for ex in examples:
        pick = rng.integers(4)
        words = ex.context.split()
        start = int(rng.integers(len(words)))
        preds[ex.id] = ("" if pick == 0 else ex.answers[0]["text"] if pick == 1 and ex.answers
                        else " ".join(words[start:start + int(rng.integers(1, 4))]))
        na_probs[ex.id] = float(np.round(rng.normal(), 1))              # many ties, as real na_probs can have
    for thresh in (-0.5, 0.0, 1.0):
        want = official_evaluate(dataset, preds, na_probs, thresh)
        got = M.squad_v2_scores([preds[ex.id] for ex in examples], [[a["text"] for a in ex.answers] for ex in examples],
                                [na_probs[ex.id] for ex in examples], thresh)
        assert list(got) == list(want) and got == pytest.approx(want)
        assert 0 < got["HasAns_total"] and 0 < got["NoAns_total"]


# ------------------------------------------------------------------- the data of the benchmark

def test_made_unanswerable_korquad_is_seeded_and_stays_on_its_side(tmp_path):
    bench = import_bench("bench_squad2")
    source = data_file("korquad1", "KorQuAD_v1.0_dev_half_a.json")
    files = bench.build_files(source, tmp_path, 0.2, 1 / 3, 42)
    train = read_squad(files["train"], version_2_with_negative=True)
    valid = read_squad(files["eval"], version_2_with_negative=True)
    n = len(read_squad(source))
    assert len(train) + len(valid) == n
    for part in (train, valid):
        share = sum(ex.is_impossible for ex in part) / len(part)
        assert share == pytest.approx(1 / 3, abs=0.01)
    assert not {ex.context for ex in train} & {ex.context for ex in valid}      # no paragraph on both sides
    original = {ex.id: ex for ex in read_squad(source)}
    for ex in valid:
        if ex.is_impossible:
            source_ex = original[ex.id.removesuffix("-neg")]
            assert source_ex.question == ex.question and source_ex.title != ex.title   # another article
    (tmp_path / "again").mkdir()
    again = bench.build_files(source, tmp_path / "again", 0.2, 1 / 3, 42)
    assert again["eval"].read_text(encoding="utf-8") == files["eval"].read_text(encoding="utf-8")


# ------------------------------------------------------------------- the deprecated name of n_best_size

def test_n_best_is_a_deprecated_alias_of_n_best_size():
    with pytest.warns(DeprecationWarning, match="n_best_size"):
        task = get_task("squad", n_best=7)
    assert task.n_best_size == 7
    with pytest.warns(DeprecationWarning, match="n_best_size"):
        assert task.n_best == 7
    with pytest.raises(TypeError, match="unexpected keyword argument 'n_bests'"):
        QATask(n_bests=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert QATask(n_best_size=5).n_best_size == 5
    with pytest.raises(ValueError, match="doc_stride must be a positive"):
        QATask(doc_stride=0)


# ------------------------------------------------------------------- `bertkit finetune --task squad2`

def test_finetune_eval_predict_squad2_through_the_cli(tmp_path, capsys):
    """The existing finetune path with the squad2 task: results carry the v2.0 numbers; eval agrees."""
    import torch

    from bertkit import BertConfig, BertModel
    from bertkit.cli.main import main
    from bertkit.text.vocab import train_vocab
    bench = import_bench("bench_squad2")
    source = json.loads(data_file("korquad1", "KorQuAD_v1.0_dev_half_a.json").read_text(encoding="utf-8"))
    small = tmp_path / "small.json"
    small.write_text(json.dumps({"data": source["data"][:5]}, ensure_ascii=False), encoding="utf-8")
    files = bench.build_files(small, tmp_path, 0.4, 1 / 3, 0)
    texts = [p["context"] for a in source["data"][:5] for p in a["paragraphs"]]
    (tmp_path / "corpus.txt").write_text("\n".join(texts), encoding="utf-8")
    tokenizer = train_vocab([tmp_path / "corpus.txt"], vocab_size=1500, do_lower_case=False)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128)).save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        code = main(["finetune", "--task", "squad2", "--model", str(tmp_path / "tiny"), "--train", str(files["train"]),
                     "--eval", str(files["eval"]), "--out", str(tmp_path / "run"), "--epochs", "1",
                     "--batch-size", "32", "--lr", "1e-3", "--max-length", "96", "--max-train-examples", "120"])
        assert code == 0, capsys.readouterr().err
        results = json.loads((tmp_path / "run" / "results.json").read_text())
        best = results["best"]
        for key in ("exact", "f1", "HasAns_f1", "NoAns_f1", "best_f1", "best_f1_thresh"):
            assert key in best
        assert best["HasAns_total"] + best["NoAns_total"] == results["eval_examples"] and best["NoAns_total"] > 0
        capsys.readouterr()
        assert main(["eval", "--model", str(tmp_path / "run" / "best"), "--data", str(files["eval"]), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    saved = json.loads((tmp_path / "run" / "best" / "task.json").read_text())["options"]
    assert saved["null_score_diff_threshold"] == best["best_f1_thresh"]     # the tuned threshold goes with the model
    assert scores["f1"] == pytest.approx(best["best_f1"]) and scores["best_f1"] == pytest.approx(best["best_f1"])


def test_prediction_records_are_strict_json(long_case):
    """No valid span anywhere (n_best_size=1 and [CLS] the best start and end) → diff +inf, written as null."""
    task, examples, features, logits = long_case
    task.n_best_size = 1
    cls_only = []
    for s, e in logits:
        s, e = np.zeros_like(s), np.zeros_like(e)
        s[0] = e[0] = 1.0
        cls_only.append((s, e))
    predictions = task.predict(cls_only, features, examples)
    assert all(p["answer"] == "" and p["null_score_diff"] == float("inf") for p in predictions)
    assert predictions.report.notes["no valid answer span (empty answer)"] == 2
    records = [task.format_prediction(p, ex) for p, ex in zip(predictions, examples)]
    assert json.loads(json.dumps(records, allow_nan=False))[0]["null_score_diff"] is None
