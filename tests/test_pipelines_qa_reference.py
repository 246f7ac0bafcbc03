"""question-answering against the reference's model and tokenizer.

transformers 5 removed `pipeline("question-answering")`, so the reference here is what that pipeline
was built from: `BertTokenizerFast` cuts the context into windows (`return_overflowing_tokens`, its
`stride` = the overlap, set to give BERT's `doc_stride` window starts) with character offsets,
`transformers.BertForQuestionAnswering` scores every window, and a brute-force search in this file
takes the best context span as BERT's run_squad.py does (start logit + end logit over the 20 best
starts × 20 best ends of each window, at most `max_answer_length` tokens); a span seen in several
overlapping windows keeps its best logit.  (run_squad.py also counts a start only in the window where
it has the most context; bertkit, like the removed transformers pipeline, does not.)  bertkit's
pipeline must give the same answer text and start/end, the same logit within 1e-4, and the same
score within 1e-4 (a softmax over the 20 best spans).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from pipeline_fixtures import tiny_model_dir

transformers = pytest.importorskip("transformers")

FILLER = " ".join(f"Sentence number {i} talks about the city of Paris and its {i * 7} bridges." for i in range(12))
CASES = [("Who wrote the letter?", "The letter was written by Marie Curie in Warsaw, in 1891."),
         ("What is the capital of France?", "Paris is the capital and most populous city of France."),
         ("How many zebras did the keeper count?",
          FILLER + " The keeper counted seventeen zebras in the park. " + FILLER)]   # ~400 tokens: many windows


@pytest.fixture(scope="module")
def pair(tmp_path_factory, minilm_path):
    d = tiny_model_dir(tmp_path_factory.mktemp("qa_ref"), "BertForQuestionAnswering", minilm_path, scale=30)
    from bertkit import pipeline
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = pipeline("question-answering", model=d, device="cpu")
    model = transformers.BertForQuestionAnswering.from_pretrained(d).eval()
    return ours, model, transformers.BertTokenizerFast.from_pretrained(d)


def reference_answers(model, tok, question, context, max_seq_length, doc_stride, max_answer_length=30, n_best=20):
    """The best spans by the reference's windows, offsets and logits: [(logit, start char, end char)], best first."""
    room = max_seq_length - len(tok.tokenize(question)) - 3    # context tokens per window; BERT steps min(room, doc_stride)
    enc = tok(question, context, truncation="only_second", max_length=max_seq_length, stride=max(room - doc_stride, 0),
              return_overflowing_tokens=True, return_offsets_mapping=True, padding=True, return_tensors="pt")
    offsets, seq_ids = enc.pop("offset_mapping"), [enc.sequence_ids(w) for w in range(len(enc["input_ids"]))]
    enc.pop("overflow_to_sample_mapping", None)
    with torch.no_grad():
        out = model(**enc)                                                   # [W, T] start and end logits
    windows = [[t for t, s in enumerate(ids) if s == 1] for ids in seq_ids]  # context positions per window
    first = [offsets[w][ts[0]][0].item() for w, ts in enumerate(windows)]    # windows in reading order
    spans: dict[tuple[int, int], float] = {}
    for w, ts in enumerate(windows):
        s_log, e_log = out.start_logits[w], out.end_logits[w]
        starts = set(s_log.topk(n_best).indices.tolist())                   # run_squad: the n-best starts
        ends = set(e_log.topk(n_best).indices.tolist())                     # × the n-best ends of a window
        for a in ts:
            if a not in starts:
                continue
            for b in (b for b in ts[ts.index(a):ts.index(a) + max_answer_length] if b in ends):
                key = offsets[w][a][0].item(), offsets[w][b][1].item()
                spans[key] = max(spans.get(key, -np.inf), float(s_log[a] + e_log[b]))
    assert first == sorted(first) and len(windows) >= 1
    ranked = sorted(spans.items(), key=lambda kv: -kv[1])[:n_best]
    return [(logit, s, e) for (s, e), logit in ranked], len(windows)


@pytest.mark.parametrize("max_seq_length,doc_stride", [(128, 128), (64, 16), (48, 7)])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_answers_equal_the_reference_models(pair, case, max_seq_length, doc_stride):
    ours, model, tok = pair
    question, context = CASES[case]
    want, n_windows = reference_answers(model, tok, question, context, max_seq_length, doc_stride)
    if case == 2:
        assert n_windows >= 3                                  # the long context really is split
    logits = np.array([w[0] for w in want])
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    got = ours(question=question, context=context, max_seq_length=max_seq_length, doc_stride=doc_stride, top_k=3)
    assert len(got) == 3
    for g, (logit, start, end), p in zip(got, want, probs):
        assert (g["answer"], g["start"], g["end"]) == (context[start:end], start, end)
        assert g["logit"] == pytest.approx(logit, abs=1e-4)
        assert g["score"] == pytest.approx(p, abs=1e-4)
