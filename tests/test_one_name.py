"""One concept, one name, one place: the device (`resolve_device`) and the sequence length
(`--max-seq-length`, the length saved with a fine-tuned model)."""
from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest

from bertkit.tasks import QAExample, TaggedExample, TextExample, get_task
from pipeline_fixtures import tiny_model_dir

SRC = Path(__file__).resolve().parents[1] / "src" / "bertkit"
# where the question "is there a GPU?" may be asked: the resolver, torchrun's rank → GPU, and the
# CUDA random generators a checkpoint saves (a state, not a choice of device)
DEVICE_HOMES = {"common/devices.py", "training/distributed.py", "training/checkpoints.py"}


def test_the_device_is_resolved_in_one_place():
    found = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
             if "cuda.is_available()" in p.read_text(encoding="utf-8") and str(p.relative_to(SRC)) not in DEVICE_HOMES]
    assert found == []


def test_serve_defaults_to_the_device_every_verb_defaults_to(tmp_path, minilm_path, monkeypatch):
    """`bertkit serve` without --device: the GPU when there is one (resolve_device(None)), as the shared help says."""
    from bertkit.apps import serve
    from bertkit.cli import apps, build_parser
    from bertkit.common.devices import resolve_device

    args = build_parser().parse_args(["serve", "--model", "m"])
    assert args.device is None
    serve_help = build_parser()._subparsers._group_actions[0].choices["serve"].format_help()
    assert "default: the GPU when there is one" in " ".join(serve_help.split())
    seen = {}
    monkeypatch.setattr(apps, "run_server", lambda *a, **k: seen.update(k))
    monkeypatch.setattr(apps, "open_model", lambda args, attr="model": type("C", (), {"directory": args.model}))
    apps.cmd_serve(args)
    assert seen["device"] is None
    asked = []
    monkeypatch.setattr(serve, "resolve_device", lambda d: asked.append(d) or resolve_device(d))
    host = serve.ModelHost(tiny_model_dir(tmp_path / "mlm", "BertForMaskedLM", minilm_path))
    assert asked == [None] and next(host.encoder.parameters()).device == resolve_device(None)


LENGTH_VERBS = [["eval", "--model", "m", "--data", "d"], ["answer", "q", "--model", "m"],
                ["classify", "x", "--model", "m"], ["tag", "x", "--model", "m"],
                ["attention", "x", "--out", "o"], ["search", "index", "p", "--out", "o"],
                ["search", "train-reranker", "p", "--out", "o"]]


@pytest.mark.parametrize("argv", LENGTH_VERBS, ids=lambda a: " ".join(a[:2]))
def test_max_seq_length_is_one_option_with_its_old_spelling(argv):
    from bertkit.cli import build_parser
    parse = build_parser().parse_args
    assert parse([*argv, "--max-seq-length", "40"]).max_seq_length == 40
    assert parse([*argv, "--max-length", "41"]).max_seq_length == 41


def test_no_verb_declares_max_seq_length_by_hand():
    hand_written = [f"{p.name}:{n}" for p in (SRC / "cli").glob("*.py")
                    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                    if re.search(r"add_argument\(\s*\"--max-seq-len", line)]
    assert hand_written == []


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, minilm_path):
    """A seeded classifier saved as `bertkit finetune` saves one, trained (task.json) with 16 tokens."""
    folder = tiny_model_dir(tmp_path_factory.mktemp("cls") / "best", "BertForSequenceClassification", minilm_path,
                            scale=30, id2label={0: "negative", 1: "positive"},
                            label2id={"negative": 0, "positive": 1})
    (folder / "task.json").write_text(json.dumps({"task": "sst2", "family": "classification", "options": {},
                                                  "max_seq_length": 16, "labels": ["0", "1"]}))
    return folder


LONG = "the film starts well " + "and then it goes on and on " * 12 + "and ends badly"


def test_classify_and_predict_cut_a_long_text_the_same_way(classifier):
    from bertkit.pipelines import pipeline
    from bertkit.training.finetune import predict_texts

    [predicted] = predict_texts(str(classifier), [LONG], quiet=True)
    pipe = pipeline("text-classification", model=str(classifier), device="cpu")
    assert pipe.max_length == 16
    [[classified]] = pipe([LONG], top_k=1)
    assert classified["label"] == predicted["label"]
    assert classified["score"] == pytest.approx(predicted["probability"], abs=1e-6)
    [[whole]] = pipeline("text-classification", model=str(classifier), device="cpu", max_length=128)([LONG], top_k=1)
    assert whole["score"] != pytest.approx(classified["score"], abs=1e-6)      # the cut matters for this text


def test_the_qa_pipeline_windows_with_the_saved_length(tmp_path, minilm_path):
    from bertkit.pipelines import pipeline
    folder = tiny_model_dir(tmp_path / "qa", "BertForQuestionAnswering", minilm_path, scale=30,
                            max_position_embeddings=512)
    pipe = pipeline("question-answering", model=str(folder), device="cpu")
    assert pipe.window_length(None) == 384
    (folder / "task.json").write_text(json.dumps({"task": "squad", "family": "qa", "options": {},
                                                  "max_seq_length": 96}))
    pipe = pipeline("question-answering", model=str(folder), device="cpu")
    assert pipe.window_length(None) == 96 and pipe.window_length(200) == 200
    assert pipe.window_length(10_000) == 512                                  # the model's positions


# ----------------------------------------------------------------------------- retired names

def test_every_retired_keyword_goes_through_renamed():
    """One mechanism: `bertkit.text.names.renamed` (flags: a settings field's `aliases`).  The one other
    DeprecationWarning is QATask.n_best, an attribute (a decorator cannot rename an attribute)."""
    calls = [f"{p.relative_to(SRC)}:{n}" for p in SRC.rglob("*.py") if p.name != "names.py"
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if "DeprecationWarning" in line and "warn" in line]
    assert [c.split(":")[0] for c in calls] == ["tasks/qa.py"], calls
    assert not any(re.search(r"def renamed_keywords|def seq_length_argument|\*\*deprecated", p.read_text())
                   for p in SRC.rglob("*.py"))


@pytest.mark.parametrize("name,example", [("sst2", TextExample("a rather long text " * 8, None, "1")),
                                          ("conll2003", TaggedExample(["EU"] * 30, ["B-ORG"] * 30)),
                                          ("squad", QAExample(id="1", question="Who?", context="Kim sat. " * 30))])
def test_old_max_length_works_with_one_warning(name, example, tokenizer):
    task = get_task(name, **({"doc_stride": 8} if name == "squad" else {}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = task.encode([example], tokenizer, max_length=24)
    assert [str(w.message) for w in caught] == [
        f"{type(task).__name__}.encode: max_length= is deprecated, use max_seq_length="]
    assert caught[0].filename == __file__
    new = task.encode([example], tokenizer, max_seq_length=24)
    assert [f["input_ids"] for f in old] == [f["input_ids"] for f in new] and len(new[0]["input_ids"]) == 24
