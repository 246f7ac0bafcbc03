"""The demo page in a real (headless) browser: its JavaScript runs, calls the API and fills the page.

Needs `chromium` on PATH (Debian: apt-get install chromium); skipped otherwise.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile

import pytest

from pipeline_fixtures import tiny_model_dir

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")


def _chromium(url: str, *extra: str) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp(prefix="bertkit-chromium-")
    try:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--virtual-time-budget=8000", "--window-size=1200,900", *extra, url],
            capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def server_url(tmp_path_factory, minilm_path):
    from bertkit.apps.serve import create_app, start_in_thread
    root = tmp_path_factory.mktemp("browser")
    mlm = tiny_model_dir(root / "mlm", "BertForMaskedLM", minilm_path)
    server, thread, url = start_in_thread(create_app(mlm))
    yield url
    server.should_exit = True
    thread.join(timeout=10)


def test_page_script_fetches_health_and_fills_the_mask(server_url):
    dom = _chromium(server_url + "/", "--dump-dom").stdout
    assert 'id="status" data-ready="1"' in dom                 # set by JS after GET /api/health
    assert "2 layers × 4 heads" in dom and "QA off" in dom
    assert "<table class=\"fills\">" in dom                    # POST /api/fill-mask rendered its rows
    assert "No question-answering model loaded" in dom         # the QA tab says why it is off
    assert "<b>question answering is off:</b> no question-answering model" in dom   # and the banner on top


def test_attention_tab_draws(server_url):
    dom = _chromium(server_url + "/#attn", "--dump-dom").stdout
    assert '<div id="attn-out" class="bk-attn" data-ready="1">' in dom   # renderAttention finished
    assert '<option value="1">1</option>' in dom                          # a layer menu with both layers
    assert dom.count('<canvas') >= 5                          # 4 head thumbnails + the big map


def test_screenshot(server_url, tmp_path):
    shot = tmp_path / "demo.png"
    _chromium(server_url + "/", f"--screenshot={shot}")
    assert shot.is_file() and shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_docs_page_renders_with_no_internet(server_url):
    """/docs (Swagger UI) draws every endpoint with every other host unreachable: nothing comes from a CDN."""
    dom = _chromium(server_url + "/docs", "--dump-dom", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1").stdout
    assert 'class="swagger-ui"' in dom and "bertkit demo" in dom
    for path in ("/api/health", "/api/fill-mask", "/api/qa", "/api/attention", "/api/embed"):
        assert f'data-path="{path}"' in dom, path
