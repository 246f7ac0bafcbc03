"""token-classification: the reference's entities and groups on the same weights, spans into the text."""
from __future__ import annotations

import warnings

import pytest

from pipeline_fixtures import tiny_model_dir

from bertkit.common.errors import InputError

transformers = pytest.importorskip("transformers")

LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC", 5: "B-ORG", 6: "I-ORG"}
TEXTS = ["Jeremy lives in Paris",
         "Jeremy Nakamura met Angela Merkel in Berlin, near the Brandenburger Tor.",
         "Straße café naïve 🙂 x ok",                      # accents, an [UNK] piece
         "uncharacteristically longwinded hyperparameterization"]   # many ## pieces
STRATEGIES = ["none", "simple", "first", "max", "average"]


def _norm(rows):
    out = []
    for r in rows:
        out.append({k: (round(float(v), 4) if k == "score" else (int(v) if k in ("start", "end", "index") else v))
                    for k, v in r.items()})
    return out


@pytest.fixture(scope="module")
def pipes(tmp_path_factory, minilm_path):
    d = tiny_model_dir(tmp_path_factory.mktemp("ner"), "BertForTokenClassification", minilm_path,
                       scale=30, id2label=LABELS)
    from bertkit import pipeline
    model = transformers.BertForTokenClassification.from_pretrained(d)
    tok = transformers.BertTokenizerFast.from_pretrained(d)
    ref = transformers.pipeline("token-classification", model=model, tokenizer=tok, device="cpu")
    return pipeline("ner", model=d, device="cpu"), ref


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_same_entities_as_reference(pipes, strategy):
    ours, ref = pipes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for ignore in (None, []):
            kwargs = {"aggregation_strategy": strategy}
            if ignore is not None:
                kwargs["ignore_labels"] = ignore
            for text in TEXTS:
                assert _norm(ours(text, **kwargs)) == _norm(ref(text, **kwargs)), (strategy, text)


def test_batch_equals_one_by_one(pipes):
    ours, _ = pipes
    batch = ours(TEXTS, aggregation_strategy="simple", ignore_labels=[])
    assert [_norm(b) for b in batch] == [_norm(ours(t, aggregation_strategy="simple", ignore_labels=[]))
                                         for t in TEXTS]


def test_predictions_are_not_trivial(pipes):
    ours, _ = pipes
    labels = {e["entity"] for t in TEXTS for e in ours(t, ignore_labels=[])}
    assert len(labels) >= 3                       # the test model predicts several labels


@pytest.mark.parametrize("strategy", ["simple", "first", "max", "average"])
def test_group_spans_point_into_the_text(pipes, strategy):
    ours, _ = pipes
    for text in TEXTS:
        groups = ours(text, aggregation_strategy=strategy, ignore_labels=[])
        assert groups and all(set(g) == {"entity_group", "score", "word", "start", "end"} for g in groups)
        for g in groups:
            piece = text[g["start"]:g["end"]]
            assert piece.strip() == piece and piece          # a real span of the text
            assert "-" not in g["entity_group"]
        starts = [g["start"] for g in groups]
        assert starts == sorted(starts)
        if strategy != "simple":                             # word strategies never split a word
            for g in groups:
                s = g["start"]
                assert s == 0 or not (text[s].isalnum() and text[s - 1].isalnum())


def test_word_strategies_cover_all_words(pipes):
    ours, _ = pipes
    text = TEXTS[3]
    words = ours(text, aggregation_strategy="first", ignore_labels=[])
    covered = "".join(text[g["start"]:g["end"]] for g in words)
    assert covered == text.replace(" ", "")


def test_bad_strategy_is_refused(pipes):
    ours, _ = pipes
    with pytest.raises(InputError, match="aggregation_strategy"):
        ours(TEXTS[0], aggregation_strategy="longest")
    with pytest.raises(TypeError, match="strings"):
        ours([["pre", "split"]])
