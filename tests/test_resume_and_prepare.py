"""What "run the same command again" promises: a fine-tune stopped by Ctrl-C resumes where it stopped,
and pretraining's data preparation is built once — rebuilt when it was killed half-way, reused when done,
refused when the corpus changed under a run that has checkpoints."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import data_file
from test_finetune import head_lines, tiny_checkpoint

from bertkit.common.errors import InputError
from bertkit.text.vocab import train_vocab
from bertkit.training import pretrain
from bertkit.training.pretrain import PretrainSettings, PretrainTraining, prepare_data

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.realdata
def test_ctrl_c_during_finetune_then_the_same_command_resumes(tmp_path):
    train = head_lines(data_file("glue", "SST-2", "train.tsv"), tmp_path / "train.tsv", 0, 3000)
    model = tiny_checkpoint(tmp_path / "tiny", train_vocab([train], vocab_size=800))
    cmd = [sys.executable, "-m", "bertkit.cli", "finetune", "--task", "sst2", "--model", str(model), "--train",
           str(train), "--out", str(tmp_path / "run"), "--epochs", "2", "--batch-size", "8", "--max-seq-length", "32",
           "--patience", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "run" / "run" / "train_log.csv"
    deadline = time.monotonic() + 120
    while not log.exists() and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 130, err
    stopped = int(err.split("interrupted at step ")[1].split("/")[0])
    assert 0 < stopped < 674 and f"step-{stopped}" in err and "Run the same command again" in err

    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert f"resuming from step {stopped} (of 674)" in second.stderr
    result = json.loads((tmp_path / "run" / "results.json").read_text())
    assert result["steps"] == 674 and [e["step"] for e in result["epochs"]] == [337, 674]
    rows = (tmp_path / "run" / "run" / "train_log.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert header[:4] == ["step", "loss", "lr", "tokens_per_s"] and all(len(r.split(",")) == len(header) for r in rows)
    steps = [int(r.split(",")[0]) for r in rows[1:]]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)       # one table across the resume


def corpus(path: Path, documents: int = 60) -> Path:
    path.write_text("\n\n".join(f"document {d} says hello .\nit has two sentences {d} ." for d in range(documents)))
    return path


def settings(tmp_path: Path, **training) -> PretrainSettings:
    return PretrainSettings(files=[str(tmp_path / "corpus.txt")], out_dir=str(tmp_path / "out"), vocab_size=200,
                            workers=1, held_out_every=10, training=PretrainTraining(progress=False, **training))


def test_preparation_is_built_once_and_reused(tmp_path, monkeypatch):
    corpus(tmp_path / "corpus.txt")
    prepare_data(settings(tmp_path), tmp_path / "out")
    manifest = tmp_path / "out" / "shards" / "manifest.json"
    built = manifest.stat().st_mtime_ns
    calls = []
    monkeypatch.setattr(pretrain, "build_shards", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(pretrain, "train_vocab", lambda *a, **k: calls.append(a))
    prepare_data(settings(tmp_path), tmp_path / "out")
    assert calls == [] and manifest.stat().st_mtime_ns == built
    assert not list((tmp_path / "out").glob("corpus*.txt"))          # the corpus is read in place, not copied


def test_a_preparation_killed_half_way_is_built_again(tmp_path):
    corpus(tmp_path / "corpus.txt")
    out = tmp_path / "out"
    prepare_data(settings(tmp_path), out)
    # killed while building: a temporary folder left over, and the shards of an older corpus
    (out / ".tmp-shards").mkdir()
    (out / ".tmp-shards" / "shard_00000.tokens.bin").write_bytes(b"\0" * 7)
    corpus(tmp_path / "corpus.txt", documents=80)
    prepare_data(settings(tmp_path), out)
    assert json.loads((out / "shards" / "manifest.json").read_text())["documents"] == 80
    assert not (out / ".tmp-shards").exists()


def test_a_changed_corpus_under_a_run_with_checkpoints_is_refused(tmp_path):
    corpus(tmp_path / "corpus.txt")
    out = tmp_path / "out"
    prepare_data(settings(tmp_path), out)
    (out / "run" / "step-5").mkdir(parents=True)
    (out / "run" / "step-5" / "trainer_state.pt").write_bytes(b"")
    corpus(tmp_path / "corpus.txt", documents=61)
    with pytest.raises(InputError, match="changed since the run"):
        prepare_data(settings(tmp_path), out)
    prepare_data(settings(tmp_path, resume=False), out)             # --no-resume: start over on the new corpus


def test_the_closing_try_it_masks_a_held_out_sentence_of_the_corpus(tmp_path):
    """The last line of `bertkit pretrain` suggests a fill-mask on the corpus's own held-out text (a Korean model
    is not asked about the capital of France)."""
    from bertkit.training.pretrain import PretrainTraining, run_pretraining
    lines = ["이 영화 정말 재미있다 .", "배우들 연기가 좋았다 .", "다시 보고 싶은 영화 ."]
    (tmp_path / "corpus.txt").write_text("\n\n".join(f"{lines[d % 3]}\n{lines[(d + 1) % 3]} {d}" for d in range(60)))
    said = []
    run_pretraining(PretrainSettings(files=[str(tmp_path / "corpus.txt")], out_dir=str(tmp_path / "out"), size="tiny",
                                     vocab_size=200, workers=1, held_out_every=10, do_lower_case=False,
                                     strip_accents=False, max_seq_length=32, eval_batches=1,
                                     training=PretrainTraining(steps=2, batch_size=4, save_every=0)), say=said.append)
    suggestion = said[-1].split('fill-mask "')[1].split('" --model')[0]
    assert "[MASK]" in suggestion and "France" not in said[-1]
    held_out = {w for d in range(9, 60, 10) for w in f"{lines[d % 3]} {lines[(d + 1) % 3]} {d}".split()}
    words = suggestion.replace("[MASK]", " ").replace(".", " ").split()
    assert words and all(w in held_out for w in words), suggestion
