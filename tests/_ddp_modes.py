"""Run by tests/test_ddp_modes.py under `torchrun --nproc_per_node 2` (gloo, CPU): every training mode
through the command line, each from an empty folder, in the same two processes one after another.

    python -m torch.distributed.run --nproc_per_node 2 tests/_ddp_modes.py WORKDIR

WORKDIR holds the inputs the test wrote (corpus.txt, tiny.txt, sst2.tsv, stsb.tsv, conll.txt, qa.json);
rank 0 prints `=== MODE` before each mode and every rank writes `WORKDIR/exit-MODE-rRANK` with the
mode's exit code.  The library-level runs for the weight comparison (dropout off) are in EQUALITY.
"""
import os
import signal
import sys
from pathlib import Path

import torch

from bertkit.cli.main import main
from bertkit.training.pretrain import PretrainSettings, PretrainTraining, run_pretraining

PRETRAIN = ["--size", "tiny", "--vocab-size", "300", "--steps", "4", "--batch-size", "4", "--max-seq-length", "32",
            "--save-every", "2", "--workers", "1", "--eval-batches", "1", "--held-out-every", "10"]
FINETUNE = ["--epochs", "1", "--batch-size", "4", "--max-seq-length", "48", "--patience", "0"]


def modes(work: Path) -> dict:
    """Mode name → command line (each writes to its own folder under `work`)."""
    corpus, model = str(work / "corpus.txt"), str(work / "nsp" / "model")
    return {
        "nsp": ["pretrain", corpus, "--out", work / "nsp", *PRETRAIN],
        "pack": ["pretrain", corpus, "--out", work / "pack", "--no-nsp", "--pack", *PRETRAIN],
        "wwm": ["pretrain", corpus, "--out", work / "wwm", "--whole-word-mask", *PRETRAIN],
        "accum": ["pretrain", corpus, "--out", work / "accum", "--grad-accum", "2", *PRETRAIN],
        "bf16": ["pretrain", corpus, "--out", work / "bf16", "--bf16", "--bf16-weights", *PRETRAIN],
        "from": ["pretrain", corpus, "--out", work / "from", "--from", model, *PRETRAIN],
        "resume": ["pretrain", corpus, "--out", work / "nsp", *PRETRAIN[:4], "--steps", "6", *PRETRAIN[6:]],
        "sst2": ["finetune", "--task", "sst2", "--model", model, "--train", work / "sst2.tsv", "--out", work / "ft-sst2",
                 *FINETUNE],
        "stsb": ["finetune", "--task", "stsb", "--model", model, "--train", work / "stsb.tsv", "--out", work / "ft-stsb",
                 *FINETUNE],
        "conll": ["finetune", "--task", "conll2003", "--model", model, "--train", work / "conll.txt",
                  "--out", work / "ft-conll", *FINETUNE],
        "qa": ["finetune", "--task", "squad", "--model", model, "--train", work / "qa.json", "--out", work / "ft-qa",
               "--epochs", "1", "--batch-size", "4", "--max-seq-length", "64", "--doc-stride", "32", "--patience", "0"],
        "too-small": ["pretrain", work / "tiny.txt", "--out", work / "too-small", *PRETRAIN],
    }


NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
EQUALITY = {
    "eq-nsp": dict(nsp=True),
    "eq-pack": dict(nsp=False, pack=True),
}


def equality_settings(name: str, work: Path, out: Path, batch_size: int, steps: int) -> PretrainSettings:
    """The run compared with one process × 2 × batch_size (tests/test_ddp_modes.py builds the same)."""
    return PretrainSettings(files=[str(work / "corpus.txt")], out_dir=str(out), size="tiny", vocab_size=300,
                            max_seq_length=32, workers=1, eval_batches=1, held_out_every=10,
                            model_overrides=dict(NO_DROPOUT), **EQUALITY[name],
                            training=PretrainTraining(steps=steps, batch_size=batch_size, save_every=3, progress=False,
                                                      learning_rate=1e-3))


def run_library(work: Path, name: str, out: str, batch_size: str, steps: str, kill_at: str = "0",
                dropout: str = "off") -> None:
    """`library NAME OUT BATCH STEPS [KILL_AT [DROPOUT]]`: one library run (dropout off unless DROPOUT is "on");
    with KILL_AT > 0, rank 0 kills itself (SIGKILL) after that step the first time (a marker file remembers),
    to test torchrun --max-restarts."""
    settings = equality_settings(name, work, Path(out), batch_size=int(batch_size), steps=int(steps))
    settings.save_every = 2
    if dropout == "on":
        settings.model_overrides = {}
    marker = Path(out + ".killed")

    def maybe_die(row: dict) -> None:
        if int(kill_at) and row["step"] == int(kill_at) and not marker.exists():
            marker.write_text(str(row["step"]))
            os.kill(os.getpid(), signal.SIGKILL)

    run_pretraining(settings, on_log=maybe_die)


if __name__ == "__main__":
    work, rank = Path(sys.argv[1]), int(os.environ["RANK"])
    torch.set_num_threads(1)
    if sys.argv[2:3] == ["library"]:
        run_library(work, *sys.argv[3:])
        sys.exit(0)
    commands = modes(work)
    for mode in sys.argv[2:] or list(commands) + list(EQUALITY):
        if rank == 0:
            print(f"=== {mode}", file=sys.stderr, flush=True)
        if mode in EQUALITY:
            run_pretraining(equality_settings(mode, work, work / mode, batch_size=2, steps=6))
            code = 0
        else:
            code = main([str(a) for a in commands[mode]])
        (work / f"exit-{mode}-r{rank}").write_text(str(code))
