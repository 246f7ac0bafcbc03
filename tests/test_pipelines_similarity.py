"""sentence-similarity: mean-pooled, normalized MiniLM vectors = the reference recipe; cosine scores."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from bertkit.common.errors import InputError

transformers = pytest.importorskip("transformers")

SOURCE = "A man is eating food."
CANDIDATES = ["A man is eating a meal.", "A man is eating a piece of bread.", "A plane is taking off.",
              "Someone is playing the guitar loudly on a stage in front of a big crowd."]


@pytest.fixture(scope="module")
def sim(minilm_path):
    from bertkit import pipeline
    return pipeline("sentence-similarity", model=minilm_path, device="cpu", batch_size=2)


def _reference_vectors(path, texts):
    model = transformers.BertModel.from_pretrained(path, attn_implementation="sdpa").eval()
    tok = transformers.BertTokenizerFast.from_pretrained(path)
    enc = tok(texts, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        h = model(**enc).last_hidden_state                          # [B,T,H]
    m = enc["attention_mask"].unsqueeze(-1).float()
    v = (h * m).sum(1) / m.sum(1)
    return torch.nn.functional.normalize(v, dim=-1).numpy()


def test_vectors_match_reference_mean_pooling(sim, minilm_path):
    texts = [SOURCE] + CANDIDATES
    ours = sim.embed(texts)
    assert ours.dtype == np.float32 and ours.shape == (len(texts), 384)
    np.testing.assert_allclose(ours, _reference_vectors(minilm_path, texts), atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_scores_are_cosines_in_candidate_order(sim, minilm_path):
    scores = sim(SOURCE, CANDIDATES)
    ref = _reference_vectors(minilm_path, [SOURCE] + CANDIDATES)
    np.testing.assert_allclose(scores, ref[1:] @ ref[0], atol=2e-5)
    assert scores[0] > 0.7 > scores[2]                         # meal ≈ food; a plane is not
    assert max(range(4), key=lambda i: scores[i]) in (0, 1)


def test_length_sorted_batching_keeps_the_callers_order(sim):
    texts = CANDIDATES[::-1] + [SOURCE]
    together = sim.embed(texts, batch_size=2)
    alone = np.stack([sim.embed([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=2e-5)


def test_input_forms_and_errors(sim):
    assert sim({"source_sentence": SOURCE, "sentences": CANDIDATES[:2]}) == pytest.approx(sim(SOURCE, CANDIDATES[:2]))
    assert sim(SOURCE, CANDIDATES[0]) == pytest.approx(sim(SOURCE, CANDIDATES[:1]))
    assert sim(SOURCE, []) == []
    with pytest.raises(InputError, match="candidates"):
        sim(SOURCE)
    with pytest.raises(TypeError, match="string"):
        sim(SOURCE, [1, 2])
