"""`bertkit convert SRC OUT`: a Google TF release (or any BERT) → the standard layout, checked by reloading."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bertkit.cli import main
from bertkit.modeling import BertForPreTraining

FIXTURES = Path(__file__).parent / "fixtures" / "tf"
UNCASED = FIXTURES / "uncased_L-2_H-32_A-2"
CASED = FIXTURES / "cased_L-2_H-32_A-4"


def test_a_tf_release_becomes_the_standard_layout_that_transformers_loads(tmp_path, capsys):
    out = tmp_path / "bert"
    assert main(["convert", str(UNCASED), str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["format"] == "tensorflow" and summary["architecture"] == "BertForPreTraining"
    assert summary["max_abs_diff"] == 0.0 and summary["do_lower_case"] is True
    assert {p.name for p in out.iterdir()} >= {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"}
    transformers = pytest.importorskip("transformers")
    theirs = transformers.BertForPreTraining.from_pretrained(out)
    ours = BertForPreTraining.from_pretrained(UNCASED)
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    with torch.no_grad():
        a, b = ours(ids).seq_relationship_logits, theirs(ids).seq_relationship_logits
    assert torch.allclose(a, b, atol=1e-5)
    assert json.loads((out / "tokenizer_config.json").read_text())["do_lower_case"] is True


def test_casing_comes_from_the_release_name_or_is_asked_for(tmp_path, capsys):
    assert main(["convert", str(CASED), str(tmp_path / "c"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["do_lower_case"] is False
    nameless = tmp_path / "my_bert"
    nameless.mkdir()
    for f in UNCASED.iterdir():
        (nameless / f.name).write_bytes(f.read_bytes())
    assert main(["convert", str(nameless), str(tmp_path / "n")]) == 2
    assert "--uncased / --cased" in capsys.readouterr().err
    assert main(["convert", str(nameless), str(tmp_path / "n"), "--uncased"]) == 0


def test_bf16_halves_the_file_and_reports_the_rounding(tmp_path, capsys):
    assert main(["convert", str(UNCASED), str(tmp_path / "full"), "--json"]) == 0
    full = json.loads(capsys.readouterr().out)
    assert main(["convert", str(UNCASED), str(tmp_path / "half"), "--dtype", "bf16", "--json"]) == 0
    half = json.loads(capsys.readouterr().out)
    size = {k: (tmp_path / k / "model.safetensors").stat().st_size for k in ("full", "half")}
    assert size["half"] < 0.55 * size["full"]
    assert 0 < half["max_abs_diff"] < 0.05 and full["max_abs_diff"] == 0.0
    config = json.loads((tmp_path / "half" / "config.json").read_text())
    assert config["torch_dtype"] == "bfloat16"
    assert BertForPreTraining.from_pretrained(tmp_path / "half").bert.embeddings.word_embeddings.weight.dtype \
        == torch.float32                                             # loaded back as float32
