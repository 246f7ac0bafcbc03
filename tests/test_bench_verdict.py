"""A side-by-side benchmark whose outputs differ from the reference's fails: the shared verdict
(bench/_common.fail_if_different) exits with status 1 and says which row, and each benchmark
feeds it its own tolerance (inference and scaling: 0; pretraining loss curves: 1e-5;
fine-tuning best scores: 0.03)."""
from __future__ import annotations

import math
import subprocess
import sys

import pytest

from conftest import REPO, import_bench

common = import_bench("_common")


def test_a_crafted_mismatch_exits_1_with_one_line_per_row(capsys):
    with pytest.raises(SystemExit) as stop:
        common.fail_if_different([("minilm fixed bertkit", 0.0, 0.0), ("minilm mixed bertkit", 3e-7, 0.0),
                                  ("BERT-mini loss curve", math.nan, 1e-5)])
    assert stop.value.code == 1
    err = capsys.readouterr().err.splitlines()
    assert err == ["DIFFERENT: minilm mixed bertkit: |bertkit - reference| = 3e-07 > tolerance 0",
                   "DIFFERENT: BERT-mini loss curve: |bertkit - reference| = nan > tolerance 1e-05"]


def test_within_tolerance_passes(capsys):
    common.fail_if_different([("a", 0.0, 0.0), ("b", 1e-5, 1e-5)])
    assert "all 2 comparisons" in capsys.readouterr().out


def test_the_exit_status_of_a_process_is_1():
    code = ("import sys; sys.path.insert(0, 'bench'); import _common; "
            "_common.fail_if_different([('row', 2.0, 1.0)])")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "DIFFERENT: row" in result.stderr


def test_each_benchmark_states_its_tolerance():
    assert import_bench("bench_inference").TOLERANCE["bertkit"] == 0.0
    assert import_bench("bench_scaling").TOLERANCE == 0.0
    assert import_bench("bench_pretrain").LOSS_TOLERANCE == 1e-5


def test_finetune_scores_further_apart_than_the_tolerance_fail():
    bench = import_bench("bench_finetune")
    row = {"task": "sst2", "metric": "accuracy", "bertkit": {"best": {"accuracy": 0.90}},
           "reference": {"best": {"accuracy": 0.86}}}
    (what, diff, tol), = bench.score_comparisons([row])
    assert what == "sst2 best accuracy" and diff == pytest.approx(0.04) and tol == bench.SCORE_TOLERANCE == 0.03
    with pytest.raises(SystemExit):
        bench.fail_if_different(bench.score_comparisons([row]))
    row["reference"]["best"]["accuracy"] = 0.88
    bench.fail_if_different(bench.score_comparisons([row]))
