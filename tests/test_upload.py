"""Sharing a model: `push_to_hub` / `bertkit upload`, against the local Hub emulator (no network).

A real (tiny) fine-tuning run on NSMC reviews is uploaded; the repo, branch and commit the
emulator records are checked, the generated model card is read, and the model is opened back by
its Hub name and compared with the local one.
"""
from __future__ import annotations

import json
import warnings

import pytest
import torch
from conftest import data_file

from hub_server import hub  # noqa: F401  (the fixture)
from test_finetune import cli, finetune, head_lines, tiny_checkpoint

pytest.importorskip("huggingface_hub")

from bertkit import BertForMaskedLM, BertForSequenceClassification, BertTokenizer  # noqa: E402
from bertkit.apps.upload import UploadError, push_to_hub  # noqa: E402

WRITE = "hf_write"          # the emulator's token with write access
MODEL_FILES = {"config.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json",
               "model.safetensors", "task.json", "README.md"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """`bertkit finetune --task nsmc` of a tiny random BERT on 80 real reviews: (out folder, results)."""
    root = tmp_path_factory.mktemp("upload")
    train = head_lines(data_file("nsmc/ratings_train.txt"), root / "train.txt", 0, 80)
    tokenizer = BertTokenizer.from_pretrained("minilm")
    model = tiny_checkpoint(root / "tiny", tokenizer)
    results = finetune(model, "nsmc", train, root / "out", epochs=1)
    return root / "out", results


def card_of(hub, repo_id: str, revision: str = "main") -> str:
    return hub.repos[repo_id].revisions[revision]["README.md"].decode()


def test_upload_a_finetuned_folder_with_its_model_card(hub, run):
    out, results = run
    done = push_to_hub(out / "best", "me/bert-nsmc", token=WRITE)
    assert done["repo_id"] == "me/bert-nsmc" and done["revision"] == "main" and set(done["files"]) == MODEL_FILES
    commit = hub.commits_made[-1]
    assert set(commit["files"]) == MODEL_FILES                           # not results.json, not run/
    assert commit["summary"] == "Upload nsmc model with bertkit"
    card = card_of(hub, "me/bert-nsmc")
    front = card.split("---")[1]
    for line in ('library_name: "transformers"', 'pipeline_tag: "text-classification"', 'language: "ko"',
                 'metrics: ["accuracy"]'):
        assert line in front, card
    accuracy = results["best"]["accuracy"]
    assert f"| accuracy | {accuracy:.4f} |" in card
    assert "`negative`, `positive`" in card and f"`train.txt` ({results['train_examples']} examples)" in card
    assert "bertkit finetune --task nsmc --model" in card and "--epochs 1" in card
    from bertkit import __version__
    assert f"bertkit](https://pypi.org/project/bertkit/) {__version__}" in card
    local = BertForSequenceClassification.from_pretrained(out / "best")
    shared = BertForSequenceClassification.from_pretrained("me/bert-nsmc")   # public: no token needed
    for name, value in local.state_dict().items():
        assert torch.equal(value, shared.state_dict()[name]), name


def test_private_repo_on_a_branch_with_a_message(hub, run, tmp_path):
    out, _ = run
    done = push_to_hub(out / "best", "me/secret", private=True, revision="v1", commit_message="first try",
                       token=WRITE)
    assert done["revision"] == "v1"
    assert hub.repos["me/secret"].private and hub.repos["me/secret"].revisions["main"] == {}
    assert hub.commits_made[-1]["revision"] == "v1" and hub.commits_made[-1]["summary"] == "first try"
    model = BertForSequenceClassification.from_pretrained("me/secret", revision="v1", token=WRITE)
    assert model.config.num_labels == 2
    from bertkit.common.hub import HubError, resolve_model_dir
    with pytest.raises(HubError) as info:                                # private: not without the token
        resolve_model_dir("me/secret", revision="v1", cache_dir=tmp_path / "empty-cache")
    assert info.value.reason == "repo_not_found"


def test_upload_a_model_in_memory(hub, tmp_path):
    tokenizer = BertTokenizer.from_pretrained("minilm")
    model_dir = tiny_checkpoint(tmp_path / "m", tokenizer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)                     # "MLM head newly initialized"
        model = BertForMaskedLM.from_pretrained(model_dir)
    with pytest.raises(UploadError) as info:
        push_to_hub(model, "me/mlm", token=WRITE)
    assert info.value.reason == "not_a_model" and "tokenizer=" in str(info.value)
    done = push_to_hub(model, "me/mlm", tokenizer=tokenizer, token=WRITE, language="en")
    assert "model.safetensors" in done["files"] and "task.json" not in done["files"]
    card = card_of(hub, "me/mlm")
    assert 'pipeline_tag: "fill-mask"' in card and 'language: "en"' in card and "## Results" not in card


def test_cli_upload_and_its_one_line_errors(hub, run, capsys, monkeypatch):
    out, _ = run
    code, stdout, _ = cli(capsys, "upload", out / "best", "me/cli-bert", "--token", WRITE, "--json")
    assert code == 0 and json.loads(stdout)["repo_id"] == "me/cli-bert" and "me/cli-bert" in hub.repos
    cases = [((out, "me/x", "--token", WRITE), "is not a model folder", "did you mean"),       # the run, not best/
             ((out / "best", "me/x"), "needs a token with write access", "HF_TOKEN"),            # no token anywhere
             ((out / "best", "me/x", "--token", "hf_reader"), "refused to let this token write", "write access"),
             ((out / "best", "not a name", "--token", WRITE), "invalid Hub repo id", "namespace/name")]
    for argv, *words in cases:
        code, stdout, stderr = cli(capsys, "upload", *argv)
        message = stderr.strip()
        assert code == 2 and "\n" not in message and all(w in message for w in words), message
    assert "me/x" not in hub.repos
