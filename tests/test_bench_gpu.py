"""bench/bench_gpu.py cannot rot: its CPU smoke run (tiny model, two steps per row) goes through
every section — the step race, inference, the CLI's pretraining path, the compiled models, the
profile of one step and each speed switch — and writes results.json / results.md."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture()
def bench_gpu(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    threads = torch.get_num_threads()
    before = set(sys.modules)
    import bench_gpu
    yield bench_gpu
    torch.set_num_threads(threads)
    for name in set(sys.modules) - before:            # bench's `_common` must not shadow examples/_common.py
        if str(getattr(sys.modules[name], "__file__", "") or "").startswith(str(BENCH)):
            del sys.modules[name]


def test_smoke_run_covers_every_section(bench_gpu, tmp_path, capsys):
    results = bench_gpu.main(["--smoke", "--out", str(tmp_path)])
    assert not results.get("errors"), results.get("errors")
    assert not results.get("notes"), results.get("notes")
    saved = json.loads((tmp_path / "results.json").read_text())
    failed = [r for section in ("train", "inference", "switches", "compiled") for r in saved[section] if "error" in r]
    assert not failed, failed
    assert saved["env"]["smoke"] is True and saved["env"]["matmul_tflops"] > 0
    train = {(r["shape"], r["contestant"]) for r in saved["train"]}
    assert len(train) == 12 and all(r["tokens_per_s"] > 0 for r in saved["train"])
    assert {c for _, c in train} == {"bertkit", "bertkit fast", "reference"}
    assert {r["contestant"] for r in saved["inference"]} == {"bertkit", "reference", "bertkit, bf16 model",
                                                              "reference, bf16 model"}
    switches = {r["contestant"] for r in saved["switches"]}
    assert {"plain", "masked positions from the host", "plan exact rows", "plan rows to 128",
            "bf16 weights + fp32 masters", "fused tails: torch.compile"} <= switches
    # every switch starts from the same weights and batch: the first losses agree
    losses = [r["first_loss"] for r in saved["switches"]]
    assert max(losses) - min(losses) < 0.1, losses
    cli = saved["cli"]
    assert not [r for r in cli if "error" in r], cli
    assert cli[0]["path"].startswith("run_pretraining") and cli[0]["tokens_per_s"] > 0
    bare = next(r for r in cli if r["path"].startswith("bare step"))
    assert bare["tokens_per_s"] > 0 and cli[0]["vs_bare_step"] > 0
    assert any("prefetch 2" in r["path"] for r in cli)
    packed = [r for r in cli if "--pack" in r["path"]]
    if packed:                                        # the Korean corpus is in ../shared/data
        alone = next(r for r in cli if r["corpus"].startswith("Korean") and r["path"].startswith("run_pretraining"))
        assert packed[0]["real_tokens_per_row"] > 1.5 * alone["real_tokens_per_row"]
    assert saved["compiled"] and all("skipped" not in r for r in saved["compiled"])
    assert {r["what"] for r in saved["profile"]} >= {"one step (profiled)", "host: issuing the step"}
    markdown = (tmp_path / "results.md").read_text()
    assert "## train" in markdown and "## cli" in markdown and "CPU smoke run" in markdown
    assert "## switches" in capsys.readouterr().out
