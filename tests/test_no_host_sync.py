"""A training step never makes the host wait for the device.

On a GPU every `.item()`, `nonzero`, boolean-mask selection or `bool(tensor)` inside a step makes
the CPU wait until the GPU has finished everything queued so far: the CPU then cannot prepare the
next step while the GPU runs this one.  The step as the Trainer runs it on a GPU (unpadding plan and
MLM positions built on the host, fused AdamW, gradient clipping) is checked here, on the CPU, under a
dispatch mode that fails on every operation that would read a device value on the host.
"""
from __future__ import annotations

import pytest
import torch
from test_train import RandomPretrainingData, collate, tiny_model
from torch.utils._python_dispatch import TorchDispatchMode

from bertkit.training.settings import TrainingSettings
from bertkit.training.trainer import Trainer

HOST_READS = {"aten::_local_scalar_dense", "aten::item", "aten::is_nonzero", "aten::nonzero", "aten::nonzero_static",
              "aten::masked_select", "aten::equal", "aten::_unique2", "aten::unique_dim", "aten::unique_consecutive"}


class FailOnHostReads(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.seen = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func._schema.name in HOST_READS:
            raise AssertionError(f"a training step read a device value on the host: {func._schema.name}")
        self.seen += 1
        return func(*args, **(kwargs or {}))


def test_the_mode_catches_a_host_read():
    with pytest.raises(AssertionError, match="_local_scalar_dense"), FailOnHostReads():
        torch.ones(3).sum().item()


@pytest.mark.parametrize("grad_accum", [1, 2])
def test_a_training_step_reads_nothing_back_from_the_device(tmp_path, grad_accum):
    settings = TrainingSettings(learning_rate=1e-3, steps=4, batch_size=8, grad_accum=grad_accum, log_every=100,
                                progress=False, seed=3, device="cpu", unpad_multiple=8, fused_adam=True)
    trainer = Trainer(tiny_model(), RandomPretrainingData(), collate, settings, tmp_path)
    feed = trainer.feed()
    batches = [next(feed) for _ in range(2 * grad_accum)]            # collated on the host, outside the step
    assert {"unpad", "masked_positions"} <= set(batches[0].batch)    # the GPU's host-built plans
    items = iter(batches)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.model.train()
    with FailOnHostReads() as mode:
        for _ in range(2):
            trainer._optimizer_step(items)
    assert mode.seen > 100                                              # forward, backward, clip, AdamW ran
    assert any(not torch.equal(a, p) for a, p in zip(before, trainer.model.parameters()))
