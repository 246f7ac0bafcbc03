"""`--time-budget`: the learning rate warms up and decays over the seconds of a budget, training
stops when it is spent, a resumed run goes on with what is left, and several processes agree.

The clock of `training.budget` is replaced by one that advances a fixed time per reading, so the
runs here are as exact as step-counted ones."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_train import RandomPretrainingData, collate, tiny_model

import bertkit.training.budget as budget_module
from bertkit.cli.main import main
from bertkit.common.errors import InputError
from bertkit.training.budget import TimeBudget, budget_factor, parse_duration
from bertkit.training.settings import TrainingSettings
from bertkit.training.trainer import Trainer

HERE = Path(__file__).resolve().parent


def test_durations_read_as_people_write_them():
    assert [parse_duration(t) for t in ("90s", "10m", "1.5h", "45min", "30", ".5m", 12)] == \
        [90, 600, 5400, 2700, 30, 30, 12]
    for bad in ("ten minutes", "10 days", "-5m", "0s", ""):
        with pytest.raises(InputError, match="time-budget"):
            parse_duration(bad)


def test_a_bad_budget_is_one_line_before_anything_runs(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("a b c .\n\nd e f .\n")
    assert main(["pretrain", str(corpus), "--out", str(tmp_path / "out"), "--time-budget", "soon"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "90s, 10m or 1.5h" in err[0] and not (tmp_path / "out").exists()


def test_the_schedule_warms_up_then_decays_to_zero_over_the_time():
    factors = [budget_factor(f / 100, 0.1) for f in range(101)]
    assert factors[0] == 0 and factors[10] == pytest.approx(1) and factors[100] == 0
    assert factors[:11] == sorted(factors[:11]) and factors[10:] == sorted(factors[10:], reverse=True)
    assert budget_factor(1.5, 0.1) == 0                  # past the end: nothing


class FakeClock:
    """perf_counter that advances `tick` seconds per reading."""

    def __init__(self, tick: float):
        self.now, self.tick = 0.0, tick

    def perf_counter(self) -> float:
        self.now += self.tick
        return self.now


def test_agreed_clock_is_extrapolated_by_the_pace(monkeypatch):
    monkeypatch.setattr(budget_module, "time", SimpleNamespace(perf_counter=FakeClock(1.0).perf_counter))
    clock = TimeBudget(100.0)
    assert clock.total_steps(0, None) == 1                 # nothing measured: one step at a time
    clock.agree(10, 20.0)                                  # 2 s per step
    assert clock.spent(15) == 30.0 and clock.fraction(15) == 0.3
    assert clock.total_steps(10, None) == 50 and clock.total_steps(10, 30) == 30
    clock.agree(50, 100.0)
    assert clock.total_steps(50, None) == 50               # spent: the run ends here


def budget_trainer(out: Path, budget: str, steps=None, tick=0.25) -> Trainer:
    cfg = TrainingSettings(learning_rate=1e-3, steps=steps, time_budget=budget, batch_size=8, save_every=0,
                           log_every=1, warmup_ratio=0.2, progress=False, seed=3, device="cpu")
    return Trainer(tiny_model(), RandomPretrainingData(), collate, cfg, out)


def test_a_run_uses_the_whole_budget_and_the_lr_follows_the_clock(tmp_path, monkeypatch):
    """One clock reading per step, 0.25 s each: a 10 s budget is 40 steps; the LR peaks at 20% of
    the time and reaches 0 at its end; the log has tokens/s and MFU."""
    monkeypatch.setattr(budget_module, "time", SimpleNamespace(perf_counter=FakeClock(0.25).perf_counter))
    trainer = budget_trainer(tmp_path / "run", "10s")
    state = trainer.train()
    assert state.step == 40 and state.seconds == pytest.approx(10.0)
    lrs = [r["lr"] for r in state.history]
    peak = lrs.index(max(lrs))
    assert max(lrs) == pytest.approx(1e-3, rel=0.05) and 6 <= peak <= 9      # 20% of 40 steps
    assert lrs[:peak] == sorted(lrs[:peak]) and lrs[peak:] == sorted(lrs[peak:], reverse=True)
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(r["tokens_per_s"] > 0 and 0 < r["mfu"] < 1 for r in state.history)
    header = (tmp_path / "run" / "train_log.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["step", "loss", "lr", "tokens_per_s", "mfu"]


def test_steps_cap_a_budget_and_a_resumed_run_goes_on_with_what_is_left(tmp_path, monkeypatch):
    monkeypatch.setattr(budget_module, "time", SimpleNamespace(perf_counter=FakeClock(0.25).perf_counter))
    first = budget_trainer(tmp_path / "run", "10s", steps=12)
    assert first.train().step == 12
    lr_at_12 = first.scheduler.get_last_lr()[0]
    resumed = budget_trainer(tmp_path / "run", "10s")
    assert resumed.resume() and resumed.state.seconds == pytest.approx(12 * 0.25)
    assert resumed.scheduler.get_last_lr()[0] == lr_at_12              # the schedule did not restart
    state = resumed.train()
    assert 38 <= state.step <= 40 and state.seconds == pytest.approx(10.0, abs=0.3)
    assert state.history[-1]["lr"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.slow
def test_pretrain_command_trains_for_its_budget(tmp_path):
    """The real clock: `bertkit pretrain --time-budget 8s` trains about 8 seconds, whatever the step count."""
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n\n".join(f"the cat sat on mat number {i} .\nit was a good mat .\nthe dog ran ." for i in range(60)))
    assert main(["pretrain", str(corpus), "--out", str(tmp_path / "out"), "--size", "tiny", "--vocab-size", "200",
                 "--max-seq-length", "32", "--batch-size", "8", "--time-budget", "8s", "--workers", "1"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "out" / "run" / "train_log.csv")))
    steps = [int(r["step"]) for r in rows]
    assert steps[-1] > 10 and float(rows[-1]["lr"]) < 1e-6              # the LR reached 0 as the time ran out
    assert all(float(r["mfu"]) > 0 for r in rows if int(r["step"]) > 0)


def test_two_processes_agree_on_the_clock(tmp_path):
    """Under torchrun each process reads its own clock; they agree on rank 0's, so every step has the
    same LR everywhere: the replicas stay identical and stop at the same step."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           str(HERE / "_ddp_worker.py"), str(tmp_path), "budget"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["step"] == ranks[1]["step"] > 4
    assert ranks[0]["params_sha"] == ranks[1]["params_sha"], "the processes used different learning rates"
    assert 3.0 <= ranks[0]["seconds"] < 4.0
