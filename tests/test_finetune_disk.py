"""A finished fine-tune keeps the best model and the results, not the resume checkpoints (unless asked)."""
from __future__ import annotations

import warnings

import pytest

from bertkit.training.finetune import FinetuneSettings, FinetuneTraining, run_finetune
from test_frozen import toy_sst2


@pytest.mark.parametrize("keep", [False, True])
def test_resume_checkpoints_go_unless_kept(minilm_path, tmp_path, keep):
    train = toy_sst2(tmp_path, repeat=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_finetune(FinetuneSettings(task="sst2", model=str(minilm_path), train=str(train), out=str(tmp_path / "o"),
                                      eval_fraction=0.25, freeze_encoder=True,
                                      training=FinetuneTraining(epochs=1, batch_size=8, keep_checkpoints=keep,
                                                                progress=False)))
    out = tmp_path / "o"
    assert (out / "best" / "model.safetensors").is_file() and (out / "results.json").is_file()
    assert bool(list((out / "run").glob("step-*"))) is keep
