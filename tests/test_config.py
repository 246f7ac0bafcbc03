"""BertConfig: defaults, presets, json round trip, reference compatibility, validation."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from bertkit.common.errors import InputError, NotFoundError
from bertkit.modeling.config import BertConfig
from bertkit.modeling.encoder import activation


def test_defaults_are_bert_base():
    c = BertConfig()
    assert (c.vocab_size, c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size) == \
        (30522, 768, 12, 12, 3072)
    assert c.hidden_act == "gelu" and c.layer_norm_eps == 1e-12 and c.max_position_embeddings == 512
    assert c.head_dim == 64
    assert c.num_labels == 2 and c.id2label == {0: "LABEL_0", 1: "LABEL_1"}
    assert c.label2id == {"LABEL_0": 0, "LABEL_1": 1}


def test_frozen_and_replace():
    c = BertConfig.preset("tiny")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.hidden_size = 3
    d = c.replace(num_hidden_layers=3)
    assert d.num_hidden_layers == 3 and c.num_hidden_layers == 2
    three = c.replace(num_labels=3)
    assert three.num_labels == 3 and list(three.id2label) == [0, 1, 2]
    with pytest.raises(TypeError, match="no field"):
        c.replace(hiden_size=3)


@pytest.mark.parametrize("name,layers,hidden", [
    ("tiny", 2, 128), ("mini", 4, 256), ("small", 4, 512), ("medium", 8, 512), ("base", 12, 768), ("large", 24, 1024)])
def test_named_presets(name, layers, hidden):
    c = BertConfig.preset(name)
    assert (c.num_hidden_layers, c.hidden_size) == (layers, hidden)
    assert c.num_attention_heads == hidden // 64 and c.intermediate_size == 4 * hidden and c.head_dim == 64


def test_grid_of_24_small_berts():
    grid = [n for n in BertConfig.preset_names() if n.startswith("L")]
    assert len(grid) == 24
    for name in grid:
        c = BertConfig.preset(name)
        assert name == f"L{c.num_hidden_layers}-H{c.hidden_size}"
        assert c.num_attention_heads == c.hidden_size // 64 and c.intermediate_size == 4 * c.hidden_size
    assert BertConfig.preset("L4-H256") == BertConfig.preset("mini")
    assert BertConfig.preset("tiny", vocab_size=1000).vocab_size == 1000


def test_unknown_preset_lists_choices():
    with pytest.raises(InputError, match="tiny.*L2-H128"):
        BertConfig.preset("L3-H128")


def test_json_round_trip_keeps_extra(tmp_path):
    c = BertConfig.preset("mini", id2label={0: "neg", 1: "pos", 2: "neutral"},
                          problem_type="single_label_classification", extra={"my_field": [1, 2]})
    c.save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["my_field"] == [1, 2] and data["model_type"] == "bert"
    assert data["id2label"] == {"0": "neg", "1": "pos", "2": "neutral"}
    back = BertConfig.from_pretrained(tmp_path)
    assert back == c and back.num_labels == 3
    assert not list(tmp_path.glob("*.tmp")), "temporary file left behind"


def test_loads_minilm_config_and_keeps_its_extra_fields(minilm_path, tmp_path):
    c = BertConfig.from_pretrained(minilm_path)
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size) == (384, 6, 12, 1536)
    original = json.loads((minilm_path / "config.json").read_text())
    for key in ("_name_or_path", "architectures", "gradient_checkpointing", "transformers_version", "use_cache"):
        assert c.extra[key] == original[key]
    c.save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    for key, value in original.items():
        assert written[key] == value, key


def test_reference_reads_our_config_and_we_read_its(tmp_path):
    transformers = pytest.importorskip("transformers")
    ours = BertConfig.preset("tiny", vocab_size=99, num_labels=1, hidden_act="gelu_new", classifier_dropout=0.2)
    ours.save_pretrained(tmp_path / "a")
    ref = transformers.BertConfig.from_pretrained(tmp_path / "a")
    for f in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
              "hidden_act", "num_labels", "classifier_dropout", "layer_norm_eps", "pad_token_id"):
        assert getattr(ref, f) == getattr(ours, f), f
    ref = transformers.BertConfig(vocab_size=77, hidden_size=64, num_attention_heads=4, num_hidden_layers=3,
                                  intermediate_size=100, id2label={0: "a", 1: "b", 2: "c"})
    ref.save_pretrained(tmp_path / "b")
    back = BertConfig.from_pretrained(tmp_path / "b")
    assert (back.vocab_size, back.hidden_size, back.num_hidden_layers, back.num_labels) == (77, 64, 3, 3)
    assert back.id2label == {0: "a", 1: "b", 2: "c"} and "transformers_version" in back.extra


def test_overrides_in_from_pretrained(tmp_path):
    BertConfig.preset("tiny").save_pretrained(tmp_path)
    c = BertConfig.from_pretrained(tmp_path, num_labels=5)
    assert c.num_labels == 5 and len(c.id2label) == 5


@pytest.mark.parametrize("fields,message", [
    (dict(hidden_size=100, num_attention_heads=12), "not divisible by num_attention_heads"),
    (dict(vocab_size=0), "vocab_size must be a positive integer"),
    (dict(hidden_size=-8), "hidden_size must be a positive integer"),
    (dict(num_hidden_layers=2.5), "num_hidden_layers must be a positive integer"),
    (dict(hidden_act="swish"), "hidden_act='swish' is not supported"),
    (dict(position_embedding_type="relative_key"), "absolute"),
    (dict(hidden_dropout_prob=1.5), r"hidden_dropout_prob must be in \[0, 1\)"),
    (dict(pad_token_id=40000), "outside the vocabulary"),
    (dict(problem_type="ranking"), "problem_type"),
    (dict(extra={"is_decoder": True}), "encoder only"),
    (dict(extra={"model_type": "gpt2"}), "not 'bert'"),
])
def test_validation_errors_say_what_to_do(fields, message):
    with pytest.raises(InputError, match=message):
        BertConfig(**fields)


def test_missing_or_broken_config_file(tmp_path):
    with pytest.raises(NotFoundError, match="config file not found.*must contain config.json"):
        BertConfig.from_json_file(tmp_path / "config.json")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        BertConfig.from_json_file(tmp_path / "config.json")


def test_json_file_is_written_whole_without_leftovers(tmp_path):
    BertConfig(vocab_size=99).to_json_file(tmp_path / "deep" / "config.json")
    assert [p.name for p in (tmp_path / "deep").iterdir()] == ["config.json"]
    assert BertConfig.from_json_file(tmp_path / "deep" / "config.json").vocab_size == 99


def test_absurd_sizes_refused_before_allocation():
    with pytest.raises(InputError, match="billion parameters.*refused before allocating"):
        BertConfig(hidden_size=65536, num_attention_heads=1024, num_hidden_layers=48, intermediate_size=262144)
    with pytest.raises(InputError, match="billion"):
        BertConfig(vocab_size=10**9)


def test_parameter_count_matches_the_model():
    from bertkit.modeling import BertModel
    c = BertConfig.preset("tiny", vocab_size=500)
    assert c.num_parameters() == BertModel(c).num_parameters()
    assert 105e6 < BertConfig().num_parameters() < 115e6  # BERT-base: ~110M


def test_activation_forms():
    x = torch.linspace(-4, 4, 101)
    exact = 0.5 * x * (1 + torch.erf(x / 2 ** 0.5))
    torch.testing.assert_close(activation("gelu")(x), exact)
    tanh = activation("gelu_new")(x)
    assert (tanh - exact).abs().max() > 1e-5, "tanh form must only be used when named"
    torch.testing.assert_close(tanh, activation("gelu_pytorch_tanh")(x))
    torch.testing.assert_close(activation("relu")(x), x.clamp(min=0))
