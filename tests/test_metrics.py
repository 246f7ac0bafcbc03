"""Metrics against their reference implementations, on real labels.

References: scikit-learn (accuracy, F1, Matthews), scipy (Pearson, Spearman), seqeval
(entity-level NER scores), and the official SQuAD v1.1 / KorQuAD 1.0 evaluation
scripts, whose scoring functions are written out below from the scripts' text.
"""
from __future__ import annotations

import random
import re
import string
import warnings
from collections import Counter

import pytest

from bertkit.tasks import metrics as M
from bertkit.tasks.readers import read_conll, read_kmou, read_table
from bertkit.tasks.squad import read_squad
from conftest import data_file

sklearn_metrics = pytest.importorskip("sklearn.metrics")
scipy_stats = pytest.importorskip("scipy.stats")
seqeval_metrics = pytest.importorskip("seqeval.metrics")


# ----------------------------------------------------------------- classification

def _flip(labels, rate, choices, seed):
    rng = random.Random(seed)
    return [rng.choice(choices) if rng.random() < rate else y for y in labels]


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5, 1.0])
def test_accuracy_f1_mcc_match_sklearn_on_sst2_labels(rate):
    gold = [ex.label for ex in read_table(data_file("glue", "SST-2", "train.tsv"), "sentence",
                                          label_column="label")][:20000]
    pred = _flip(gold, rate, ["0", "1"], seed=int(rate * 10))
    assert M.accuracy(pred, gold) == pytest.approx(sklearn_metrics.accuracy_score(gold, pred), abs=1e-12)
    assert M.binary_f1(pred, gold, positive="1") == pytest.approx(
        sklearn_metrics.f1_score(gold, pred, pos_label="1"), abs=1e-12)
    assert M.matthews_corrcoef(pred, gold) == pytest.approx(sklearn_metrics.matthews_corrcoef(gold, pred), abs=1e-12)


def test_mcc_on_cola_and_multiclass_and_degenerate_cases():
    gold = [ex.label for ex in read_table(data_file("glue", "CoLA", "train.tsv"), 3, label_column=1, header=False)]
    for seed in range(3):
        pred = _flip(gold, 0.3, ["0", "1"], seed)
        assert M.matthews_corrcoef(pred, gold) == pytest.approx(sklearn_metrics.matthews_corrcoef(gold, pred), abs=1e-12)
    rng = random.Random(0)
    gold3 = [rng.choice("abc") for _ in range(500)]
    pred3 = _flip(gold3, 0.4, list("abcd"), 1)          # includes a class never true
    assert M.matthews_corrcoef(pred3, gold3) == pytest.approx(sklearn_metrics.matthews_corrcoef(gold3, pred3), abs=1e-12)
    constant = ["1"] * len(gold)                        # undefined → 0, as sklearn
    assert M.matthews_corrcoef(constant, gold) == sklearn_metrics.matthews_corrcoef(gold, constant) == 0.0
    assert M.binary_f1(["0"] * 10, ["0"] * 10, positive="1") == 0.0


def test_length_mismatch_and_empty_are_errors():
    with pytest.raises(ValueError, match="predictions"):
        M.accuracy([1, 0], [1])
    with pytest.raises(ValueError, match="no examples"):
        M.accuracy([], [])


@pytest.mark.parametrize("noise", [0.0, 0.5, 2.0])
def test_pearson_spearman_match_scipy_on_stsb_scores(noise):
    gold = [ex.label for ex in read_table(data_file("glue", "STS-B", "train.tsv"), "sentence1",
                                          label_column="score", label_type=float)]
    rng = random.Random(7)
    pred = [g + rng.gauss(0, noise) for g in gold]
    pred_rounded = [round(p) for p in pred]             # many ties, for the rank averaging
    assert M.pearson(pred, gold) == pytest.approx(scipy_stats.pearsonr(pred, gold)[0], abs=1e-10)
    assert M.spearman(pred, gold) == pytest.approx(scipy_stats.spearmanr(pred, gold)[0], abs=1e-10)
    assert M.spearman(pred_rounded, gold) == pytest.approx(scipy_stats.spearmanr(pred_rounded, gold)[0], abs=1e-10)


def test_ranks_average_ties():
    assert M.ranks([10, 20, 20, 5]) == [2.0, 3.5, 3.5, 1.0]


# ----------------------------------------------------------------- entity-level NER

def _perturb_tags(sentences, seed, types):
    """Realistic model mistakes: wrong type, B↔I, dropped/extra entities, I- after O."""
    rng = random.Random(seed)
    out = []
    for tags in sentences:
        new = list(tags)
        for i, tag in enumerate(new):
            r = rng.random()
            if r < 0.04:
                new[i] = "O"
            elif r < 0.08:
                new[i] = "I-" + rng.choice(types)
            elif r < 0.11:
                new[i] = "B-" + rng.choice(types)
            elif r < 0.14 and tag != "O":
                new[i] = ("I-" if tag.startswith("B-") else "B-") + tag[2:]
            elif r < 0.16 and tag != "O":
                new[i] = tag[:2] + rng.choice(types)
        out.append(new)
    return out


def _seqeval_scores(gold, pred):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return (seqeval_metrics.precision_score(gold, pred), seqeval_metrics.recall_score(gold, pred),
                seqeval_metrics.f1_score(gold, pred),
                seqeval_metrics.classification_report(gold, pred, output_dict=True))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_entity_scores_match_seqeval_on_conll(seed):
    gold = [ex.tags for ex in read_conll(data_file("conll2003", "train.txt"))][:4000]
    pred = _perturb_tags(gold, seed, ["PER", "ORG", "LOC", "MISC"])
    ours = M.entity_scores(pred, gold)
    p, r, f, report = _seqeval_scores(gold, pred)
    assert ours["precision"] == pytest.approx(p, abs=1e-12)
    assert ours["recall"] == pytest.approx(r, abs=1e-12)
    assert ours["f1"] == pytest.approx(f, abs=1e-12)
    for type_ in ("PER", "ORG", "LOC", "MISC"):
        assert ours[f"f1_{type_}"] == pytest.approx(report[type_]["f1-score"], abs=1e-12)
        assert report[type_]["support"] == len([e for e in M.get_entities(gold) if e[0] == type_])
    assert 0.3 < ours["f1"] < 0.95          # the perturbation really changes the score


def test_entity_scores_match_seqeval_on_korean_ner():
    gold = [ex.tags for ex in read_kmou(data_file("ko_ner", "ner.train"))]
    pred = _perturb_tags(gold, 3, ["PS", "LC", "OG", "DT", "TI"])
    ours = M.entity_scores(pred, gold)
    p, r, f, _ = _seqeval_scores(gold, pred)
    assert (ours["precision"], ours["recall"], ours["f1"]) == pytest.approx((p, r, f), abs=1e-12)


def test_get_entities_matches_seqeval_on_odd_sequences():
    from seqeval.metrics.sequence_labeling import get_entities as seqeval_get_entities
    rng = random.Random(11)
    tags = ["O", "B-A", "I-A", "B-B", "I-B", "E-A", "S-B", "I-", "B", "I"]
    for _ in range(300):
        seq = [rng.choice(tags) for _ in range(rng.randint(1, 12))]
        assert M.get_entities(seq) == seqeval_get_entities(seq), seq
    assert M.get_entities(["I-PER", "I-PER", "O", "B-LOC", "I-ORG"]) == [("PER", 0, 1), ("LOC", 3, 3), ("ORG", 4, 4)]


def test_perfect_and_empty_tagging():
    gold = [["B-PER", "I-PER", "O"], ["O"]]
    assert M.entity_scores(gold, gold)["f1"] == 1.0
    assert M.entity_scores([["O", "O", "O"], ["O"]], gold)["f1"] == 0.0
    with pytest.raises(ValueError, match="sentence 0"):
        M.entity_scores([["O"]], [["O", "O"]])


# ------------------------------------------- official QA scripts, written out from their text
# SQuAD v1.1 evaluate-v1.1.py (Rajpurkar et al.)

def squad_normalize_answer(s):
    def remove_articles(text):
        return re.sub(r'\b(a|an|the)\b', ' ', text)

    def white_space_fix(text):
        return ' '.join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return ''.join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def squad_f1_score(prediction, ground_truth):
    prediction_tokens = squad_normalize_answer(prediction).split()
    ground_truth_tokens = squad_normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def squad_exact_match_score(prediction, ground_truth):
    return squad_normalize_answer(prediction) == squad_normalize_answer(ground_truth)


# KorQuAD 1.0 evaluate-v1.0.py (LG CNS): its own normalize_answer and a character-level F1

def korquad_normalize_answer(s):
    def remove_(text):
        text = re.sub("'", " ", text)
        text = re.sub('"', " ", text)
        text = re.sub('《', " ", text)
        text = re.sub('》', " ", text)
        text = re.sub('<', " ", text)
        text = re.sub('>', " ", text)
        text = re.sub('〈', " ", text)
        text = re.sub('〉', " ", text)
        text = re.sub(r"\(", " ", text)
        text = re.sub(r"\)", " ", text)
        text = re.sub("‘", " ", text)
        text = re.sub("’", " ", text)
        return text

    def white_space_fix(text):
        return ' '.join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return ''.join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_punc(lower(remove_(s))))


def korquad_f1_score(prediction, ground_truth):
    prediction_tokens = korquad_normalize_answer(prediction).split()
    ground_truth_tokens = korquad_normalize_answer(ground_truth).split()
    prediction_Char = []
    for tok in prediction_tokens:
        prediction_Char.extend([a for a in tok])
    ground_truth_Char = []
    for tok in ground_truth_tokens:
        ground_truth_Char.extend([a for a in tok])
    common = Counter(prediction_Char) & Counter(ground_truth_Char)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_Char)
    recall = 1.0 * num_same / len(ground_truth_Char)
    return (2 * precision * recall) / (precision + recall)


def korquad_exact_match_score(prediction, ground_truth):
    return korquad_normalize_answer(prediction) == korquad_normalize_answer(ground_truth)


def official_evaluate(predictions, references, em_fn, f1_fn):
    """The scripts' evaluate(): max over ground truths, averaged, times 100."""
    em = f1 = 0
    for prediction, truths in zip(predictions, references):
        em += max(em_fn(prediction, t) for t in truths)
        f1 += max(f1_fn(prediction, t) for t in truths)
    return {"exact_match": 100.0 * em / len(references), "f1": 100.0 * f1 / len(references)}


def _span_predictions(examples, seed):
    """Plausible predicted answers: the gold span moved/grown/shrunk by a few characters."""
    rng = random.Random(seed)
    out = []
    for ex in examples:
        a = ex.answers[0]
        start = max(0, a["answer_start"] + rng.randint(-6, 6))
        end = max(start, a["answer_start"] + len(a["text"]) + rng.randint(-6, 6))
        out.append(ex.context[start:end] if rng.random() < 0.8 else a["text"])
    return out


def test_korquad_scores_match_official_script_on_real_questions():
    examples = read_squad(data_file("korquad1", "KorQuAD_v1.0_dev_half_a.json"))
    preds = _span_predictions(examples, seed=0)
    refs = [[a["text"] for a in ex.answers] for ex in examples]
    ours = M.korquad_scores(preds, refs)
    official = official_evaluate(preds, refs, korquad_exact_match_score, korquad_f1_score)
    assert ours == pytest.approx(official, abs=1e-9)
    assert 10 < ours["exact_match"] < 90 and ours["f1"] > ours["exact_match"]
    for p, r in zip(preds, refs):                      # and answer by answer
        assert M.korquad_f1(p, r[0]) == pytest.approx(korquad_f1_score(p, r[0]), abs=1e-12)
        assert M.normalize_korquad(p) == korquad_normalize_answer(p)


def test_squad_scores_match_official_script():
    # English text with articles and punctuation: spans of real SST-2 / MRPC sentences
    rows = read_table(data_file("glue", "MRPC", "train.tsv"), "#1 String", "#2 String", "Quality")
    rng = random.Random(5)
    preds, refs = [], []
    for ex in rows[:2000]:
        words = ex.text.split()
        i = rng.randrange(len(words))
        j = min(len(words), i + rng.randint(1, 6))
        gold = " ".join(words[i:j])
        shift = rng.randint(-2, 2)
        pred = " ".join(words[max(0, i + shift):max(0, j + rng.randint(-2, 2))])
        preds.append(pred.upper() if rng.random() < 0.1 else pred)
        refs.append([gold, ex.text_pair.split(" ")[0]])
    preds += ["The Cat!", "an apple", "", "a"]
    refs += [["cat"], ["the apple."], ["x"], ["the"]]
    ours = M.squad_scores(preds, refs)
    official = official_evaluate(preds, refs, squad_exact_match_score, squad_f1_score)
    assert ours == pytest.approx(official, abs=1e-9)
    assert 5 < ours["exact_match"] < 95
    for p, r in zip(preds, refs):
        assert M.normalize_squad(p) == squad_normalize_answer(p)


def test_korquad_and_squad_differ_where_they_should():
    # character F1 gives partial credit inside a Korean word; word F1 does not
    assert M.korquad_f1("1989년", "1989년 2월") > 0.5
    assert M.squad_f1("1989년", "1989년 2월") == pytest.approx(2 / 3)
    assert M.korquad_f1("서울특별시", "서울") == pytest.approx(2 * (2 / 5) * 1 / (2 / 5 + 1))
    assert M.squad_f1("서울특별시", "서울") == 0.0
    # 《》 are removed by KorQuAD only; articles only by SQuAD
    assert M.korquad_scores(["《토지》"], [["토지"]])["exact_match"] == 100.0
    assert M.squad_scores(["《토지》"], [["토지"]])["exact_match"] == 0.0
    assert M.squad_scores(["the Beatles"], [["Beatles"]])["exact_match"] == 100.0
    assert M.korquad_scores(["the Beatles"], [["Beatles"]])["exact_match"] == 0.0
