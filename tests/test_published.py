"""Published BERTs through bertkit's own loaders: Google's TensorFlow releases and Hub names.

The TensorFlow fixtures (tests/fixtures/tf, made by real TensorFlow with make_tf_fixtures.py)
carry the outputs TensorFlow itself computed; bertkit's models, loaded with plain
`from_pretrained(folder)`, must reproduce them.  Hub names go through a local Hub emulator
(tests/hub_server.py): no test reaches the network.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from bertkit import BertForMaskedLM, BertForPreTraining, BertForSequenceClassification, BertModel, pipeline
from bertkit.modeling.pretrained import open_checkpoint
from hub_server import hub  # noqa: F401  (the fixture)

FIXTURES = Path(__file__).parent / "fixtures" / "tf"
RELEASES = sorted(p for p in FIXTURES.iterdir() if p.is_dir())
TOLERANCE = 1e-5


def tf_inputs(folder: Path) -> tuple[dict, np.lib.npyio.NpzFile]:
    saved = np.load(folder / "tf_outputs.npz")
    inputs = {k: torch.from_numpy(saved[k]).long() for k in ("input_ids", "token_type_ids", "attention_mask")}
    return inputs, saved


def real(saved, array: np.ndarray) -> np.ndarray:
    """Only the positions of real tokens (TensorFlow computes pads too; bertkit leaves them 0)."""
    return array[saved["attention_mask"].astype(bool)]


@pytest.mark.parametrize("folder", RELEASES, ids=lambda p: p.name)
def test_googles_release_loads_with_from_pretrained_and_matches_tensorflow(folder):
    inputs, saved = tf_inputs(folder)
    model = BertForPreTraining.from_pretrained(folder)
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
        encoder = BertModel.from_pretrained(folder)(**inputs)
    diffs = {
        "encoder": np.abs(real(saved, encoder.last_hidden_state.numpy()) - real(saved, saved["sequence_output"])).max(),
        "pooled": np.abs(encoder.pooler_output.numpy() - saved["pooled_output"]).max(),
        "mlm": np.abs(real(saved, out.prediction_logits.numpy()) - real(saved, saved["mlm_logits"])).max(),
        "nsp": np.abs(out.seq_relationship_logits.numpy() - saved["nsp_logits"]).max(),
    }
    print(folder.name, {k: f"{v:.2e}" for k, v in diffs.items()})
    assert max(diffs.values()) <= TOLERANCE, diffs


def test_open_checkpoint_knows_a_tf_release_and_its_heads():
    ckpt = open_checkpoint(RELEASES[0])
    assert ckpt.format == "tensorflow" and ckpt.architecture == "BertForPreTraining"
    assert ckpt.has_mlm_head and ckpt.has_nsp_head
    assert isinstance(ckpt.model(), BertForPreTraining)


def test_a_task_head_on_a_tf_release_is_new_and_said_so():
    with pytest.warns(UserWarning, match="newly initialized.*classifier"):
        model = BertForSequenceClassification.from_pretrained(RELEASES[0], num_labels=3)
    assert model.classifier.weight.shape == (3, model.config.hidden_size)
    assert torch.isfinite(model.classifier.weight).all() and model.classifier.weight.std() > 0


def test_loading_keeps_one_copy_parameters_are_the_loaded_tensors(tmp_path):
    """Built on the meta device: no parameter is left on meta, tied weights stay tied."""
    model = BertForMaskedLM.from_pretrained(RELEASES[0])
    assert not any(p.is_meta for p in model.parameters())
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    model.save_pretrained(tmp_path)
    again = BertForMaskedLM.from_pretrained(tmp_path)
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name


# ----------------------------------------------------------------------------- Hub names
@pytest.fixture
def published(hub, tmp_path):
    """A tiny BertForPreTraining repo on the emulated Hub, two revisions."""
    pytest.importorskip("huggingface_hub")
    torch.manual_seed(0)
    repo = {}
    for name, layers in (("main", 2), ("v1", 1)):
        src = tmp_path / name
        model = BertForPreTraining.from_pretrained(RELEASES[0], num_hidden_layers=layers) if layers == 2 else \
            BertForPreTraining(BertForPreTraining.from_pretrained(RELEASES[0]).config.replace(num_hidden_layers=1))
        model.save_pretrained(src)
        (src / "vocab.txt").write_bytes((RELEASES[0] / "vocab.txt").read_bytes())
        (src / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
        repo[name] = {p.name: p.read_bytes() for p in src.iterdir()}
    hub.add_repo("google/tiny-bert", repo)
    return hub


def test_from_pretrained_and_pipeline_take_a_hub_name(published):
    model = BertForPreTraining.from_pretrained("google/tiny-bert")
    assert model.config.num_hidden_layers == 2
    old = BertModel.from_pretrained("google/tiny-bert", revision="v1")
    assert old.config.num_hidden_layers == 1
    fill = pipeline("fill-mask", model="google/tiny-bert")
    assert len(fill("the cat sat on the [MASK] .", top_k=3)) == 3
    before = len(published.requests)
    BertModel.from_pretrained("google/tiny-bert", local_files_only=True)        # from the cache only
    assert len(published.requests) == before


def test_a_hub_name_that_is_not_there_is_one_clear_error(published):
    with pytest.raises(FileNotFoundError, match="not found"):
        BertModel.from_pretrained("google/no-such-bert")


def test_a_hub_name_in_a_fresh_process_gives_the_hub_error_not_a_crash(tmp_path):
    """huggingface_hub's submodules are lazy: a fresh process must still get bertkit's one-line error."""
    import os
    import subprocess
    import sys
    code = ("from bertkit.modeling.pretrained import open_checkpoint\n"
            "try:\n    open_checkpoint('google-bert/bert-base-uncased')\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120).stdout
    assert out.startswith("HubError") and "never downloaded" in out, out


def test_the_tokenizer_opens_the_same_names(published, minilm_path, tmp_path):
    from bertkit import BertTokenizer
    hub_tok = BertTokenizer.from_pretrained("google/tiny-bert")
    assert hub_tok.vocab_size == len((RELEASES[0] / "vocab.txt").read_text().splitlines()) and hub_tok.do_lower_case
    assert BertTokenizer.from_pretrained("minilm").vocab_size == 30522
    assert BertTokenizer.from_pretrained(RELEASES[0]).do_lower_case is False          # cased_L-2_H-32_A-4
    assert BertTokenizer.from_pretrained(RELEASES[1]).do_lower_case is True           # uncased_L-2_H-32_A-2
    nameless = tmp_path / "my_bert"
    nameless.mkdir()
    for f in RELEASES[1].iterdir():
        (nameless / f.name).write_bytes(f.read_bytes())
    with pytest.raises(ValueError, match="neither 'uncased' nor 'cased'"):
        BertTokenizer.from_pretrained(nameless)
    assert BertTokenizer.from_pretrained(nameless, do_lower_case=False).do_lower_case is False


def test_fill_mask_on_a_model_without_an_mlm_head_says_its_answers_are_random(minilm_path):
    with pytest.warns(UserWarning, match="no trained masked-LM head.*random.*bert-base-uncased"):
        pipeline("fill-mask", model=minilm_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                       # a release with both heads: nothing to say
        pipeline("fill-mask", model=RELEASES[1])("the [MASK] .")
        pipeline("next-sentence", model=RELEASES[1])(("the world", "of the"))
