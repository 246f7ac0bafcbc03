"""backend="onnx": every pipeline it covers gives the torch path's answers within 1e-4.

Tiny random models over the real MiniLM vocab (pipeline_fixtures) for classify / tag / answer,
the real MiniLM for embeddings; inputs of mixed lengths, more than one batch, in an order
that is not sorted by length, so that the length bucketing and the order restore are tested.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from pipeline_fixtures import tiny_model_dir  # noqa: E402

from bertkit import pipeline  # noqa: E402
from bertkit.cli import main  # noqa: E402
from bertkit.common.errors import InputError, MissingDependency  # noqa: E402
from bertkit.modeling.onnx_optimize import fused  # noqa: E402
from bertkit.modeling import onnx_runtime as onnx_backend  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
TOLERANCE = 1e-4
TEXTS = ["Short.", "Jeremy Smith lives in Paris and works for the United Nations in Geneva, Switzerland.",
         "a gorgeous, witty film", "BERT reads left and right at once.", "ok",
         "The quick brown fox jumps over the lazy dog near the riverbank, twice, before breakfast.",
         "Transformers turn every token into a vector.", "dull and overlong"]
CONTEXT = ("The Amazon rainforest covers much of the Amazon basin of South America. This basin encompasses "
           "seven million square kilometres, of which five and a half million are covered by the rainforest. "
           "The region includes territory belonging to nine nations. The majority of the forest is contained "
           "within Brazil, with 60% of the rainforest, followed by Peru with 13%, and Colombia with 10%.")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test gets its own bertkit cache: nothing is written to the real ~/.cache."""
    monkeypatch.setenv(onnx_backend.CACHE_ENV, str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def models(tmp_path_factory, minilm_path):
    root = tmp_path_factory.mktemp("onnx-pipelines")
    labels = {"id2label": {0: "negative", 1: "neutral", 2: "positive"}, "num_labels": 3}
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    return {"classify": tiny_model_dir(root / "cls", "BertForSequenceClassification", minilm_path, scale=30, **labels),
            "tag": tiny_model_dir(root / "tag", "BertForTokenClassification", minilm_path, scale=30,
                                  id2label=dict(enumerate(tags)), num_labels=len(tags)),
            "qa": tiny_model_dir(root / "qa", "BertForQuestionAnswering", minilm_path, scale=30)}


def both(task: str, model, **options):
    return [pipeline(task, model=model, backend=b, batch_size=3, **options) for b in ("torch", "onnx")]


def test_classify_matches_torch(models):
    torch_pipe, onnx_pipe = both("text-classification", models["classify"])
    for kwargs in ({}, {"text_pair": TEXTS[::-1]}, {"function_to_apply": "none"}):
        expected, got = torch_pipe(TEXTS, top_k=None, **kwargs), onnx_pipe(TEXTS, top_k=None, **kwargs)
        if "function_to_apply" in kwargs:                                  # raw logits differ between texts
            best = [r[0]["score"] for r in expected]
            assert max(best) - min(best) > 10 * TOLERANCE
        for e, g in zip(expected, got):
            assert [x["label"] for x in e] == [x["label"] for x in g]
            assert np.allclose([x["score"] for x in e], [x["score"] for x in g], atol=TOLERANCE, rtol=0)
    assert onnx_pipe("ok") == [{"label": torch_pipe("ok")[0]["label"], "score": pytest.approx(
        torch_pipe("ok")[0]["score"], abs=TOLERANCE)}]


def test_tag_matches_torch(models):
    torch_pipe, onnx_pipe = both("token-classification", models["tag"])
    for strategy in ("none", "first"):
        expected, got = torch_pipe(TEXTS, aggregation_strategy=strategy), onnx_pipe(TEXTS, aggregation_strategy=strategy)
        assert sum(map(len, expected)) > 5
        for e, g in zip(expected, got):
            strip = [{k: v for k, v in x.items() if k != "score"} for x in e]
            assert strip == [{k: v for k, v in x.items() if k != "score"} for x in g]
            assert np.allclose([x["score"] for x in e], [x["score"] for x in g], atol=TOLERANCE, rtol=0)


def test_answer_matches_torch(models):
    torch_pipe, onnx_pipe = both("question-answering", models["qa"])
    questions = ["Which country holds most of the forest?", "How large is the basin?", "Who?"]
    options = dict(context=CONTEXT, top_k=3, max_seq_length=48, doc_stride=16)       # several windows each
    expected, got = torch_pipe(question=questions, **options), onnx_pipe(question=questions, **options)
    for e, g in zip(expected, got):
        assert [(a["answer"], a["start"], a["end"]) for a in e] == [(a["answer"], a["start"], a["end"]) for a in g]
        assert np.allclose([a["logit"] for a in e], [a["logit"] for a in g], atol=TOLERANCE, rtol=0)
        assert np.allclose([a["score"] for a in e], [a["score"] for a in g], atol=TOLERANCE, rtol=0)


def test_embed_minilm_matches_torch_and_is_fused(minilm_path, tmp_path):
    torch_pipe, onnx_pipe = both("feature-extraction", "minilm")
    tokens_t, tokens_o = torch_pipe(TEXTS), onnx_pipe(TEXTS)
    assert max(float((a - b).abs().max()) for a, b in zip(tokens_t, tokens_o)) <= TOLERANCE
    assert [a.shape for a in tokens_t] == [b.shape for b in tokens_o]
    pooled_t = torch_pipe(TEXTS, pooling="mean", normalize=True)
    pooled_o = onnx_pipe(TEXTS, pooling="mean", normalize=True)
    assert max(float((a - b).abs().max()) for a, b in zip(pooled_t, pooled_o)) <= TOLERANCE
    # the bundled model's folder is not written to: the file is in the user cache, optimised
    path = onnx_pipe.model.path
    assert path.is_relative_to(tmp_path / "cache" / "onnx") and not (minilm_path / "onnx").exists()
    assert fused(path) == {"Attention": 6, "SkipLayerNormalization": 12, "BiasGelu": 6}
    with pytest.raises(InputError, match="last layer only"):
        onnx_pipe("one", layer=2)


def test_cached_beside_a_named_folder_and_rebuilt_when_weights_change(models, tmp_path, monkeypatch):
    folder = tiny_model_dir(tmp_path / "mine", "BertForSequenceClassification", models["classify"], seed=1)
    first = pipeline("text-classification", model=str(folder), backend="onnx").model.path
    assert first.parent == folder / "onnx" and first.name.startswith("BertForSequenceClassification.fp32.")
    built = []
    monkeypatch.setattr(onnx_backend, "build", lambda *a, **k: built.append(a) or first)
    assert pipeline("text-classification", model=str(folder), backend="onnx").model.path == first and not built
    tiny_model_dir(folder, "BertForSequenceClassification", models["classify"], seed=2)   # new weights
    os.utime(folder / "model.safetensors", ns=(1, 1))                                     # a new mtime for sure
    pipeline("text-classification", model=str(folder), backend="onnx")
    assert len(built) == 1                                  # the key changed: built again


def test_read_only_folder_uses_the_user_cache(models, tmp_path, monkeypatch):
    folder = tiny_model_dir(tmp_path / "ro", "BertForSequenceClassification", models["classify"])
    folder.chmod(0o555)
    if hasattr(os, "geteuid") and os.geteuid() == 0:     # root may write anywhere: make os.access say what a user sees
        import bertkit.modeling.onnx_runtime as ort_module
        real = os.access
        monkeypatch.setattr(ort_module.os, "access",
                            lambda path, mode, **kw: False if Path(path).is_relative_to(folder) else real(path, mode, **kw))
    try:
        path = pipeline("text-classification", model=str(folder), backend="onnx").model.path
    finally:
        folder.chmod(0o755)
    assert path.is_relative_to(tmp_path / "cache" / "onnx") and not (folder / "onnx").exists()


def test_int8_is_quantised_and_close(minilm_path):
    fp32, int8 = (pipeline("feature-extraction", model="minilm", backend="onnx", quantize=q) for q in (None, "int8"))
    assert fused(int8.model.path).get("QAttention", 0) + fused(int8.model.path).get("Attention", 0) == 6
    assert int8.model.path.stat().st_size < fp32.model.path.stat().st_size / 2
    a, b = (torch.stack(p(TEXTS, pooling="mean", normalize=True)) for p in (fp32, int8))
    cosine = (a * b).sum(-1)
    assert float(cosine.min()) > 0.9 and float((a - b).abs().max()) > TOLERANCE    # close, not exact


def test_length_batches_cover_every_index_longest_first(models):
    pipe = pipeline("text-classification", model=models["classify"], batch_size=3)
    batches = pipe.length_batches(TEXTS)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(TEXTS))) and max(map(len, batches)) == 3
    assert [len(TEXTS[i]) for i in flat] == sorted(map(len, TEXTS), reverse=True)


def test_bad_choices_are_one_line(models, monkeypatch, capsys):
    with pytest.raises(InputError, match="backend='tpu'"):
        pipeline("text-classification", model=models["classify"], backend="tpu")
    with pytest.raises(InputError, match="not a loaded model"):
        pipeline("feature-extraction", model=torch.nn.Linear(1, 1), tokenizer=object(), backend="onnx")
    with pytest.raises(InputError, match="quantize='int4'"):
        pipeline("text-classification", model=models["classify"], backend="onnx", quantize="int4")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)                 # `import onnxruntime` fails
    with pytest.raises(MissingDependency, match=r"pip install 'bertkit\[onnx\]'"):
        pipeline("text-classification", model=models["classify"], backend="onnx")
    assert main(["classify", "ok", "--model", str(models["classify"]), "--backend", "onnx"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bertkit[onnx]" in err[0] and "onnxruntime" in err[0]


@pytest.mark.parametrize("verb, extra", [("classify", ["--top-k", "3"]), ("tag", []), ("embed", ["--pooling", "mean"]),
                                         ("answer", ["--context", CONTEXT, "--top-k", "2"])])
def test_cli_backend_onnx_prints_the_torch_numbers(verb, extra, models, capsys):
    inputs = ["Which country holds most of the forest?"] if verb == "answer" else TEXTS[:4]
    model = {"classify": models["classify"], "tag": models["tag"], "answer": models["qa"], "embed": "minilm"}[verb]
    results = []
    for backend in ("torch", "onnx"):
        assert main([verb, *inputs, "--model", str(model), *extra, "--backend", backend, "--json"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    numbers = [np.array(_numbers(r)) for r in results]
    assert len(numbers[0]) > 3 and np.allclose(numbers[0], numbers[1], atol=TOLERANCE, rtol=0)
    assert _strings(results[0]) == _strings(results[1])


def _numbers(value) -> list[float]:
    if isinstance(value, dict):
        return [x for k in sorted(value) for x in _numbers(value[k])]
    if isinstance(value, list):
        return [x for v in value for x in _numbers(v)]
    return [float(value)] if isinstance(value, float) else []


def _strings(value) -> list:
    if isinstance(value, dict):
        return [(k, _strings(value[k])) for k in sorted(value)]
    if isinstance(value, list):
        return [_strings(v) for v in value]
    return value if not isinstance(value, float) else None


def test_serve_backend_onnx_answers_like_torch(models, minilm_path, tmp_path):
    testclient = pytest.importorskip("fastapi.testclient")
    from bertkit.apps.serve import ModelHost, create_app
    mlm = tiny_model_dir(tmp_path / "mlm", "BertForMaskedLM", minilm_path)
    hosts = {b: ModelHost(mlm, models["qa"], backend=b) for b in ("torch", "onnx")}
    assert hosts["onnx"].features.backend == "onnx" and hosts["onnx"].qa.backend == "onnx"
    replies = {}
    for backend, host in hosts.items():
        client = testclient.TestClient(create_app(host=host))
        embed = client.post("/api/embed", json={"texts": TEXTS[:3], "pooling": "mean"}).json()
        qa = client.post("/api/qa", json={"question": "Which country?", "context": CONTEXT, "top_k": 2}).json()
        fill = client.post("/api/fill-mask", json={"text": "Paris is [MASK].", "top_k": 2}).json()
        replies[backend] = (embed, qa, fill)
    (e_t, q_t, f_t), (e_o, q_o, f_o) = replies["torch"], replies["onnx"]
    assert np.allclose(_numbers(e_t), _numbers(e_o), atol=TOLERANCE, rtol=0) and len(_numbers(e_t)) > 3
    assert _strings(q_t) == _strings(q_o) and np.allclose(_numbers(q_t), _numbers(q_o), atol=TOLERANCE, rtol=0)
    assert f_t == f_o                                                   # fill-mask stays on torch


def test_predict_backend_onnx_gives_the_torch_predictions(models, tmp_path, capsys):
    """`bertkit predict` (a fine-tuned folder with its task.json) on ONNX Runtime: the same labels and scores."""
    model = tmp_path / "finetuned"
    shutil.copytree(models["classify"], model)
    (model / "task.json").write_text(json.dumps({"task": "classification", "family": "classification", "options": {},
                                                 "max_seq_length": 64, "labels": [0, 1, 2]}))
    results = []
    for backend in ("torch", "onnx"):
        assert main(["predict", *TEXTS[:5], "--model", str(model), "--backend", backend, "--json"]) == 0
        results.append([json.loads(line) for line in capsys.readouterr().out.splitlines()])
    assert [r["label"] for r in results[0]] == [r["label"] for r in results[1]] and len(results[0]) == 5
    assert np.allclose(_numbers(results[0]), _numbers(results[1]), atol=TOLERANCE, rtol=0)
