"""A run's own files are data, never code or a way out of the run folder; the Trainer keeps the best model.

- `latest` names a checkpoint of the run (step-N); anything else ("../x", an absolute path) is ignored.
- trainer_state.pt is read by torch's weights-only unpickler: a pickled object that would run code is
  refused with a one-line error, and its code does not run.
- One training-settings dataclass: both verbs' flags are its fields, and the Trainer receives it whole.
- `KeepBest` + `patience`: the Trainer saves a better model and stops after `patience` evaluations
  without gain; the record survives a resume.
"""
from __future__ import annotations

import dataclasses
import os
import pickle

import pytest
import torch

from bertkit.cli.main import build_parser
from bertkit.common.errors import InputError
import bertkit.training.checkpoints as checkpoints
from bertkit.training.checkpoints import STATE_FILE, latest_checkpoint, prune_checkpoints, read_trainer_state
from bertkit.training.finetune import FinetuneTraining
from bertkit.training.pretrain import PretrainTraining
from bertkit.training.settings import TrainingSettings
from bertkit.training.trainer import KeepBest, Trainer
from test_train import RandomPretrainingData, collate, tiny_model


def _complete(folder):
    folder.mkdir(parents=True)
    torch.save({"state": {"step": 1}}, folder / STATE_FILE)
    return folder


@pytest.mark.parametrize("pointer", ["../x", "{outside}", "step-2/../../x", "step-9"])
def test_a_latest_pointer_outside_the_run_folder_is_ignored(tmp_path, pointer):
    run = tmp_path / "run"
    newest = _complete(run / "step-2")
    outside = _complete(tmp_path / "x")
    (run / "latest").write_text(pointer.format(outside=outside))
    assert latest_checkpoint(run) == newest                  # the run's own newest complete checkpoint


class Payload:
    """Unpickling this calls os.system: the attack a full unpickler would run."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_trainer_state_holding_code_is_refused_in_one_line(tmp_path):
    checkpoint = tmp_path / "run" / "step-1"
    checkpoint.mkdir(parents=True)
    marker = tmp_path / "pwned"
    with open(checkpoint / STATE_FILE, "wb") as fh:
        pickle.dump({"state": {"step": 1}, "evil": Payload(marker)}, fh)
    with pytest.raises(InputError) as caught:
        read_trainer_state(checkpoint)
    assert "\n" not in str(caught.value) and "--no-resume" in str(caught.value)
    assert not marker.exists()                                # the payload never ran


def test_one_training_settings_dataclass_gives_both_verbs_the_same_flags():
    parser = build_parser()
    verbs = {a.dest: a for a in parser._subparsers._group_actions}["verb"].choices
    names = [f.name for f in dataclasses.fields(TrainingSettings) if f.metadata.get("cli")]
    for verb in ("pretrain", "finetune"):
        dests = {a.dest for a in verbs[verb]._actions}
        assert set(names) <= dests, (verb, set(names) - dests)
    from bertkit.training.pretrain import PretrainSettings
    assert PretrainSettings(files=["c.txt"], out_dir="o").training.steps == 1000          # the verbs' own defaults
    assert FinetuneTraining().epochs == 3.0 and PretrainTraining().learning_rate == 5e-4
    budget = PretrainSettings(files=["c.txt"], out_dir="o", training=PretrainTraining(time_budget="10m"))
    assert budget.training.steps is None                    # with a time budget, no step limit unless given
    help_text = {a.dest: a.help for a in verbs["pretrain"]._actions}["steps"]
    assert "default 1000" in help_text and "--time-budget" in help_text
    assert issubclass(PretrainTraining, TrainingSettings) and issubclass(FinetuneTraining, TrainingSettings)


def test_a_flag_reaches_the_trainer_under_its_own_name(tmp_path):
    from bertkit.cli.options import settings_from_args
    from bertkit.training.finetune import FinetuneSettings
    args = build_parser().parse_args(["finetune", "--task", "sst2", "--train", "t.tsv", "--out", str(tmp_path),
                                      "--grad-accum", "3", "--bf16-weights", "--patience", "5"])
    s = settings_from_args(FinetuneSettings, args)
    assert (s.training.grad_accum, s.training.bf16_weights, s.training.patience) == (3, True, 5)
    assert s.training.learning_rate == 5e-5                   # fine-tuning's default, not the pretraining one


def _trainer(run, scores, saved, patience, steps=8):
    settings = TrainingSettings(steps=steps, batch_size=8, patience=patience, save_every=2, log_every=1,
                                progress=False, eval_at_start=False, device="cpu", seed=3)
    return Trainer(tiny_model(), RandomPretrainingData(), collate, settings, run, eval_every=1,
                   evaluate=lambda m: {"score": scores.pop(0)},
                   keep_best=KeepBest(score=lambda row: row["score"], save=lambda m, row: saved.append(row["step"])))


def test_the_trainer_keeps_the_best_model_and_stops_after_patience(tmp_path):
    saved = []
    state = _trainer(tmp_path, [0.5, 0.7, 0.6, 0.7, 0.9, 1.0, 1.0, 1.0], saved, patience=2).train()
    assert saved == [1, 2]                                    # better at steps 1 and 2; equal is not better
    assert state.step == 4 and state.best["step"] == 2 and state.best["score"] == 0.7   # 2 evaluations without gain


def test_the_best_record_survives_a_resume(tmp_path):
    saved = []
    _trainer(tmp_path, [0.5, 0.9, 0.1, 0.2], saved, patience=0, steps=4).train()
    resumed = _trainer(tmp_path, [0.8, 0.95, 0.1, 0.1], saved, patience=0, steps=6)
    assert resumed.resume() and resumed.state.best["score"] == 0.9
    resumed.train()
    assert saved == [1, 2, 6]                                 # 0.8 at step 5 is not better than 0.9


@pytest.mark.parametrize("verb, flag", [("pretrain", "--batch-size"), ("finetune", "--batch-size"),
                                        ("pretrain", "--grad-accum"), ("finetune", "--learning-rate")])
def test_impossible_training_settings_are_one_line_before_anything_is_read(verb, flag, tmp_path, capsys):
    from bertkit.cli import main
    argv = {"pretrain": ["pretrain", str(tmp_path / "c.txt"), "--out", str(tmp_path / "o")],
            "finetune": ["finetune", "--task", "sst2", "--train", str(tmp_path / "t.tsv"), "--out", str(tmp_path / "o")]}
    (tmp_path / "c.txt").write_text("a b .\n")
    (tmp_path / "t.tsv").write_text("sentence\tlabel\na\t1\n")
    assert main([*argv[verb], flag, "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{flag} 0" in err[0] and "(must be" in err[0], err
    assert not (tmp_path / "o").exists()


def test_a_deletion_killed_midway_leaves_no_half_deleted_checkpoint(tmp_path, monkeypatch):
    """Pruning renames a checkpoint out of the step-N names before deleting it: a kill in the middle of
    the deletion (simulated: the first file goes, then the process "dies") leaves only complete
    step-N folders; the next prune removes the remains."""
    for step in (1, 2, 3):
        folder = tmp_path / f"step-{step}"
        folder.mkdir()
        for name in ("config.json", "model.safetensors", STATE_FILE):
            (folder / name).write_text("x")
    real = checkpoints.shutil.rmtree

    def killed(path, ignore_errors=False):
        os.remove(os.path.join(path, STATE_FILE))          # the trainer state goes first ...
        raise KeyboardInterrupt("killed mid-deletion")     # ... then the process dies

    monkeypatch.setattr(checkpoints.shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        prune_checkpoints(tmp_path, keep=2)
    visible = sorted(p.name for p in tmp_path.glob("step-*"))
    assert visible == ["step-2", "step-3"] and all((tmp_path / v / STATE_FILE).exists() for v in visible)
    monkeypatch.setattr(checkpoints.shutil, "rmtree", real)
    prune_checkpoints(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-2", "step-3"]
