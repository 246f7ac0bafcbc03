"""A run that fails on bad input leaves no empty or half-made output folders behind, and never
deletes what was there before (common/files.py: removed_on_failure)."""
from __future__ import annotations

import pytest

from bertkit.cli import main
from bertkit.common.files import removed_on_failure


def test_removed_on_failure_takes_back_only_what_the_block_made(tmp_path):
    out = tmp_path / "runs" / "x"
    with pytest.raises(ValueError):
        with removed_on_failure(out):
            (out / "run").mkdir(parents=True)
            raise ValueError("bad input")
    assert not (tmp_path / "runs").exists()                      # the parent it made goes too
    old = tmp_path / "old"
    (old / "run").mkdir(parents=True)
    (old / "notes.txt").write_text("mine")
    with pytest.raises(ValueError):
        with removed_on_failure(old):
            (old / "run" / "train_config.json").write_text("{}")  # inside an old folder: kept
            (old / "vocab").mkdir()
            (old / "settings.json").write_text("{}")
            (old / "best").mkdir()
            (old / "best" / "model.safetensors").write_bytes(b"weights")
            raise ValueError("later")
    assert sorted(p.name for p in old.iterdir()) == ["best", "notes.txt", "run"]
    assert (old / "run" / "train_config.json").exists() and (old / "best" / "model.safetensors").exists()
    with pytest.raises(KeyboardInterrupt):                       # Ctrl-C: training saved to resume
        with removed_on_failure(tmp_path / "ctrl-c"):
            (tmp_path / "ctrl-c").mkdir()
            raise KeyboardInterrupt
    assert (tmp_path / "ctrl-c").is_dir()
    with removed_on_failure(tmp_path / "fine") as done:
        done.mkdir()
    assert (tmp_path / "fine").is_dir()
    with pytest.raises(ValueError):
        with removed_on_failure(tmp_path / "other-rank", enabled=False):
            (tmp_path / "other-rank").mkdir()
            raise ValueError
    assert (tmp_path / "other-rank").is_dir()


def test_finetune_with_a_bad_model_or_batch_size_leaves_no_folder(tmp_path, minilm_path, capsys):
    train = tmp_path / "d.csv"
    train.write_text("text,label\ngood movie,1\nbad movie,0\ngreat,1\nawful,0\n", encoding="utf-8")
    not_a_model = tmp_path / "not_a_model"
    not_a_model.mkdir()
    args = ["finetune", "--task", "classification", "--train", str(train), "--text-column", "text",
            "--label-column", "label"]
    assert main([*args, "--model", str(not_a_model), "--out", str(tmp_path / "runs" / "a")]) == 2
    assert main([*args, "--model", str(minilm_path), "--batch-size", "0", "--out", str(tmp_path / "runs" / "b")]) == 2
    assert capsys.readouterr().err.count("error") == 2
    assert not (tmp_path / "runs").exists()


def test_pretrain_on_a_too_small_corpus_leaves_no_folder_and_keeps_yours(tmp_path, capsys):
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("one line.\n", encoding="utf-8")
    assert main(["pretrain", str(corpus), "--out", str(tmp_path / "runs" / "p"), "--steps", "2"]) == 2
    assert "at least 50 are needed" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["pretrain", str(corpus), "--out", str(mine), "--steps", "2"]) == 2
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
