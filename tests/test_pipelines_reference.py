"""fill-mask and feature-extraction give the reference pipelines' outputs on the same weights;
next-sentence (no pipeline in transformers) gives BertForNextSentencePrediction's softmax.
(text-classification: tests/test_pipelines_classify.py; token-classification: tests/test_pipelines_tokens.py.)

MiniLM has no MLM head, so fill-mask uses a seeded random BertForMaskedLM over the MiniLM vocab,
saved with bertkit and loaded by both implementations.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from pipeline_fixtures import tiny_model_dir

transformers = pytest.importorskip("transformers")

LOVE = "Love is like the [MASK]. You can't see it but you can feel it"


@pytest.fixture(scope="module")
def fill_pipes(tmp_path_factory, minilm_path):
    d = tiny_model_dir(tmp_path_factory.mktemp("mlm"), "BertForMaskedLM", minilm_path)
    from bertkit import pipeline
    model = transformers.BertForMaskedLM.from_pretrained(d)
    tok = transformers.BertTokenizerFast.from_pretrained(d)
    return pipeline("fill-mask", model=d, device="cpu"), transformers.pipeline(
        "fill-mask", model=model, tokenizer=tok, device="cpu")


def _same(a, b, keys=("token", "token_str", "sequence")):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x["score"] == pytest.approx(float(y["score"]), rel=1e-4, abs=1e-9)
        for k in keys:
            assert x[k] == y[k], k


@pytest.mark.parametrize("text", [LOVE, "Where are you come from? I'm from [MASK].", "[MASK]"])
@pytest.mark.parametrize("top_k", [1, 5, 12])
def test_fill_mask_matches_reference(fill_pipes, text, top_k):
    ours, ref = fill_pipes
    _same(ours(text, top_k=top_k), ref(text, top_k=top_k))


def test_fill_mask_batch_and_targets(fill_pipes):
    ours, ref = fill_pipes
    texts = [LOVE, "Paris is the [MASK] of France."]
    for a, b in zip(ours(texts, top_k=3), ref(texts, top_k=3)):
        _same(a, b)
    _same(ours(LOVE, targets=["sun", "moon", "wind"]), ref(LOVE, targets=["sun", "moon", "wind"]))


def test_fill_mask_several_masks_scores_and_tokens(fill_pipes):
    ours, ref = fill_pipes
    text = "The [MASK] sat on the [MASK]."
    got, want = ours(text, top_k=4), ref(text, top_k=4)
    assert len(got) == len(want) == 2
    for a, b in zip(got, want):
        _same(a, b, keys=("token", "token_str"))    # the reference's multi-mask `sequence` keeps [CLS]/[MASK]


def test_features_match_reference_on_minilm(minilm_path):
    from bertkit import pipeline
    ours = pipeline("feature-extraction", model=minilm_path, device="cpu")
    model = transformers.BertModel.from_pretrained(minilm_path, attn_implementation="sdpa")
    tok = transformers.BertTokenizerFast.from_pretrained(minilm_path)
    ref = transformers.pipeline("feature-extraction", model=model, tokenizer=tok, device="cpu")
    texts = ["I love Paris", "A much longer sentence, with punctuation and rare words like zygote!"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = ref(texts)
    for a, b in zip(ours(texts), want):
        b = np.asarray(b)[0]                                   # [T,H], [CLS] and [SEP] included
        assert tuple(a.shape) == b.shape
        np.testing.assert_allclose(a.numpy(), b, atol=1e-4)
    hidden = ours("I love Paris", layer="all")
    assert tuple(hidden.shape) == (7, 5, 384)                   # embeddings + 6 layers, 5 tokens
    with torch.no_grad():
        enc = tok("I love Paris", return_tensors="pt")
        ref_all = model(**enc, output_hidden_states=True).hidden_states
    for layer in range(7):
        np.testing.assert_allclose(hidden[layer].numpy(), ref_all[layer][0].numpy(), atol=1e-4)


# next-sentence has no pipeline in transformers: the reference is BertForNextSentencePrediction's softmax
PAIRS = [("I am going outside", "I will be back after 6"), ("I am going outside", "Where are you come from?"),
         ("The function returns a list of strings.", "Each string is one line of the file.")]


def test_next_sentence_matches_the_reference_models_softmax(tmp_path, minilm_path):
    from bertkit import pipeline
    import bertkit
    d = tiny_model_dir(tmp_path / "nsp", "BertForNextSentencePrediction", minilm_path)
    nsp = bertkit.BertForNextSentencePrediction.from_pretrained(d)
    with torch.no_grad():                                # a random small head says 0.5 to everything
        nsp.cls.seq_relationship.weight.mul_(300)
    nsp.save_pretrained(d)
    ours = pipeline("next-sentence", model=d, device="cpu")
    model = transformers.BertForNextSentencePrediction.from_pretrained(d).eval()
    tok = transformers.BertTokenizerFast.from_pretrained(d)
    with torch.no_grad():
        enc = tok([a for a, _ in PAIRS], [b for _, b in PAIRS], padding=True, return_tensors="pt")
        want = model(**enc).logits.softmax(-1)                               # [B, 2]: IsNext, NotNext
    got = ours(PAIRS)
    assert len(got) == len(PAIRS)
    for g, w in zip(got, want.tolist()):
        assert g["is_next_probability"] == pytest.approx(w[0], abs=1e-4)
        assert g["label"] == ("IsNext" if w[0] >= w[1] else "NotNext")
    assert len({round(g["is_next_probability"], 4) for g in got}) > 1          # the model reads the pairs
