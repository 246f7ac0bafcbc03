"""text-classification: same labels and scores as the reference pipeline on the same weights."""
from __future__ import annotations

import warnings

import pytest

from pipeline_fixtures import tiny_model_dir

from bertkit.common.errors import InputError

transformers = pytest.importorskip("transformers")

TEXTS = ["I love Paris", "Sam hated the movie", "It was a great day", "The song is not good"]


def _ref(model_dir):
    model = transformers.BertForSequenceClassification.from_pretrained(model_dir)
    tok = transformers.BertTokenizerFast.from_pretrained(model_dir)
    return transformers.pipeline("text-classification", model=model, tokenizer=tok, device="cpu")


def _close(a, b):
    """Structures equal, labels equal, scores within float tolerance."""
    if isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b):
            _close(x, y)
        return
    assert a["label"] == b["label"]
    assert a["score"] == pytest.approx(float(b["score"]), abs=1e-5)


@pytest.fixture(scope="module")
def three_labels(tmp_path_factory, minilm_path):
    d = tiny_model_dir(tmp_path_factory.mktemp("cls"), "BertForSequenceClassification", minilm_path,
                       scale=300, id2label={0: "neg", 1: "neu", 2: "pos"})
    from bertkit import pipeline
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pipeline("text-classification", model=d, device="cpu"), _ref(d)


def test_single_and_batch_match_reference(three_labels):
    ours, ref = three_labels
    _close(ours(TEXTS[0]), ref(TEXTS[0]))
    assert isinstance(ours(TEXTS[0]), list) and len(ours(TEXTS[0])) == 1     # the reference's shape
    _close(ours(TEXTS), ref(TEXTS))


def test_scores_differ_between_texts(three_labels):
    ours, _ = three_labels
    rows = ours(TEXTS, top_k=None)
    assert len({round(r[0]["score"], 6) for r in rows}) > 1      # the model really reads the text


@pytest.mark.parametrize("top_k", [None, 1, 2])
@pytest.mark.parametrize("function", [None, "sigmoid", "softmax", "none"])
def test_top_k_and_function_match_reference(three_labels, top_k, function):
    ours, ref = three_labels
    kwargs = {"top_k": top_k} if function is None else {"top_k": top_k, "function_to_apply": function}
    _close(ours(TEXTS, **kwargs), ref(TEXTS, **kwargs))
    _close(ours(TEXTS[1], **kwargs), ref(TEXTS[1], **kwargs))


def test_all_labels_sorted_and_softmax_sums_to_one(three_labels):
    ours, _ = three_labels
    rows = ours(TEXTS[0], top_k=None)
    assert [r["label"] for r in rows] != [] and len(rows) == 3
    assert rows == sorted(rows, key=lambda r: -r["score"])
    assert sum(r["score"] for r in rows) == pytest.approx(1.0, abs=1e-6)


def test_pairs_every_form(three_labels):
    ours, ref = three_labels
    pair = {"text": "He is playing", "text_pair": "He is sleeping"}
    _close(ours(pair), ref(pair))
    assert ours(("He is playing", "He is sleeping")) == ours(pair)
    batch = ours(["He is playing", "A soccer game"], text_pair=["He is sleeping", "Some men play"])
    _close(batch, [ref({"text": "He is playing", "text_pair": "He is sleeping"}),
                   ref({"text": "A soccer game", "text_pair": "Some men play"})])
    assert ours("He is playing", text_pair="He is sleeping") == [ours(pair)]
    assert ours(pair)["score"] != ours("He is playing")[0]["score"]      # the second segment matters


def test_regression_returns_the_raw_number(tmp_path, minilm_path):
    d = tiny_model_dir(tmp_path, "BertForSequenceClassification", minilm_path, scale=300,
                       num_labels=1, problem_type="regression")
    from bertkit import pipeline
    ours = pipeline("text-classification", model=d, device="cpu")
    _close(ours(TEXTS), _ref(d)(TEXTS))
    logits = ours.model(**ours.model_inputs(ours.encode(TEXTS[:1]))).logits
    assert ours(TEXTS[0])[0]["score"] == pytest.approx(float(logits[0, 0].detach()), abs=1e-5)


def test_user_errors_say_what_to_do(three_labels):
    ours, _ = three_labels
    with pytest.raises(InputError, match="function_to_apply"):
        ours(TEXTS[0], function_to_apply="relu")
    with pytest.raises(InputError, match="text_pair"):
        ours(TEXTS[:2], text_pair=["only one"])
    with pytest.raises(InputError, match="'text' key"):
        ours({"txt": "oops"})
    with pytest.raises(TypeError, match="string"):
        ours([3.5])
    with pytest.raises(InputError, match="top_k"):
        ours(TEXTS[0], top_k=0)
    with pytest.raises(InputError, match="mix"):
        ours(["a", ("b", "c")])
