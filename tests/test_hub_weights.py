"""Hub repos by weight layout: safetensors, pytorch_model.bin (single or sharded), the Hub's safetensors
conversion pull request, and a pickle that would run code — all against the local Hub emulator.

Repos published before 2023 (many Korean BERTs among them) ship only `pytorch_model.bin`: bertkit
downloads it and reads it with torch's weights-only unpickler, unless the Hub's conversion bot
has opened a safetensors pull request on that very commit, which is preferred, as in transformers.
"""
from __future__ import annotations

import json
import os

import pytest
import torch

from hub_server import hub  # noqa: F401  (the fixture)
from test_hub import VOCAB, repo, tiny  # noqa: F401  (the tiny-BERT repo fixture)

pytest.importorskip("huggingface_hub")

from bertkit import BertForPreTraining  # noqa: E402
from bertkit.common.hub import resolve_model_dir  # noqa: E402
from bertkit.modeling.checkpoint import CheckpointError  # noqa: E402
from bertkit.modeling.pretrained import open_checkpoint  # noqa: E402

KEY = "bert.embeddings.word_embeddings.weight"


def state_of(files: dict) -> dict:
    """The tensors of the tiny repo's model.safetensors (what every layout below must load to)."""
    from safetensors.torch import load
    return load(files["model.safetensors"])


def torch_bytes(obj, tmp_path, name="w.bin") -> bytes:
    path = tmp_path / name
    torch.save(obj, path)
    return path.read_bytes()


def bin_repo(tiny, tmp_path, shards: int = 1) -> dict:
    """The tiny BERT as pytorch_model.bin, or as `shards` .bin files with pytorch_model.bin.index.json."""
    state = state_of(tiny["single"])
    files = repo(tiny["single"], drop=["model.safetensors"])
    if shards == 1:
        files["pytorch_model.bin"] = torch_bytes(state, tmp_path)
        return files
    keys = sorted(state)
    weight_map = {}
    for i in range(shards):
        name = f"pytorch_model-{i + 1:05d}-of-{shards:05d}.bin"
        part = {k: state[k] for k in keys[i::shards]}
        files[name] = torch_bytes(part, tmp_path, name)
        weight_map.update({k: name for k in part})
    files["pytorch_model.bin.index.json"] = json.dumps({"metadata": {}, "weight_map": weight_map}).encode()
    return files


def assert_same_weights(model, tiny) -> None:
    original = state_of(tiny["single"])
    ours = model.state_dict()
    assert torch.equal(ours[KEY], original[KEY])
    assert torch.equal(ours["cls.seq_relationship.weight"], original["cls.seq_relationship.weight"])


@pytest.mark.parametrize("shards", [1, 3])
def test_bin_only_repo_loads_weights_only(hub, tiny, tmp_path, monkeypatch, shards):
    files = bin_repo(tiny, tmp_path, shards)
    hub.add_repo("org/old-bert", {"main": files})
    model = BertForPreTraining.from_pretrained("org/old-bert")
    assert_same_weights(model, tiny)
    path = resolve_model_dir("org/old-bert")
    assert path.parent.name == "snapshots"
    weights = {n for n in files if n.endswith(".bin")}
    assert weights <= set(os.listdir(path)) and weights <= set(hub.downloads())
    assert any("/discussions" in r.path for r in hub.requests)   # looked for a conversion first
    assert open_checkpoint("org/old-bert").format == "pytorch"
    hub.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model_dir("org/old-bert") == path and hub.requests == []


@pytest.mark.parametrize("layout", ["single", "sharded"])
def test_conversion_pr_is_preferred_to_the_bin(hub, tiny, tmp_path, monkeypatch, layout):
    hub.add_repo("org/old-bert", {"main": bin_repo(tiny, tmp_path)})
    converted = {n: v for n, v in tiny[layout].items() if "safetensors" in n}
    hub.add_pr("org/old-bert", {"README.md": b"# an unrelated PR"}, author="someone", title="Update README")
    ref = hub.add_pr("org/old-bert", converted)
    assert ref == "refs/pr/2"
    model = BertForPreTraining.from_pretrained("org/old-bert")
    assert_same_weights(model, tiny)
    assert hub.touched("pytorch_model.bin") == []                      # never downloaded
    path = resolve_model_dir("org/old-bert")
    assert path.parent.name == "bertkit"                                # bertkit's own folder for that commit
    assert json.loads((path / "conversion.json").read_text())["revision"] == ref
    assert set(converted) <= set(os.listdir(path)) and "vocab.txt" in os.listdir(path)
    assert open_checkpoint("org/old-bert").format == "safetensors"
    hub.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model_dir("org/old-bert") == path and hub.requests == []


@pytest.mark.parametrize("case", ["another author", "stale (made on an older commit)"])
def test_conversion_pr_that_cannot_be_trusted_is_ignored(hub, tiny, tmp_path, case):
    files = bin_repo(tiny, tmp_path)
    safetensors = {"model.safetensors": tiny["single"]["model.safetensors"]}
    if case == "another author":
        hub.add_repo("org/old-bert", {"main": files})
        hub.add_pr("org/old-bert", safetensors, author="mallory")
    else:
        hub.add_repo("org/old-bert", {"main": files})
        hub.add_pr("org/old-bert", safetensors)
        old_main = hub.repos["org/old-bert"].commits["main"]
        hub.put_commit("org/old-bert", "main", repo(files, config={"hidden_dropout_prob": 0.3}), parent=old_main)
    path = resolve_model_dir("org/old-bert")
    assert path.parent.name == "snapshots" and (path / "pytorch_model.bin").is_file()
    assert hub.touched("model.safetensors") == []


def test_a_pickle_that_would_run_code_is_refused(hub, tiny, tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').write('ran')",))

    state = {**state_of(tiny["single"]), "bert.pooler.dense.bias": Evil()}
    files = repo(tiny["single"], drop=["model.safetensors"])
    files["pytorch_model.bin"] = torch_bytes(state, tmp_path)
    hub.add_repo("org/evil-bert", {"main": files})
    with pytest.raises(CheckpointError) as info:
        BertForPreTraining.from_pretrained("org/evil-bert")
    message = str(info.value)
    assert "\n" not in message and "refused to load" in message and "could run arbitrary code" in message
    assert not marker.exists()
