"""Every walkthrough script in examples/ runs and reproduces its lecture-notes example (on small models)."""
from __future__ import annotations

import importlib.util
import sys
import warnings

import pytest

from pipeline_fixtures import tiny_model_dir
from conftest import REPO

EXAMPLES = REPO / "examples"


def run_example(name: str, *argv: str) -> dict:
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    path = next(EXAMPLES.glob(f"{name}_*.py"))
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return module.main(list(argv))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, minilm_path):
    root = tmp_path_factory.mktemp("examples")
    return lambda head, **cfg: tiny_model_dir(root / head, head, minilm_path, **cfg)


def test_01_tokenize_i_love_paris(minilm_path):
    out = run_example("01", "--model", str(minilm_path))
    assert out["tokens"] == ["[CLS]", "i", "love", "paris", "[SEP]", "[PAD]", "[PAD]"]
    assert out["attention_mask"] == [1, 1, 1, 1, 1, 0, 0]
    assert out["input_ids"] == [101, 1045, 2293, 3000, 102, 0, 0]


def test_02_embeddings_from_every_layer(minilm_path):
    out = run_example("02", "--model", str(minilm_path))
    assert out["num_hidden_states"] == 7                     # embeddings + 6 layers (BERT-base: 13)
    assert out["last_shape"] == (1, 7, 384)
    assert out["bank_cosine"] < 0.95                          # same word, different context, different vector


def test_02_twelve_layers_give_thirteen_states(tmp_path, minilm_path):
    d = tiny_model_dir(tmp_path, "BertModel", minilm_path, num_hidden_layers=12)
    assert run_example("02", "--model", str(d))["num_hidden_states"] == 13


def test_03_fill_mask(tiny):
    out = run_example("03", "--model", str(tiny("BertForMaskedLM")), "--top-k", "3")
    rows = out["Love is like the [MASK]. You can't see it but you can feel it"]
    assert len(rows) == 3 and all(r["token_str"] in r["sequence"] for r in rows)
    assert rows[0]["score"] >= rows[1]["score"] >= rows[2]["score"]


def test_04_next_sentence(tiny):
    out = run_example("04", "--model", str(tiny("BertForNextSentencePrediction")))
    assert out["token_type_ids"] == [0] * 6 + [1] * 7     # [CLS] i am going outside [SEP] | i will be back after 6 [SEP]
    for r in out["results"].values():
        assert r["label"] in ("IsNext", "NotNext") and 0 <= r["is_next_probability"] <= 1


def test_05_single_text_classification_learns(tiny):
    out = run_example("05", "--model", str(tiny("BertModel")), "--steps", "40", "--lr", "2e-3")
    assert out["losses"][-1] < out["losses"][0] / 2
    assert out["accuracy"] >= 5 / 6


def test_06_pairs_classification_and_regression(tiny):
    out = run_example("06", "--model", str(tiny("BertModel")), "--steps", "40", "--lr", "2e-3")
    assert out["token_type_ids"] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert out["nli_losses"][-1] < out["nli_losses"][0] / 2
    assert out["sts_losses"][-1] < out["sts_losses"][0] / 2
    assert all(isinstance(s, float) for s in out["sts_scores"])


def test_07_tagging(tiny):
    out = run_example("07", "--model", str(tiny("BertModel")), "--steps", "60", "--lr", "3e-3")
    assert out["losses"][-1] < out["losses"][0] / 3
    assert ("LOC", "Paris") in out["entities"]["Jeremy lives in Paris"]


def test_08_question_answering(tiny):
    out = run_example("08", "--model", str(tiny("BertModel", max_position_embeddings=512)), "--steps", "40",
                      "--lr", "3e-3")
    assert out["losses"][-1] < out["losses"][0] / 2
    assert out["answer"] == out["expected"]


def test_09_korquad_windows(tiny):
    out = run_example("09", "--model", str(tiny("BertForQuestionAnswering", max_position_embeddings=512)),
                      "--max-seq-len", "96", "--doc-stride", "32")
    windows = out["windows"]
    assert len(windows) > 3
    assert all(a["chars"][0] < b["chars"][0] < a["chars"][1] for a, b in zip(windows, windows[1:]))   # overlap
    best = max(windows, key=lambda w: w["logit"])
    assert out["answer"]["answer"] == best["answer"]
    assert out["answer"]["logit"] == pytest.approx(best["logit"], abs=1e-4)
