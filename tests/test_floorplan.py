"""The tree is the architecture: floors, and every import points down.

    common → text → modeling → data → tasks → training → pipelines → apps → cli

A module may import from its own floor or any floor below it, never above; there
are no import cycles; bertkit's own imports sit at the top of a module (a function may
import lazily only an optional third-party package); no function is longer than 60
lines and no module longer than 500; the README's "Layout" block lists exactly the
modules that exist.
"""
from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "bertkit"
FLOORS = ["common", "text", "modeling", "data", "tasks", "training", "pipelines", "apps", "cli"]
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 500


def modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return out


def internal_imports(name: str, tree: ast.Module):
    """(imported module, node, at module top?) for every import of bertkit code."""
    top = {id(node) for node in tree.body}
    is_package = (PACKAGE.parent / Path(*name.split(".")) / "__init__.py").exists()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.startswith("bertkit"):
                targets = [f"{base}.{a.name}" if _is_module(f"{base}.{a.name}") else base for a in node.names]
                for target in targets:
                    yield target, node, id(node) in top
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("bertkit"):
                    yield alias.name, node, id(node) in top


def _is_module(name: str) -> bool:
    path = PACKAGE.parent / Path(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def floor(module: str) -> int | None:
    parts = module.split(".")
    return FLOORS.index(parts[1]) if len(parts) > 1 and parts[1] in FLOORS else None


def test_every_module_lives_on_a_floor():
    strays = [m for m in modules() if m != "bertkit" and floor(m) is None]
    assert not strays, f"modules outside the floors {FLOORS}: {strays}"


def test_imports_only_point_down_and_sit_at_the_top():
    upward, inner = [], []
    for name, tree in modules().items():
        for target, node, at_top in internal_imports(name, tree):
            here, there = floor(name), floor(target)
            if here is not None and there is not None and there > here:
                upward.append(f"{name}:{node.lineno} imports {target} (floor {FLOORS[there]} is above {FLOORS[here]})")
            if not at_top and name != "bertkit":
                inner.append(f"{name}:{node.lineno} imports {target} inside a function")
    assert not upward, "\n".join(upward)
    assert not inner, "\n".join(inner)


def test_no_import_cycles():
    graph = defaultdict(set)
    mods = modules()
    for name, tree in mods.items():
        for target, _, _ in internal_imports(name, tree):
            while target not in mods and "." in target:
                target = target.rsplit(".", 1)[0]
            if target != name and target != "bertkit":
                graph[name].add(target)
    seen, stack, cycles = {}, [], []

    def visit(v):
        seen[v] = "open"
        stack.append(v)
        for w in graph[v]:
            if seen.get(w) == "open":
                cycles.append(stack[stack.index(w):] + [w])
            elif w not in seen:
                visit(w)
        stack.pop()
        seen[v] = "done"

    for v in list(mods):
        if v not in seen:
            visit(v)
    assert not cycles, "import cycles: " + "; ".join(" → ".join(c) for c in cycles[:5])


def test_functions_and_modules_are_short():
    long_functions, long_modules = [], []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_MODULE_LINES:
            long_modules.append(f"{path.relative_to(PACKAGE)} {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} {length} lines")
    assert not long_modules, long_modules
    assert not long_functions, long_functions


def readme_layout() -> set[str]:
    """Modules the README's Layout block names: under `  package/`, every `name.py` (continuation
    lines are indented further); a line starting at column 0 (tests/, bench/) ends the package."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Layout\n.*?```\n(.*?)```", text, re.S)
    assert block, "README.md needs a '## Layout' section with a ``` block of the tree"
    listed, package = set(), None
    for line in block.group(1).splitlines():
        if re.match(r"\S", line):
            package = None
        m = re.match(r"\s+(\w+)/(\s|$)", line)
        if m:
            package = m.group(1)
        if package:
            listed.update(f"{package}.{module}" for module in re.findall(r"\b(\w+)\.py\b", line))
    return listed


def test_readme_layout_lists_the_tree():
    actual = set()
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.name == "__init__.py" or rel.name == "__main__.py":
            continue
        actual.add(".".join(rel.with_suffix("").parts))
    listed = readme_layout()
    assert actual - listed == set(), f"modules missing from README's Layout: {sorted(actual - listed)}"
    assert listed - actual == set(), f"README's Layout lists modules that do not exist: {sorted(listed - actual)}"
