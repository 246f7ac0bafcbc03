"""The trainer's speed switches give the plain path's numbers (CPU), and its run-management
options: prefetching, host-built unpadding plans, bf16 master weights, fused tails,
keep_checkpoints / remove_checkpoints, and Ctrl-C saving a checkpoint."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from bertkit.modeling import BertForPreTraining
from bertkit.modeling.config import BertConfig
from bertkit.training.checkpoints import read_trainer_state
from bertkit.training.pretrain import run_pretraining
from bertkit.training.settings import TrainingSettings
from bertkit.training.trainer import Trainer, latest_checkpoint, unwrap

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_train import VOCAB, RandomPretrainingData  # noqa: E402

HERE = Path(__file__).resolve().parent


def ragged_collate(samples, generator):
    """Rows of 6..16 real tokens (lengths drawn from the generator), 15% masked."""
    ids = torch.stack([s["input_ids"] for s in samples])                     # [B, T]
    B, T = ids.shape
    lengths = torch.randint(6, T + 1, (B,), generator=generator)
    mask = (torch.arange(T)[None] < lengths[:, None]).long()
    chosen = (torch.rand(ids.shape, generator=generator) < 0.15) & mask.bool()
    chosen[:, 1] = True
    labels = torch.where(chosen, ids, -100)
    inputs = torch.where(chosen, torch.full_like(ids, 4), ids) * mask
    return {"input_ids": inputs, "attention_mask": mask, "labels": labels,
            "next_sentence_label": torch.stack([s["nsp"] for s in samples])}


def model(dropout=0.1):
    torch.manual_seed(0)
    return BertForPreTraining(BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                         intermediate_size=64, max_position_embeddings=32,
                                         hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout))


def run(out, steps=8, dropout=0.1, **switches):
    cfg = TrainingSettings(device="cpu", learning_rate=2e-3, steps=steps, batch_size=8, grad_accum=2,
                           save_every=4, log_every=1, progress=False, seed=3, **switches)
    trainer = Trainer(model(dropout), RandomPretrainingData(), ragged_collate, cfg, out)
    state = trainer.train()
    return [r["loss"] for r in state.history], trainer


def test_prefetching_in_a_thread_gives_the_same_run(tmp_path):
    plain, _ = run(tmp_path / "a", prefetch=0)
    ahead, trainer = run(tmp_path / "b", prefetch=3)
    assert plain == ahead                                                   # bit for bit
    assert not [t for t in __import__("threading").enumerate() if t.name == "bertkit-prefetch"]


def test_unpadding_plans_exact_rows_are_bit_identical(tmp_path):
    plain, _ = run(tmp_path / "a", unpad_multiple=0)
    planned, _ = run(tmp_path / "b", unpad_multiple=1)
    assert plain == planned


def test_unpadding_plans_with_rounded_rows_follow_the_same_curve(tmp_path):
    """Rounding rows up to 64 adds pad rows that never touch a real token; without dropout
    (whose random stream the extra rows would shift) the curve is the same up to float rounding."""
    plain, _ = run(tmp_path / "a", dropout=0.0, unpad_multiple=0)
    rounded, _ = run(tmp_path / "b", dropout=0.0, unpad_multiple=64)
    assert max(abs(a - b) for a, b in zip(plain, rounded)) < 1e-5, (plain, rounded)


def test_fused_tails_follow_the_same_curve(tmp_path):
    plain, _ = run(tmp_path / "a", dropout=0.0)
    fused, _ = run(tmp_path / "b", dropout=0.0, fused_blocks="eager")
    assert max(abs(a - b) for a, b in zip(plain, fused)) < 1e-5, (plain, fused)


def test_bf16_master_weights_track_autocast_and_leave_fp32_weights(tmp_path):
    fp32, _ = run(tmp_path / "fp32", dropout=0.0)
    autocast, _ = run(tmp_path / "autocast", dropout=0.0, bf16=True)
    masters, trainer = run(tmp_path / "masters", dropout=0.0, bf16=True, bf16_weights=True)
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())   # the fp32 masters, after training
    assert max(abs(a - b) for a, b in zip(fp32, autocast)) < 0.05
    assert max(abs(a - b) for a, b in zip(autocast, masters)) < 0.05, (autocast, masters)
    assert masters[-1] < masters[0]


def test_bf16_master_weights_resume_exactly(tmp_path):
    full, _ = run(tmp_path / "full", bf16=True, bf16_weights=True)

    class Stop(Exception):
        pass

    def stop_at_6(row):
        if row["step"] == 6:
            raise Stop

    cfg = dict(device="cpu", learning_rate=2e-3, steps=8, batch_size=8, grad_accum=2,
               save_every=4, log_every=1, progress=False, seed=3, bf16=True, bf16_weights=True)
    with pytest.raises(Stop):
        Trainer(model(), RandomPretrainingData(), ragged_collate, TrainingSettings(**cfg), tmp_path / "cut",
                on_log=stop_at_6).train()
    trainer = Trainer(model(), RandomPretrainingData(), ragged_collate, TrainingSettings(**cfg), tmp_path / "cut")
    assert trainer.resume() and trainer.state.step == 4
    resumed = [r["loss"] for r in trainer.train().history]
    assert resumed == full


def test_keep_checkpoints_false_lets_the_caller_remove_them(tmp_path):
    _, kept = run(tmp_path / "kept")
    assert kept.remove_checkpoints() == [] and latest_checkpoint(tmp_path / "kept") is not None
    _, trainer = run(tmp_path / "gone", keep_checkpoints=False)
    assert latest_checkpoint(tmp_path / "gone") is not None                # removed only when asked
    removed = trainer.remove_checkpoints()
    assert sorted(p.name for p in removed) == ["step-4", "step-8"]
    assert latest_checkpoint(tmp_path / "gone") is None and not (tmp_path / "gone" / "latest").exists()
    assert (tmp_path / "gone" / "train_config.json").exists()


SIGINT_WORKER = r"""
import sys, time
sys.path.insert(0, sys.argv[2])
from test_train_switches import model, ragged_collate
from test_train import RandomPretrainingData
from bertkit.training.settings import TrainingSettings
from bertkit.training.trainer import Trainer

def slow(row):
    if row["step"] == 3:
        print("STEP3", flush=True)
    time.sleep(0.2)

cfg = TrainingSettings(learning_rate=2e-3, steps=12, batch_size=8, grad_accum=2, save_every=0, log_every=1,
                       progress=False, seed=3, device="cpu")
trainer = Trainer(model(), RandomPretrainingData(), ragged_collate, cfg, sys.argv[1], on_log=slow)
if trainer.resume():
    print("RESUMED", trainer.state.step, flush=True)
try:
    trainer.train()
except KeyboardInterrupt as exc:
    print("INTERRUPTED", type(exc).__name__, exc.step, flush=True)
    sys.exit(130)
print("LOSSES", [r["loss"] for r in trainer.state.history], flush=True)
"""


def test_ctrl_c_saves_a_checkpoint_and_the_run_resumes_identically(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    worker = [sys.executable, "-c", SIGINT_WORKER]
    full = subprocess.run(worker + [str(tmp_path / "full"), str(HERE)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert full.returncode == 0, full.stderr
    victim = subprocess.Popen(worker + [str(tmp_path / "cut"), str(HERE)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    assert victim.stdout.readline().strip() == "STEP3"
    victim.send_signal(signal.SIGINT)
    out, err = victim.communicate(timeout=120)
    assert victim.returncode == 130, err
    assert "INTERRUPTED TrainingInterrupted" in out
    step = int(out.split()[-1])
    assert step >= 3 and latest_checkpoint(tmp_path / "cut").name == f"step-{step}"
    assert f"interrupted at step {step}/12; checkpoint saved to" in err and "Traceback" not in err
    # the interrupted run, resumed, ends exactly like the uninterrupted one
    resumed = subprocess.run(worker + [str(tmp_path / "cut"), str(HERE)], env=env, capture_output=True,
                             text=True, timeout=300)
    assert f"RESUMED {step}" in resumed.stdout, resumed.stderr
    tail = eval(resumed.stdout.split("LOSSES", 1)[1])
    head = eval(full.stdout.split("LOSSES", 1)[1])
    assert step < 12 and tail == head            # the history of steps 1..step comes from the checkpoint


def test_masked_positions_found_on_the_host_give_the_same_loss():
    """The feed finds the MLM positions on the host (no GPU sync in the head); same logits and loss."""
    from bertkit.training.feed import FeedPlan, host_batches
    plan = FeedPlan(batch_size=8, grad_accum=1, seed=0, collate_seed=1, masked_positions=True)
    batch = next(host_batches(RandomPretrainingData(), ragged_collate, plan)).batch
    assert torch.equal(batch["masked_positions"], (batch["labels"].reshape(-1) != -100).nonzero().squeeze(-1))
    net = model(dropout=0.0).eval()
    found_here = net(**{k: v for k, v in batch.items() if k != "masked_positions"})
    found_on_host = net(**batch)
    assert torch.equal(found_here.prediction_logits, found_on_host.prediction_logits)
    assert torch.equal(found_here.loss, found_on_host.loss)


def test_trainer_passes_masked_positions_only_to_models_that_take_them(tmp_path):
    from bertkit.modeling import BertForSequenceClassification
    _, trainer = run(tmp_path / "a", steps=1)
    assert trainer.feed().plan.masked_positions is True
    classifier = BertForSequenceClassification(BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1,
                                                          num_attention_heads=2, intermediate_size=64))
    other = Trainer(classifier, RandomPretrainingData(), ragged_collate, trainer.cfg, tmp_path / "other")
    assert other.feed().plan.masked_positions is False


def test_collating_in_worker_processes_gives_the_same_run(tmp_path):
    """Two processes collate (torch's DataLoader): the same batches and masks, so the same losses and
    weights bit for bit; a resumed run with workers continues exactly too."""
    plain, a = run(tmp_path / "a", prefetch=0)
    workers, b = run(tmp_path / "b", collate_workers=2)
    assert plain == workers
    wa, wb = (unwrap(t.model).state_dict() for t in (a, b))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    shutil.rmtree(tmp_path / "b" / "step-8")
    (tmp_path / "b" / "latest").write_text("step-4")
    cfg = TrainingSettings(device="cpu", learning_rate=2e-3, steps=8, batch_size=8, grad_accum=2, save_every=4,
                           log_every=1, progress=False, seed=3, collate_workers=2)
    resumed = Trainer(model(0.1), RandomPretrainingData(), ragged_collate, cfg, tmp_path / "b")
    assert resumed.resume() and resumed.state.step == 4
    assert [r["loss"] for r in resumed.train().history] == plain


def test_pretraining_with_collate_workers_is_the_same_run_across_epochs(tmp_path):
    """Real next-sentence pairs drawn anew each epoch (`set_epoch` in the worker processes): several
    epochs of a small corpus give the same model with 2 collating processes as without."""
    from _ddp_modes import equality_settings
    from test_ddp_modes import write_corpus
    write_corpus(tmp_path / "corpus.txt", 16)
    weights = []
    for workers in (0, 2):
        s = equality_settings("eq-nsp", tmp_path, tmp_path / f"w{workers}", batch_size=8, steps=12)
        s.training.collate_workers = workers
        summary = run_pretraining(s)
        state = read_trainer_state(tmp_path / f"w{workers}" / "run" / "step-12")["state"]
        assert summary["steps"] == 12 and state["epoch"] >= 2                           # 3 epochs or more
        weights.append(load_file(str(tmp_path / f"w{workers}" / "model" / "model.safetensors")))
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_per_sequence_attention_follows_the_padded_run(tmp_path):
    """The training switch reaches the encoder; the curve is the padded run's up to float rounding."""
    plain, _ = run(tmp_path / "a", dropout=0.0, unpad_multiple=16)
    varlen, trainer = run(tmp_path / "b", dropout=0.0, unpad_multiple=16, per_sequence_attention=True)
    assert unwrap(trainer.model).bert.per_sequence_attention
    assert max(abs(a - b) for a, b in zip(plain, varlen)) < 1e-5, (plain, varlen)


def test_checkpoints_written_by_a_thread_are_the_checkpoints_of_their_step(tmp_path):
    """`async_checkpoints`: the content is copied at the step and written while training goes on —
    the same files as writing in place, byte for byte, and a resume from them continues exactly."""
    plain, _ = run(tmp_path / "a")
    threaded, trainer = run(tmp_path / "b", async_checkpoints=True)
    assert plain == threaded and trainer.writer.pending is None              # waited for before train() returned
    for step in ("step-4", "step-8"):
        a, b = (tmp_path / run_dir / step for run_dir in ("a", "b"))
        assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
        sa, sb = (read_trainer_state(d) for d in (a, b))
        timing = ("tokens_per_s", "mfu")                                     # the clock's, not the run's
        history = [[{k: v for k, v in r.items() if k not in timing} for r in x["state"].pop("history")]
                   for x in (sa, sb)]
        assert history[0] == history[1] and sa["state"] == sb["state"] and sa["scheduler"] == sb["scheduler"]
        oa, ob = sa["optimizer"]["state"], sb["optimizer"]["state"]
        assert all(torch.equal(oa[i][k], ob[i][k]) for i in oa for k in oa[i])
    (tmp_path / "b" / "latest").write_text("step-4")
    shutil.rmtree(tmp_path / "b" / "step-8")
    cfg = TrainingSettings(device="cpu", learning_rate=2e-3, steps=8, batch_size=8, grad_accum=2, save_every=4,
                           log_every=1, progress=False, seed=3, async_checkpoints=True)
    resumed = Trainer(model(0.1), RandomPretrainingData(), ragged_collate, cfg, tmp_path / "b")
    assert resumed.resume() and [r["loss"] for r in resumed.train().history] == plain
