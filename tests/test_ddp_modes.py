"""Training with several processes (torchrun, gloo on CPU), as a user runs it: every mode from an empty
folder, one voice, errors once, the same model as one process, resume after a change of world size,
and two "nodes" (two torchrun launches) meeting over localhost.

One torchrun launch runs every mode in the same two processes (tests/_ddp_modes.py): starting
processes costs more than the tiny runs themselves.
"""
import json
import os
import random
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _ddp_modes  # noqa: E402
from conftest import data_file  # noqa: E402

from bertkit.training.pretrain import run_pretraining  # noqa: E402

HERE = Path(__file__).resolve().parent
WORDS = ("the cat dog bird sat ran flew on under over a mat tree house river quickly slowly big small red green "
         "blue happy sad old young man woman child saw heard found made took gave lived moved").split()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_corpus(path: Path, documents: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    docs = ["\n".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) + " ."
                      for _ in range(rng.randint(2, 5))) for _ in range(documents)]
    path.write_text("\n\n".join(docs) + "\n")


def write_inputs(work: Path) -> None:
    """Corpus, a too-small corpus, and small slices of the real fine-tuning sets (four families)."""
    work.mkdir(parents=True, exist_ok=True)
    write_corpus(work / "corpus.txt", 120)
    write_corpus(work / "tiny.txt", 3, seed=1)
    for name, src in (("sst2.tsv", data_file("glue", "SST-2", "train.tsv")),
                      ("stsb.tsv", data_file("glue", "STS-B", "train.tsv"))):
        (work / name).write_text("".join(src.read_text(encoding="utf-8").splitlines(True)[:121]))
    conll = data_file("conll2003", "train.txt").read_text(encoding="utf-8").split("\n\n")[:60]
    (work / "conll.txt").write_text("\n\n".join(conll) + "\n")
    squad = json.loads(data_file("korquad1", "KorQuAD_v1.0_dev_half_a.json").read_text(encoding="utf-8"))
    squad["data"] = [dict(a, paragraphs=a["paragraphs"][:3]) for a in squad["data"][:4]]
    (work / "qa.json").write_text(json.dumps(squad, ensure_ascii=False))


def torchrun(*args, nproc: int = 2, extra: tuple = (), timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent / "src")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), *map(str, extra), *map(str, args)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def ddp(tmp_path_factory):
    """(workdir, torchrun's output): every mode of tests/_ddp_modes.py in one 2-process launch."""
    work = tmp_path_factory.mktemp("ddp")
    write_inputs(work)
    proc = torchrun(HERE / "_ddp_modes.py", work, extra=("--master_port", free_port()))
    return work, proc.stdout + proc.stderr


def exit_codes(work: Path, mode: str) -> list[int]:
    return [int((work / f"exit-{mode}-r{r}").read_text()) for r in (0, 1)]


def section(output: str, mode: str) -> str:
    """What the job printed while it ran `mode`."""
    return output.split(f"=== {mode}\n", 1)[1].split("\n=== ", 1)[0]


@pytest.mark.realdata
@pytest.mark.parametrize("mode", ["nsp", "pack", "wwm", "accum", "bf16", "from", "resume",
                                  "sst2", "stsb", "conll", "qa", "eq-nsp", "eq-pack"])
def test_every_mode_runs_from_an_empty_folder_and_speaks_once(ddp, mode):
    work, output = ddp
    assert exit_codes(work, mode) == [0, 0], section(output, mode)[-3000:]
    text = section(output, mode)
    assert "rank 1" not in text and "Traceback" not in text, text[-3000:]
    if mode in ("nsp", "pack", "wwm", "accum", "bf16", "from"):
        assert text.count("[1/4] vocab") == 1 and text.count("model saved to") == 1, text
        assert "× 2 processes (torchrun)" in text
        steps = ["step-4", "step-6"] if mode == "nsp" else ["step-2", "step-4"]         # "resume" went on to 6
        assert sorted(p.name for p in (work / mode / "run").glob("step-*")) == steps
        assert not list((work / mode).glob(".tmp-*")) and not list((work / mode).glob(".bertkit-probe-*"))
    if mode == "resume":
        assert text.count("resuming from step 4 (of 6)") == 1, text
    if mode in ("sst2", "stsb", "conll", "qa"):
        assert text.count("evaluation at step") == 1 and text.count("→ ") == 1, text
        assert (work / f"ft-{mode}" / "best" / "model.safetensors").exists()


@pytest.mark.realdata
def test_an_error_in_preparation_is_shown_once_and_every_rank_stops(ddp):
    work, output = ddp
    assert exit_codes(work, "too-small") == [2, 1]        # rank 0 says why; rank 1 stops quietly
    text = section(output, "too-small")
    assert text.count("bertkit (rank 0 of 2): error: the corpus has only 3 document(s)") == 1, text
    assert text.count("error") == 1, text


def weights(model_dir: Path) -> dict:
    return load_file(str(model_dir / "model.safetensors"))


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["eq-nsp", "eq-pack"])
def test_two_processes_give_the_model_of_one_process_with_twice_the_batch(ddp, name, tmp_path):
    work, _ = ddp
    torch.set_num_threads(1)
    run_pretraining(_ddp_modes.equality_settings(name, work, tmp_path / "one", batch_size=4, steps=6))
    one, two = weights(tmp_path / "one" / "model"), weights(work / name / "model")
    assert max_difference(one, two) <= 1e-5
    assert max_difference(one, weights(work / "nsp" / "model")) > 1e-3          # the comparison can fail


@pytest.mark.realdata
def test_resume_with_another_world_size_continues_at_the_same_global_example(ddp, tmp_path):
    """Killed after step 3 of 6 with 2 processes × 2, resumed with 1 process × 4: the model of one
    process × 4 throughout (the same examples in every step, the same learning rates)."""
    work, _ = ddp
    torch.set_num_threads(1)
    resumed = tmp_path / "resumed"
    shutil.copytree(work / "eq-nsp", resumed)
    shutil.rmtree(resumed / "run" / "step-6")
    shutil.rmtree(resumed / "model")
    (resumed / "run" / "latest").write_text("step-3")
    summary = run_pretraining(_ddp_modes.equality_settings("eq-nsp", work, resumed, batch_size=4, steps=6))
    assert summary["resumed"] and summary["steps"] == 6
    run_pretraining(_ddp_modes.equality_settings("eq-nsp", work, tmp_path / "one", batch_size=4, steps=6))
    assert max_difference(weights(tmp_path / "one" / "model"), weights(resumed / "model")) <= 1e-5


def test_two_nodes_of_one_process_meet_over_localhost(tmp_path):
    """Two torchrun launches (node 0 and node 1, one process each) form one job: one vocab and one set of
    shards (rank 0 prepares; the shared folder is detected), one voice, the same final model."""
    write_corpus(tmp_path / "corpus.txt", 120)
    port = free_port()
    args = ["-m", "bertkit.cli", "pretrain", tmp_path / "corpus.txt", "--out", tmp_path / "out", *_ddp_modes.PRETRAIN]
    launches = []
    for node in (0, 1):
        extra = ("--nnodes", "2", "--node_rank", str(node), "--master_addr", "127.0.0.1", "--master_port", str(port))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent / "src")}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1", *extra, *map(str, args)]
        launches.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=300)[0] for p in launches]
    assert [p.returncode for p in launches] == [0, 0], outputs
    assert outputs[0].count("[1/4] vocab") == 1 and "× 2 processes (torchrun)" in outputs[0], outputs[0]
    assert "[1/4]" not in outputs[1] and "bertkit" not in outputs[1], outputs[1]
    assert (tmp_path / "out" / "model" / "model.safetensors").exists()


@pytest.mark.slow
def test_world_size_changes_two_one_four_give_the_model_of_one_process(tmp_path):
    """2 processes × 2 for 2 steps, then 1 process × 4 to step 4, then 4 processes × 1 to step 6 (each
    resuming the last): the same model as 1 process × 4 going 2 → 4 → 6 steps the same way."""
    write_corpus(tmp_path / "corpus.txt", 120)
    chain, reference = tmp_path / "chain", tmp_path / "reference"
    for nproc, batch, steps in ((2, 2, 2), (1, 4, 4), (4, 1, 6)):
        proc = torchrun(HERE / "_ddp_modes.py", tmp_path, "library", "eq-nsp", chain, batch, steps, nproc=nproc,
                        extra=("--master_port", free_port()))
        assert proc.returncode == 0, proc.stderr[-3000:]
    for steps in (2, 4, 6):
        run_pretraining(_ddp_modes.equality_settings("eq-nsp", tmp_path, reference, batch_size=4, steps=steps))
    assert max_difference(weights(reference / "model"), weights(chain / "model")) <= 1e-5


@pytest.mark.slow
def test_torchrun_max_restarts_after_a_killed_rank_resumes_from_the_last_checkpoint(tmp_path):
    """Rank 0 is SIGKILLed after step 5 (checkpoints every 2 steps); torchrun restarts both processes, they
    resume from step 4 with every rank's own random state (dropout on), and end where an uninterrupted run ends."""
    write_corpus(tmp_path / "corpus.txt", 120)
    for name, kill_at, restarts in (("killed", 5, "1"), ("whole", 0, "0")):
        proc = torchrun(HERE / "_ddp_modes.py", tmp_path, "library", "eq-nsp", tmp_path / name, 2, 8, kill_at, "on",
                        extra=("--master_port", free_port(), "--max-restarts", restarts))
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "killed.killed").read_text() == "5"
    assert max_difference(weights(tmp_path / "whole" / "model"), weights(tmp_path / "killed" / "model")) <= 1e-6
