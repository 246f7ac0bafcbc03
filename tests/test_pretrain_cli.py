"""`bertkit pretrain` end to end on a small corpus, including a real SIGKILL and resume."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bertkit.data.builtin_corpus import iter_documents

ARGS = ["--size", "tiny", "--steps", "24", "--save-every", "4", "--max-seq-length", "32", "--batch-size", "8",
        "--vocab-size", "400", "--workers", "1", "--lr", "1e-3", "--seed", "7"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """~250 real documents from the built-in corpus (Python's docs), one sentence per line."""
    path = tmp_path_factory.mktemp("corpus") / "docs.txt"
    docs = []
    for doc in iter_documents(include_docstrings=False):
        docs.append("\n".join(doc))
        if len(docs) == 250:
            break
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return path


def bertkit(*args, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "bertkit.cli", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def history(run_dir: Path) -> list[float]:
    from bertkit.training.trainer import latest_checkpoint
    state = torch.load(latest_checkpoint(run_dir) / "trainer_state.pt", weights_only=False)["state"]
    return [row["loss"] for row in state["history"] if not math.isnan(row["loss"])]



def wait_until_written(process, path, timeout: float = 600) -> None:
    """Wait (at most `timeout` s) until the running `process` has written `path`."""
    deadline = time.time() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()[1]
        assert time.time() < deadline
        time.sleep(0.05)

def test_pretrain_then_sigkill_and_resume_matches_uninterrupted(corpus, tmp_path):
    full = bertkit("pretrain", corpus, "--out", tmp_path / "full", *ARGS, "--json")
    out, err = full.communicate(timeout=600)
    assert full.returncode == 0, err
    summary = json.loads(out[out.index("{"):])
    assert summary["steps"] == 24 and 0.0 <= summary["mlm_accuracy"] <= 1.0
    model_dir = tmp_path / "full" / "model"
    for name in ("config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"):
        assert (model_dir / name).exists()
    assert (tmp_path / "full" / "run" / "train_log.csv").exists()

    victim = bertkit("pretrain", corpus, "--out", tmp_path / "killed", *ARGS)
    run_dir = tmp_path / "killed" / "run"
    wait_until_written(victim, run_dir / "step-8")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (run_dir / "step-24").exists(), "the run finished before it could be killed"

    resumed = bertkit("pretrain", corpus, "--out", tmp_path / "killed", *ARGS, "--json")
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    assert json.loads(out[out.index("{"):])["resumed"] is True
    a, b = history(tmp_path / "full" / "run"), history(run_dir)
    assert len(a) == len(b) > 0
    assert max(abs(x - y) for x, y in zip(a, b)) <= 1e-6, (a, b)


def test_pretrain_rejects_missing_file(tmp_path):
    proc = bertkit("pretrain", tmp_path / "nope.txt", "--out", tmp_path / "o")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "no such file" in err and "Traceback" not in err


CRASH_ARGS = [a if a != "4" else "1" for a in ARGS]      # checkpoint after every step: kills land in writes


@pytest.fixture(scope="module")
def uninterrupted(corpus, tmp_path_factory) -> list[float]:
    out = tmp_path_factory.mktemp("reference")
    proc = bertkit("pretrain", corpus, "--out", out, *CRASH_ARGS)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    return history(out / "run")


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(20))
def test_random_sigkill_always_resumes_identically(corpus, uninterrupted, tmp_path, trial):
    """Kill at a random moment mid-training (often inside a checkpoint write), resume, compare with no kill.

    Each kill waits for a random step's checkpoint of *this* process (training has started), then a
    random fraction of a step more; at the kill the process is alive and step 24 is not saved."""
    import random
    rng = random.Random(trial)
    out = tmp_path / "run"
    done = 0                                              # the last complete checkpoint before this process
    for _ in range(2):                                    # two kills per trial
        victim = bertkit("pretrain", corpus, "--out", out, *CRASH_ARGS)
        target = rng.randint(done + 1, done + 9)          # 1..9 then ≤18: always short of 24
        wait_for_step(victim, out / "run", target)
        time.sleep(rng.uniform(0.0, 0.2))
        assert victim.poll() is None, "the run ended before the kill"
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        saved = complete_steps(out / "run")
        assert done < target <= max(saved) < 24, (done, target, saved)   # killed mid-training, not after
        done = max(saved)
        leftovers = [p.name for p in (out / "run").glob("step-*") if not (p / "trainer_state.pt").exists()]
        assert not leftovers, f"half-written checkpoint directories visible: {leftovers}"
    proc = bertkit("pretrain", corpus, "--out", out, *CRASH_ARGS)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    resumed = history(out / "run")
    assert len(resumed) == len(uninterrupted)
    assert max(abs(a - b) for a, b in zip(resumed, uninterrupted)) <= 1e-6


def complete_steps(run_dir: Path) -> list[int]:
    """The steps whose checkpoint is complete (its trainer_state.pt written last)."""
    return [int(p.name.split("-")[1]) for p in run_dir.glob("step-*") if (p / "trainer_state.pt").exists()]


def wait_for_step(process, run_dir: Path, step: int, timeout: float = 600) -> None:
    """Wait until the running `process` has a complete checkpoint of `step` or later (only the newest
    two are kept, so an exact step could be gone between two looks)."""
    deadline = time.time() + timeout
    while max(complete_steps(run_dir), default=0) < step:
        assert process.poll() is None, process.communicate()[1]
        assert time.time() < deadline
        time.sleep(0.02)


def test_ctrl_c_saves_a_checkpoint_exits_130_and_resumes(corpus, tmp_path):
    """SIGINT (Ctrl-C) during training: the step ends, a checkpoint of that step is written,
    the command exits with 130; running it again resumes from there and finishes."""
    victim = bertkit("pretrain", corpus, "--out", tmp_path, *ARGS)
    run_dir = tmp_path / "run"
    wait_until_written(victim, run_dir / "step-4")
    victim.send_signal(signal.SIGINT)
    _, err = victim.communicate(timeout=300)
    assert victim.returncode == 130, err
    assert "checkpoint saved to" in err and "Traceback" not in err
    step = int(err.split("interrupted at step ")[1].split("/")[0])
    assert 4 <= step < 24 and (run_dir / f"step-{step}" / "trainer_state.pt").exists()
    resumed = bertkit("pretrain", corpus, "--out", tmp_path, *ARGS, "--json")
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    summary = json.loads(out[out.index("{"):])
    assert summary["resumed"] is True and summary["steps"] == 24
