"""bench/bench_memory.py: the child mode measures sane figures, and the verdict flags excess.

The children run the cheap tokenizer path on a few hundred real lines in fresh
subprocesses, as the benchmark does; a whole benchmark run is not part of the tests.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import import_bench


bench_memory = import_bench("bench_memory")


@pytest.fixture(scope="module")
def tokenizer_workdir(tmp_path_factory, minilm_path):
    """Inputs of the tokenizer path (300 lines), built by the benchmark's own `prepare`."""
    workdir = tmp_path_factory.mktemp("bench_memory")
    bench_memory.prepare(["tokenizer"], workdir, bench_memory.parse_args(["--lines", "300"]))
    return workdir


def run_child(impl: str, workdir: Path) -> dict:
    args = bench_memory.parse_args(["--threads", "1", "--tok-batch", "100"])
    cmd = bench_memory.child_command("tokenizer", impl, workdir, args)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads([line for line in result.stdout.splitlines() if line.startswith("{")][-1])


def check_sane(r: dict, impl: str) -> None:
    assert (r["path"], r["impl"]) == ("tokenizer", impl)
    assert r["baseline_mb"] > 20                                 # Python + torch are resident at least
    assert r["load_peak_mb"] >= r["baseline_mb"] - 1             # (kB rounding)
    assert r["peak_mb"] >= r["path_peak_mb"] >= r["baseline_mb"] - 1
    assert r["peak_mb"] == max(r["load_peak_mb"], r["path_peak_mb"])
    assert r["working_mb"] == pytest.approx(r["path_peak_mb"] - r["baseline_mb"])
    assert r["peak_mb"] < 4096                                   # a few hundred lines: nowhere near GiBs
    assert r["foreign_modules"] == []                            # the other side was not imported
    assert r["checks"]["lines"] == 300 and r["checks"]["tokens"] > 300
    if sys.platform.startswith("linux"):
        assert r["hwm_reset"]


def test_bertkit_child_reports_sane_figures_without_transformers(tokenizer_workdir):
    check_sane(run_child("bertkit", tokenizer_workdir), "bertkit")


def test_reference_child_encodes_the_same_tokens(tokenizer_workdir):
    pytest.importorskip("transformers")
    ours, ref = run_child("bertkit", tokenizer_workdir), run_child("reference", tokenizer_workdir)
    check_sane(ref, "reference")
    assert ref["checks"] == ours["checks"]                       # same lines, same ids: same work measured


def fake(peak: float, working: float) -> dict:
    return {"peak_mb": peak, "working_mb": working}


def test_verdict_flags_only_real_excess():
    assert bench_memory.verdict(fake(300, 50), fake(400, 90)) == "OK"
    assert bench_memory.verdict(fake(401, 91), fake(400, 90)) == "OK"          # within 2 MiB / 2 %
    assert bench_memory.verdict(fake(500, 50), fake(400, 90)) == "peak ABOVE ref by 100 MiB"
    assert bench_memory.verdict(fake(300, 120), fake(400, 90)) == "working ABOVE ref by 30 MiB"


def test_median_run_picks_the_middle_peak():
    runs = [fake(p, 0) for p in (5, 1, 3)]
    assert bench_memory.median_run(runs)["peak_mb"] == 3
