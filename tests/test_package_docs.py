"""A package docstring that lists its modules lists all of them (a new module is added to the list)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "bertkit"
LISTING = [p.parent for p in SRC.glob("*/__init__.py")
           if re.search(r"^\s+\w+\.py\s", ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) or "", re.M)]


def test_the_module_lists_are_found():
    assert {"modeling", "common"} <= {p.name for p in LISTING}


@pytest.mark.parametrize("package", LISTING, ids=lambda p: p.name)
def test_every_module_is_named_in_its_package_docstring(package):
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8")))
    missing = [p.name for p in sorted(package.glob("*.py")) if p.name != "__init__.py" and p.name not in doc]
    assert missing == []
