"""Run by tests/test_ddp.py (and test_time_budget.py, with `budget`) under `torchrun --nproc_per_node 2`: a tiny
pretraining run with DDP (gloo)."""
import hashlib
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_train import RandomPretrainingData, collate, tiny_model  # noqa: E402

from bertkit.training.settings import TrainingSettings  # noqa: E402
from bertkit.training.trainer import Trainer, unwrap  # noqa: E402

out = Path(sys.argv[1])
torch.set_num_threads(1)
budget = sys.argv[2:3] == ["budget"]          # train for 3 s of rank 0's clock instead of 10 steps
cfg = TrainingSettings(learning_rate=3e-3, steps=None if budget else 10, time_budget="3s" if budget else None,
                       batch_size=4, save_every=0 if budget else 5, log_every=0 if budget else 1, progress=False,
                       seed=3, device="cpu")
trainer = Trainer(tiny_model(), RandomPretrainingData(), collate, cfg, out)
state = trainer.train()
digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in unwrap(trainer.model).parameters()))
(out / f"rank{trainer.dist.rank}.json").write_text(json.dumps(
    {"world": trainer.dist.world, "step": state.step, "params_sha": digest.hexdigest(), "seconds": state.seconds,
     "losses": [r["loss"] for r in state.history]}))
