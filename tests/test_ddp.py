"""Data-parallel training with two CPU processes (torchrun + gloo)."""
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_two_process_training_keeps_replicas_identical(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           str(HERE / "_ddp_worker.py"), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 and r["step"] == 10 for r in ranks)
    assert ranks[0]["params_sha"] == ranks[1]["params_sha"], "replicas diverged: gradients were not averaged"
    assert ranks[0]["losses"] != ranks[1]["losses"], "both ranks saw the same data: the sampler did not shard"
    assert sorted(p.name for p in tmp_path.glob("step-*")) == ["step-10", "step-5"]   # written once, by rank 0
