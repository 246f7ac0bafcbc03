"""The training loop: BERT's optimizer groups, LR schedule, and exact resume."""
from __future__ import annotations

import math

import pytest
import torch

from bertkit.modeling.config import BertConfig
from bertkit.modeling import BertForPreTraining
from bertkit.training.settings import TrainingSettings
from bertkit.training.trainer import (Trainer, epoch_order, latest_checkpoint, linear_warmup_decay,
                           param_groups)

VOCAB = 64


class RandomPretrainingData(torch.utils.data.Dataset):
    """Tiny learnable pretraining examples: runs of consecutive ids (a masked id
    is predictable from its neighbours); the NSP label is the parity of the start."""

    def __init__(self, n: int = 64, length: int = 16):
        g = torch.Generator().manual_seed(0)
        starts = torch.randint(0, VOCAB - 5, (n, 1), generator=g)
        self.ids = (starts + torch.arange(length)) % (VOCAB - 5) + 5
        self.nsp = starts[:, 0] % 2

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "nsp": self.nsp[i]}


def collate(samples, generator):
    """Mask 15% of positions with a per-batch generator (like dynamic masking)."""
    ids = torch.stack([s["input_ids"] for s in samples])
    chosen = torch.rand(ids.shape, generator=generator) < 0.15
    chosen[:, 0] = True                                   # at least one masked position per row
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    inputs = torch.where(chosen, torch.full_like(ids, 4), ids)
    return {"input_ids": inputs, "attention_mask": torch.ones_like(ids), "labels": labels,
            "next_sentence_label": torch.stack([s["nsp"] for s in samples])}


def tiny_model(seed=0):
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=32)
    return BertForPreTraining(cfg)


def make_trainer(out, steps=12, save_every=4, on_log=None, lr=1e-3):
    cfg = TrainingSettings(learning_rate=lr, steps=steps, batch_size=8, grad_accum=2, save_every=save_every,
                           log_every=1, progress=True, seed=3, device="cpu")
    return Trainer(tiny_model(), RandomPretrainingData(), collate, cfg, out, on_log=on_log)


def test_no_weight_decay_on_bias_and_layernorm():
    model = tiny_model()
    decay, no_decay = param_groups(model, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(not names[id(p)].endswith("bias") and "LayerNorm" not in names[id(p)] for p in decay["params"])
    assert any("LayerNorm" in names[id(p)] for p in no_decay["params"])
    assert no_decay["weight_decay"] == 0.0 and decay["weight_decay"] == 0.01


def test_warmup_then_linear_decay():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = linear_warmup_decay(opt, warmup_steps=4, total_steps=10)
    lrs = []
    for _ in range(10):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[4] == pytest.approx(1.0) and lrs[-1] == pytest.approx(1 / 6)
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:]))


def test_epoch_order_is_a_seeded_permutation():
    a, b = epoch_order(100, 1, 0), epoch_order(100, 1, 0)
    assert (a == b).all() and sorted(a.tolist()) == list(range(100))
    assert not (epoch_order(100, 1, 1) == a).all()


def test_loss_decreases(tmp_path):
    state = make_trainer(tmp_path, steps=100, save_every=0, lr=3e-3).train()
    losses = [r["loss"] for r in state.history]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.3


class Crash(Exception):
    pass


def test_resume_after_crash_is_exact(tmp_path):
    full = make_trainer(tmp_path / "full").train()

    def crash_at_step_6(row):
        if row["step"] == 6:
            raise Crash()

    with pytest.raises(Crash):
        make_trainer(tmp_path / "crashed", on_log=crash_at_step_6).train()
    assert latest_checkpoint(tmp_path / "crashed").name == "step-4"
    resumed_trainer = make_trainer(tmp_path / "crashed")
    assert resumed_trainer.resume()
    assert resumed_trainer.state.step == 4
    resumed = resumed_trainer.train()
    assert resumed.step == full.step == 12
    full_losses = [r["loss"] for r in full.history]
    resumed_losses = [r["loss"] for r in resumed.history]
    assert len(full_losses) == len(resumed_losses)
    for a, b in zip(full_losses, resumed_losses):
        assert math.isclose(a, b, abs_tol=1e-6), (full_losses, resumed_losses)
    params_full = full_trainer_params(tmp_path / "full")
    params_resumed = full_trainer_params(tmp_path / "crashed")
    for key in params_full:
        torch.testing.assert_close(params_full[key], params_resumed[key], rtol=0, atol=1e-6)


def full_trainer_params(run_dir):
    from bertkit.modeling.checkpoint import load_state_dict
    return load_state_dict(latest_checkpoint(run_dir))


def test_checkpoints_are_pruned_and_complete(tmp_path):
    make_trainer(tmp_path, steps=12, save_every=2).train()
    steps = sorted(p.name for p in tmp_path.glob("step-*"))
    assert steps == ["step-10", "step-12"]
    assert not list(tmp_path.glob(".tmp-*"))
    assert (tmp_path / "train_log.csv").read_text().count("\n") == 13     # header + 12 rows


def test_resume_refuses_a_different_model(tmp_path):
    make_trainer(tmp_path, steps=4, save_every=0).train()
    cfg = TrainingSettings(steps=8, batch_size=8, device="cpu")
    other = BertForPreTraining(BertConfig(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2,
                                          num_attention_heads=2, intermediate_size=64,
                                          max_position_embeddings=32))
    trainer = Trainer(other, RandomPretrainingData(), collate, cfg, tmp_path)
    with pytest.raises(ValueError, match="different model config"):
        trainer.resume()


def test_evaluates_every_eval_every_steps_even_between_log_lines(tmp_path):
    cfg = TrainingSettings(steps=12, batch_size=8, log_every=5, save_every=0, progress=False, eval_at_start=False,
                           device="cpu")
    seen = []
    trainer = Trainer(tiny_model(), RandomPretrainingData(), collate, cfg, tmp_path, eval_every=3,
                      evaluate=lambda m: seen.append(1) or {"metric": float(len(seen))})
    state = trainer.train()
    assert [r["step"] for r in state.history if "metric" in r] == [3, 6, 9, 12]
