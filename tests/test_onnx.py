"""ONNX export (optional extra): onnxruntime gives bertkit's numbers, for any batch size and length."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from bertkit.common.errors import InputError, MissingDependency, NotFoundError  # noqa: E402
from bertkit.modeling import heads  # noqa: E402
from bertkit.cli import main  # noqa: E402
from bertkit.modeling.config import BertConfig  # noqa: E402
from bertkit.modeling import BertModel  # noqa: E402
from bertkit.modeling.onnx_export import OUTPUTS, OnnxBert, export_onnx, max_abs_diff  # noqa: E402

CONFIG = BertConfig(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=64, max_position_embeddings=40, num_labels=3)
TOLERANCE = 1e-4
# (B, T) shapes other than the traced example's (2, 8): proves batch and sequence axes are dynamic
SHAPES = [(1, 1), (1, 5), (3, 17), (6, 8), (4, 40)]
SENTENCES = ["Hello, world!", "The quick brown fox jumps over the lazy dog.",
             "BERT reads left and right at once, so every word sees its whole sentence.", "Short."]


def random_batch(B: int, T: int, seed: int = 0) -> dict[str, np.ndarray]:
    """B sequences padded to T: the first one full, the others of random length >= 1."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[0] = T
    mask = (torch.arange(T)[None] < lengths[:, None]).long()                          # [B, T]
    ids = torch.randint(1, CONFIG.vocab_size, (B, T), generator=g) * mask
    types = (torch.arange(T)[None] >= lengths[:, None] // 2).long() * mask
    return {"input_ids": ids.numpy(), "attention_mask": mask.numpy(), "token_type_ids": types.numpy()}


def build(cls_name: str):
    torch.manual_seed(0)
    cls = BertModel if cls_name == "BertModel" else getattr(heads, cls_name)
    return cls(CONFIG.replace(num_labels=2) if cls_name == "BertForQuestionAnswering" else CONFIG).eval()


@pytest.fixture(scope="module")
def tiny_encoder_onnx(tmp_path_factory):
    model = build("BertModel")
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    summary = export_onnx(model, path)
    return model, path, summary


def test_encoder_dynamic_batch_and_length(tiny_encoder_onnx):
    model, path, summary = tiny_encoder_onnx
    assert summary["outputs"] == ["last_hidden_state", "pooler_output"] and summary["opset"] == 17
    runner = OnnxBert(path)
    dims = [[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in _graph(path).input]
    assert dims == [["batch", "sequence"]] * 3
    for seed, (B, T) in enumerate(SHAPES):
        batch = random_batch(B, T, seed)
        out = runner.run(batch)
        assert out["last_hidden_state"].shape == (B, T, 32) and out["pooler_output"].shape == (B, 32)
        diffs = max_abs_diff(runner, model, batch)
        assert max(diffs.values()) <= TOLERANCE, (B, T, diffs)


def test_no_padding_and_all_padding_rows_agree(tiny_encoder_onnx):
    """A batch without any padding takes another branch in bertkit; the graph has none."""
    model, path, _ = tiny_encoder_onnx
    runner = OnnxBert(path)
    batch = random_batch(3, 12, seed=7)
    batch["attention_mask"][:] = 1
    assert max(max_abs_diff(runner, model, batch).values()) <= TOLERANCE


def test_export_leaves_the_model_as_it_was(tmp_path):
    model = build("BertModel").train()
    export_onnx(model, tmp_path / "leaves.onnx")
    assert model.training and "_layout" not in vars(model)


@pytest.mark.parametrize("cls_name", [n for n in OUTPUTS if n != "BertModel"])
def test_every_head_from_its_checkpoint_dir(cls_name, tmp_path):
    """The class comes from config.json's "architectures"; outputs are the head's, by name."""
    model = build(cls_name)
    model.save_pretrained(tmp_path / "ckpt")
    summary = export_onnx(tmp_path / "ckpt", tmp_path / "head.onnx")
    assert summary["architecture"] == cls_name and summary["outputs"] == list(OUTPUTS[cls_name])
    runner = OnnxBert(tmp_path / "head.onnx")
    assert runner.architecture == cls_name
    for seed, (B, T) in enumerate([(1, 4), (5, 23)]):
        batch = random_batch(B, T, seed)
        diffs = max_abs_diff(runner, model, batch)
        assert set(diffs) == set(OUTPUTS[cls_name]) and max(diffs.values()) <= TOLERANCE, diffs


def test_sequence_classification_logits_shape(tmp_path):
    model = build("BertForSequenceClassification")
    export_onnx(model, tmp_path / "cls.onnx")
    logits = OnnxBert(tmp_path / "cls.onnx").run(random_batch(5, 11))["logits"]
    assert logits.shape == (5, 3)


def test_dynamo_exporter(tiny_encoder_onnx, tmp_path):
    pytest.importorskip("onnxscript")
    model = tiny_encoder_onnx[0]
    summary = export_onnx(model, tmp_path / "dynamo.onnx", exporter="dynamo", opset=18)
    assert summary["exporter"] == "dynamo" and summary["opset"] == 18
    runner = OnnxBert(tmp_path / "dynamo.onnx")
    for seed, (B, T) in enumerate(SHAPES[1:4]):
        assert max(max_abs_diff(runner, model, random_batch(B, T, seed)).values()) <= TOLERANCE


def test_real_minilm_on_real_sentences(minilm_path, tmp_path):
    model = BertModel.from_pretrained(minilm_path)
    export_onnx(model, tmp_path / "minilm.onnx")
    runner = OnnxBert(tmp_path / "minilm.onnx", tokenizer=minilm_path, threads=1)
    encoding = runner.encode(SENTENCES)
    diffs = max_abs_diff(runner, model, encoding)
    assert max(diffs.values()) <= TOLERANCE, diffs
    pairs = runner.encode(SENTENCES[:2], text_pair=["And a second segment.", "Another one."])
    assert pairs["token_type_ids"].max() == 1
    assert max(max_abs_diff(runner, model, pairs).values()) <= TOLERANCE
    out = runner(SENTENCES)
    assert out["last_hidden_state"].shape[:2] == encoding["input_ids"].shape


def test_cli_export_with_check(minilm_path, tmp_path, capsys):
    out = tmp_path / "sub" / "minilm.onnx"
    assert main(["export-onnx", str(minilm_path), str(out), "--check", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert out.is_file() and report["path"] == str(out) and report["architecture"] == "BertModel"
    assert report["outputs"] == ["last_hidden_state", "pooler_output"]
    assert report["check"]["sentences"] >= 3 and 0 <= report["check"]["max_abs_diff"] <= TOLERANCE
    assert not [p for p in out.parent.iterdir() if p.name != out.name]       # no temporary files left


def test_cli_text_output(tmp_path, capsys):
    model = build("BertForSequenceClassification")
    model.save_pretrained(tmp_path / "ckpt")
    assert main(["export-onnx", str(tmp_path / "ckpt"), str(tmp_path / "m.onnx"), "--opset", "18"]) == 0
    text = capsys.readouterr().out
    assert "BertForSequenceClassification" in text and "opset 18" in text and "logits" in text


def test_missing_model_dir_is_one_clear_line(tmp_path, capsys):
    missing = tmp_path / "no-such-model"
    with pytest.raises(NotFoundError, match="model directory not found"):
        export_onnx(missing, tmp_path / "m.onnx")
    assert main(["export-onnx", str(missing), str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-such-model" in err[0] and "not found" in err[0]
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFoundError, match="no config.json"):
        export_onnx(tmp_path / "empty", tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_runner_errors(tiny_encoder_onnx, tmp_path):
    _, path, _ = tiny_encoder_onnx
    runner = OnnxBert(path)
    with pytest.raises(InputError, match="exceeds max_position_embeddings=40"):
        runner.run(random_batch(1, 41))
    with pytest.raises(NotFoundError, match="no vocab.txt"):
        runner(["some text"])                            # no tokenizer files beside the .onnx file
    with pytest.raises(NotFoundError, match="ONNX file not found"):
        OnnxBert(tmp_path / "missing.onnx")
    with pytest.raises(InputError, match="architecture="):
        build("BertModel").save_pretrained(tmp_path / "ckpt")
        export_onnx(tmp_path / "ckpt", tmp_path / "x.onnx", architecture="BertLMHeadModel")


def test_missing_onnxruntime_says_how_to_install(tiny_encoder_onnx, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)          # makes `import onnxruntime` fail
    with pytest.raises(MissingDependency, match=r"pip install 'bertkit\[onnx\]'"):
        OnnxBert(tiny_encoder_onnx[1])


def _graph(path):
    import onnx
    return onnx.load(str(path)).graph

