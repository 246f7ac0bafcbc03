"""Opening BERTs by Hub name (bertkit.common.hub), against a local Hub emulator: no test reaches the network.

The `hub` fixture (tests/hub_server.py) serves repos the way huggingface.co does and points
huggingface_hub at it; repos are built here from a tiny random BERT.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import types
from pathlib import Path

import pytest

from hub_server import HubServer, hub  # noqa: F401  (the fixture)

pytest.importorskip("huggingface_hub")

from bertkit.common.hub import HubError, is_hub_name, resolve_model_dir  # noqa: E402

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "cat", "dog", "sat", "on", "mat", "##s",
         "run", "##ning", "big", "small", "red", "blue", ".", ",", "is", "was", "and", "to", "of", "in", "it",
         "he", "she"]
NEEDED = {"config.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "model.safetensors"}


# --------------------------------------------------------------------------- repo contents
@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """{"single": files of a tiny BERT repo, "sharded": the same model in 3 safetensors shards}."""
    transformers = pytest.importorskip("transformers")
    import torch

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)
    model = transformers.BertForPreTraining(config)
    root = tmp_path_factory.mktemp("tiny")
    model.save_pretrained(root / "single")                       # safetensors (the only format in v5)
    model.save_pretrained(root / "sharded", max_shard_size="10KB")
    tokenizer = {"vocab.txt": "".join(t + "\n" for t in VOCAB),
                 "tokenizer_config.json": json.dumps({"do_lower_case": True, "model_max_length": 32}),
                 "special_tokens_map.json": json.dumps({"unk_token": "[UNK]", "pad_token": "[PAD]"})}
    out = {}
    for kind in ("single", "sharded"):
        out[kind] = {p.name: p.read_bytes() for p in (root / kind).iterdir()}
        out[kind].update({k: v.encode() for k, v in tokenizer.items()})
    assert len([n for n in out["sharded"] if n.endswith(".safetensors")]) > 1
    return out


def repo(files: dict, drop=(), config: dict | None = None, **extra) -> dict:
    """A copy of `files` without `drop`, with config.json keys replaced by `config`, plus `extra` files."""
    out = {k: v for k, v in files.items() if k not in drop}
    if config:
        out["config.json"] = json.dumps({**json.loads(files["config.json"]), **config}).encode()
    out.update({k.replace("__", "."): v for k, v in extra.items()})
    return out


def wordpiece_tokenizer_json() -> bytes:
    """A tokenizer.json (as the `tokenizers` library writes it) with the same vocabulary, no vocab.txt."""
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer(tokenizers.models.WordPiece({t: i for i, t in enumerate(VOCAB)}, unk_token="[UNK]"))
    tok.normalizer = tokenizers.normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    data = json.loads(tok.to_str())
    data["model"]["vocab"] = dict(reversed(list(data["model"]["vocab"].items())))   # ids, not order, count
    return json.dumps(data).encode()


def expect_error(reason: str, *args, **kwargs) -> HubError:
    with pytest.raises(HubError) as info:
        resolve_model_dir(*args, **kwargs)
    err = info.value
    assert err.reason == reason, str(err)
    assert "\n" not in str(err) and isinstance(err, FileNotFoundError)
    return err


def same_tensors(a: Path, b: Path) -> bool:
    import torch
    from safetensors.torch import load_file
    x, y = load_file(a), load_file(b)
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


# --------------------------------------------------------------------------- downloading
def test_downloads_only_what_bert_needs_and_loads_with_transformers(hub, tiny):
    from transformers import BertForPreTraining
    files = repo(tiny["single"], README__md=b"# tiny", pytorch_model__bin=b"\x80" * 500, tf_model__h5=b"h" * 300)
    commit = hub.add_repo("org/tiny-bert", {"main": files})["main"]
    path = resolve_model_dir("org/tiny-bert")
    assert path.name == commit and path.parent.name == "snapshots"
    assert path.is_relative_to(hub.cache)
    assert set(os.listdir(path)) == NEEDED
    assert sorted(hub.downloads()) == sorted(NEEDED)
    assert hub.touched("pytorch_model.bin") == [] and hub.touched("tf_model.h5") == []
    assert (path / "vocab.txt").read_text().split() == VOCAB
    model = BertForPreTraining.from_pretrained(path)            # a complete model directory
    assert model.config.hidden_size == 16
    import torch
    from safetensors.torch import load_file
    original = load_file(Path(path / "model.safetensors"))
    key = "bert.embeddings.word_embeddings.weight"
    assert torch.equal(model.state_dict()[key], original[key])


def test_lfs_weights_come_from_the_cdn_without_the_token(hub, tiny):
    hub.add_repo("org/gated-tiny", {"main": tiny["single"]}, gated=True, tokens={"hf_good"})
    resolve_model_dir("org/gated-tiny", token="hf_good")
    head = [r for r in hub.touched("model.safetensors") if r.server == "hub"]
    cdn = [r for r in hub.touched("model.safetensors") if r.server == "cdn"]
    assert head and all(r.authorization == "Bearer hf_good" and r.status == 302 for r in head)
    assert len(cdn) == 1 and cdn[0].authorization is None and cdn[0].body_bytes > 0


def test_cache_hit_downloads_nothing(hub, tiny):
    hub.add_repo("org/tiny-bert", {"main": tiny["single"]})
    first = resolve_model_dir("org/tiny-bert")
    hub.clear()
    assert resolve_model_dir("org/tiny-bert") == first
    assert hub.downloads() == []
    assert all(r.method == "HEAD" or r.path.startswith("/api/models/") for r in hub.requests), hub.requests
    assert len(hub.requests) == 1               # where is main now? (the file tree of that commit is cached)


@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE env", "huggingface_hub.constants", "local_files_only"])
def test_offline_after_cache_makes_no_request(hub, tiny, monkeypatch, how):
    from huggingface_hub import constants
    hub.add_repo("org/tiny-bert", {"main": tiny["single"]})
    first = resolve_model_dir("org/tiny-bert")
    hub.clear()
    if how == "HF_HUB_OFFLINE env":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")                # set after import: bertkit still sees it
    elif how == "huggingface_hub.constants":
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)   # what HF_HUB_OFFLINE=1 at import gives
    assert resolve_model_dir("org/tiny-bert", local_files_only=True if how == "local_files_only" else None) == first
    assert hub.requests == []


@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE env", "local_files_only"])
def test_offline_and_not_cached_says_never_downloaded(hub, tiny, monkeypatch, how):
    hub.add_repo("org/tiny-bert", {"main": tiny["single"]})
    if how == "HF_HUB_OFFLINE env":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        err = expect_error("offline", "org/tiny-bert")
        assert "HF_HUB_OFFLINE" in str(err)
    else:
        err = expect_error("offline", "org/tiny-bert", local_files_only=True)
        assert "local_files_only" in str(err)
    assert "never downloaded" in str(err) and "local model directory" in str(err)
    assert hub.requests == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_hub_unreachable_uses_cache_or_says_so(hub, tiny, monkeypatch):
    from huggingface_hub import constants
    from huggingface_hub.utils import _http
    hub.add_repo("org/tiny-bert", {"main": tiny["single"]})
    hub.add_repo("org/other", {"main": tiny["single"]})
    cached = resolve_model_dir("org/tiny-bert")
    dead = f"http://127.0.0.1:{_closed_port()}"                  # nothing listens there
    monkeypatch.setattr(constants, "ENDPOINT", dead)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", dead + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(_http, "time", types.SimpleNamespace(sleep=lambda s: None))   # skip retry back-off
    assert resolve_model_dir("org/tiny-bert") == cached
    err = expect_error("unreachable", "org/other")
    assert "could not reach the Hub" in str(err) and "not in the cache" in str(err)


def test_hub_outage_uses_cache_or_says_so(hub, tiny, monkeypatch):
    from huggingface_hub.utils import _http
    hub.add_repo("org/tiny-bert", {"main": tiny["single"]})
    hub.add_repo("org/other", {"main": tiny["single"]})
    cached = resolve_model_dir("org/tiny-bert")
    monkeypatch.setattr(_http, "time", types.SimpleNamespace(sleep=lambda s: None))   # skip retry back-off
    hub.outage = 503
    assert resolve_model_dir("org/tiny-bert") == cached
    expect_error("unreachable", "org/other")


def test_revision_pinning(hub, tiny, monkeypatch):
    main = repo(tiny["single"], config={"hidden_dropout_prob": 0.1})
    v1 = repo(tiny["single"], config={"hidden_dropout_prob": 0.3})
    commits = hub.add_repo("org/pinned", {"main": main, "v1": v1})
    assert commits["main"] != commits["v1"]
    config = lambda p: json.loads((p / "config.json").read_text())["hidden_dropout_prob"]   # noqa: E731
    tagged = resolve_model_dir("org/pinned", revision="v1")
    assert tagged.name == commits["v1"] and config(tagged) == 0.3
    head = resolve_model_dir("org/pinned")
    assert head.name == commits["main"] and config(head) == 0.1
    hub.clear()
    assert resolve_model_dir("org/pinned", revision=commits["v1"]) == tagged
    assert hub.requests == []                                   # a cached commit is never re-checked
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model_dir("org/pinned", revision="v1") == tagged    # refs/v1 was recorded
    assert resolve_model_dir("org/pinned") == head
    monkeypatch.delenv("HF_HUB_OFFLINE")
    err = expect_error("revision_not_found", "org/pinned", revision="nope")
    assert "'nope'" in str(err) and type(err.__cause__).__name__ == "RevisionNotFoundError"


# --------------------------------------------------------------------------- files missing or refused
def test_no_vocab_is_refused_before_weights(hub, tiny):
    hub.add_repo("org/no-vocab", {"main": repo(tiny["single"], drop=["vocab.txt"])})
    err = expect_error("no_vocab", "org/no-vocab")
    assert "no vocab.txt" in str(err)
    assert hub.touched("model.safetensors") == []


def test_vocab_txt_is_derived_from_tokenizer_json(hub, tiny, monkeypatch):
    files = repo(tiny["single"], drop=["vocab.txt", "tokenizer_config.json"],
                 tokenizer__json=wordpiece_tokenizer_json())
    hub.add_repo("org/fast-only", {"main": files})
    path = resolve_model_dir("org/fast-only")
    assert path.parent.name == "bertkit"                        # bertkit's folder, beside snapshots/
    snapshot = path.parent.parent / "snapshots" / path.name
    assert (path / "vocab.txt").read_text().split("\n")[:-1] == VOCAB
    assert not (snapshot / "vocab.txt").exists()                # huggingface_hub's files untouched
    assert (path / "model.safetensors").resolve() == (snapshot / "model.safetensors").resolve()
    assert json.loads((path / "tokenizer_config.json").read_text())["do_lower_case"] is True
    try:
        from bertkit.text.tokenizer import BertTokenizer
    except ImportError:                                          # before the package restructure
        from bertkit.tokenizer import BertTokenizer
    assert BertTokenizer.from_pretrained(path).tokenize("The cats") == ["the", "cat", "##s"]
    hub.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model_dir("org/fast-only") == path and hub.requests == []


def test_no_config_json(hub, tiny):
    hub.add_repo("org/no-config", {"main": repo(tiny["single"], drop=["config.json"])})
    expect_error("no_config", "org/no-config")


@pytest.mark.parametrize("weights", ["tf_model.h5", "flax_model.msgpack"])
def test_tensorflow_or_flax_only_is_refused_unread(hub, tiny, weights):
    files = repo(tiny["single"], drop=["model.safetensors"])
    files[weights] = b"\x89HDF" + b"x" * 2000                   # never looked at
    hub.add_repo("org/old-bert", {"main": files})
    err = expect_error("other_weights", "org/old-bert")
    msg = str(err)
    assert weights in msg and "model.safetensors or pytorch_model.bin" in msg
    assert "from_tf=True" in msg and "save_pretrained" in msg
    assert hub.touched(weights) == [] and hub.bytes_sent(weights) == 0
    tokenizer_only = resolve_model_dir("org/old-bert", need_weights=False)
    assert not (tokenizer_only / weights).exists() and (tokenizer_only / "vocab.txt").is_file()


def test_no_weights_at_all(hub, tiny):
    hub.add_repo("org/no-weights", {"main": repo(tiny["single"], drop=["model.safetensors"])})
    err = expect_error("no_weights", "org/no-weights")
    assert "need_weights=False" in str(err)


def test_not_a_bert_is_refused_before_anything_else(hub, tiny):
    hub.add_repo("org/roberta", {"main": repo(tiny["single"], config={"model_type": "roberta"})})
    err = expect_error("not_bert", "org/roberta")
    assert "roberta" in str(err)
    assert hub.touched("model.safetensors") == [] and hub.touched("vocab.txt") == []
    assert hub.downloads() == ["config.json"]


def test_sharded_safetensors(hub, tiny):
    from transformers import BertForPreTraining
    files = tiny["sharded"]
    shards = sorted(n for n in files if n.endswith(".safetensors"))
    hub.add_repo("org/sharded", {"main": files})
    path = resolve_model_dir("org/sharded")
    assert set(shards) | {"model.safetensors.index.json"} <= set(os.listdir(path))
    assert set(shards) <= set(hub.downloads())
    model = BertForPreTraining.from_pretrained(path)
    assert model.config.hidden_size == 16


# --------------------------------------------------------------------------- access
def test_repo_not_found_mentions_tokens(hub):
    for name in ("org/nope", "nope-model"):
        err = expect_error("repo_not_found", name)
        assert "not found" in str(err) and "token" in str(err) and "hf auth login" in str(err)
        assert type(err.__cause__).__name__ == "RepositoryNotFoundError"


def test_gated_repo_needs_a_token(hub, tiny, monkeypatch):
    hub.add_repo("org/gated", {"main": tiny["single"]}, gated=True, tokens={"hf_good"})
    hub.add_repo("org/other", {"main": tiny["single"]}, tokens={"hf_other"})
    err = expect_error("gated", "org/gated")
    assert "gated" in str(err) and "token" in str(err) and type(err.__cause__).__name__ == "GatedRepoError"
    assert any(r.status == 401 for r in hub.requests)
    expect_error("gated", "org/gated", token="hf_other")          # a valid token without access: 403
    expect_error("auth", "org/gated", token="hf_wrong")           # an unknown token: 401 invalid credentials
    assert (resolve_model_dir("org/gated", token="hf_good") / "model.safetensors").is_file()


def test_token_from_hf_token_env(hub, tiny, monkeypatch):
    hub.add_repo("org/gated", {"main": tiny["single"]}, gated=True, tokens={"hf_good"})
    monkeypatch.setenv("HF_TOKEN", "hf_good")                   # read by huggingface_hub at each call
    assert (resolve_model_dir("org/gated") / "config.json").is_file()


def test_private_repo(hub, tiny):
    hub.add_repo("org/private", {"main": tiny["single"]}, private=True, tokens={"hf_good"})
    err = expect_error("repo_not_found", "org/private")
    assert "private" in str(err) and "token" in str(err)
    assert (resolve_model_dir("org/private", token="hf_good") / "vocab.txt").is_file()


# --------------------------------------------------------------------------- local paths and names
def test_local_directory_wins(hub, tiny, tmp_path, monkeypatch):
    hub.add_repo("org/tiny-bert", {"main": tiny["single"]})
    hub.add_repo("bert-base-uncased", {"main": tiny["single"]})
    monkeypatch.chdir(tmp_path)
    for name in ("org/tiny-bert", "bert-base-uncased"):
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "config.json").write_text("{}")
        assert resolve_model_dir(name) == Path(name)
        assert resolve_model_dir(Path(name)) == Path(name)
        assert not is_hub_name(name)
    assert hub.requests == []


@pytest.mark.parametrize("name", ["./nope", "../nope", "/no/such/dir", "~/no-such-bert-dir", "a/b/c",
                                  "org/name/config.json", "model.safetensors", "bert\\base", "C:/models/bert",
                                  "no-such-dir/", ""])
def test_missing_path_like_string_is_not_found_without_request(hub, name):
    err = expect_error("path_not_found", name)
    assert "not found" in str(err)
    assert hub.requests == []


def test_missing_path_object_is_never_a_hub_name(hub):
    expect_error("path_not_found", Path("org/tiny-bert"))
    assert hub.requests == []


@pytest.mark.parametrize("name", ["foo--bar", "a b", "org/-name", "org/name.git", "café"])
def test_invalid_repo_id_is_not_sent(hub, name):
    expect_error("invalid_name", name)
    assert hub.requests == []


def test_is_hub_name():
    for name in ("bert-base-uncased", "klue/bert-base", "google-bert/bert-base-multilingual-cased"):
        assert is_hub_name(name), name
    for name in ("./bert", "/models/bert", "~/bert", "a/b/c", "bert/vocab.txt", "foo--bar", "", Path("klue/bert")):
        assert not is_hub_name(name), name


def test_without_huggingface_hub(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)     # "not installed"
    with pytest.raises(HubError) as info:
        resolve_model_dir("klue/bert-base")
    assert "pip install 'bertkit[hub]'" in str(info.value) and info.value.reason == "no_huggingface_hub"
    assert resolve_model_dir(tmp_path) == tmp_path                 # local paths need nothing


def test_progress_bars_can_be_turned_off(hub, tiny, monkeypatch):
    import huggingface_hub
    seen = []
    real = huggingface_hub.snapshot_download

    def spy(*args, **kwargs):
        seen.append(kwargs.get("tqdm_class"))
        return real(*args, **kwargs)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", spy)
    hub.add_repo("org/tiny-bert", {"main": tiny["single"]})
    resolve_model_dir("org/tiny-bert", progress=False)
    assert seen and all(c is not None and c(total=3).disable for c in seen)
    seen.clear()
    resolve_model_dir("org/tiny-bert")
    assert seen and all(c is None for c in seen)                  # huggingface_hub's own bars


def test_emulator_errors_map_to_huggingface_hub_exceptions(hub, tiny):
    """The emulator's answers are the ones huggingface_hub turns into its own exception classes."""
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub import errors as e
    hub.add_repo("org/tiny-bert", {"main": tiny["single"]})
    hub.add_repo("org/gated", {"main": tiny["single"]}, gated=True, tokens={"hf_good"})
    cases = [(e.RepositoryNotFoundError, lambda: hf_hub_download("org/nope", "config.json")),
             (e.RevisionNotFoundError, lambda: hf_hub_download("org/tiny-bert", "config.json", revision="v9")),
             (e.RemoteEntryNotFoundError, lambda: hf_hub_download("org/tiny-bert", "nope.txt")),
             (e.GatedRepoError, lambda: hf_hub_download("org/gated", "config.json")),
             (e.RepositoryNotFoundError, lambda: HfApi().model_info("org/nope")),
             (e.RevisionNotFoundError, lambda: HfApi().model_info("org/tiny-bert", revision="v9"))]
    for exc, call in cases:
        with pytest.raises(exc):
            call()
    info = HfApi().model_info("org/tiny-bert", files_metadata=True)
    sizes = {s.rfilename: s.size for s in info.siblings}
    assert sizes["vocab.txt"] == len(tiny["single"]["vocab.txt"])
    assert next(s for s in info.siblings if s.rfilename == "model.safetensors").lfs is not None


def test_network_guard_refuses_the_internet(hub):
    with pytest.raises(OSError):
        socket.create_connection(("huggingface.co", 443), timeout=1)
    with pytest.raises(OSError):
        socket.create_connection(("203.0.113.7", 443), timeout=1)
    assert len(hub.blocked) == 2
    hub.blocked.clear()


# --------------------------------------------------------------------------- failing fast
def test_a_mistyped_local_folder_is_not_found_at_once_with_did_you_mean(hub, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("sst2", "quickstart", "conll"):
        (tmp_path / "runs" / name).mkdir(parents=True)
    err = expect_error("path_not_found", "runs/sst")
    assert "did you mean 'runs/sst2'?" in str(err) and "quickstart" in str(err)
    err = expect_error("path_not_found", "runs/nope")
    assert "'runs/nope' does not exist" in str(err) and "did you mean" not in str(err)
    assert hub.requests == []


def _count_sleeps(monkeypatch) -> list:
    from huggingface_hub.utils import _http
    sleeps: list = []
    monkeypatch.setattr(_http, "time", types.SimpleNamespace(sleep=sleeps.append))   # back-off waits, recorded
    return sleeps


def test_unreachable_hub_fails_on_the_first_attempt(hub, tiny, monkeypatch):
    from huggingface_hub import constants
    dead = f"http://127.0.0.1:{_closed_port()}"                  # nothing listens there
    monkeypatch.setattr(constants, "ENDPOINT", dead)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", dead + "/{repo_id}/resolve/{revision}/{filename}")
    sleeps = _count_sleeps(monkeypatch)
    err = expect_error("unreachable", "org/never-cached")
    assert "could not reach the Hub" in str(err) and sleeps == []          # no retry, no back-off


def test_hub_outage_fails_on_the_first_request(hub, tiny, monkeypatch):
    hub.add_repo("org/other", {"main": tiny["single"]})
    sleeps = _count_sleeps(monkeypatch)
    hub.outage = 503
    expect_error("unreachable", "org/other")
    assert len(hub.requests) == 1 and sleeps == []
