"""Attention pictures: the right numbers (= the reference's attentions), a PNG grid, a self-contained HTML."""
from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest
import torch

from pipeline_fixtures import tiny_model_dir


@pytest.fixture(scope="module")
def maps(minilm_path):
    from bertkit.apps.viz import attention_maps
    return attention_maps("I love Paris", minilm_path)


def test_shapes_tokens_and_rows(maps):
    assert maps["tokens"] == ["[CLS]", "i", "love", "paris", "[SEP]"]
    assert maps["attentions"].shape == (6, 12, 5, 5)                     # MiniLM: 6 layers × 12 heads
    np.testing.assert_allclose(maps["attentions"].sum(-1), 1.0, atol=1e-5)


def test_same_attentions_as_the_reference(maps, minilm_path):
    transformers = pytest.importorskip("transformers")
    model = transformers.BertModel.from_pretrained(minilm_path, attn_implementation="eager").eval()
    tok = transformers.BertTokenizerFast.from_pretrained(minilm_path)
    with torch.no_grad():
        ref = model(**tok("I love Paris", return_tensors="pt"), output_attentions=True).attentions
    np.testing.assert_allclose(maps["attentions"], torch.stack([a[0] for a in ref]).numpy(), atol=1e-5)


def test_pair_keeps_both_segments(minilm_path):
    from bertkit.apps.viz import attention_maps
    m = attention_maps("I love Paris", minilm_path, pair="It is a beautiful city.")
    assert m["tokens"].count("[SEP]") == 2 and m["tokens"][0] == "[CLS]"
    first_sep = m["tokens"].index("[SEP]")
    assert m["token_type_ids"][:first_sep + 1] == [0] * (first_sep + 1) and set(m["token_type_ids"][first_sep + 1:]) == {1}


def test_png_and_html_files(tmp_path, minilm_path):
    pytest.importorskip("matplotlib")
    from bertkit.apps.viz import attention_maps, save_attention
    out = save_attention("I love Paris", minilm_path, tmp_path, pair="It is big")
    assert out["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out["png"].stat().st_size > 20_000
    page = out["html"].read_text(encoding="utf-8")
    assert not re.search(r"https?://|<script\s+src|<link\s", page)        # nothing fetched from anywhere
    assert "renderAttention" in page and "[CLS]" in page
    data = json.loads(re.search(r"const DATA = (.*?);\nrenderAttention", page, re.S).group(1))
    ref = attention_maps("I love Paris", minilm_path, pair="It is big")
    assert data["tokens"] == ref["tokens"]
    np.testing.assert_allclose(np.array(data["attentions"]), ref["attentions"], atol=6e-4)


def test_png_needs_matplotlib_and_says_so(tmp_path, monkeypatch, minilm_path):
    from bertkit.apps.viz import save_attention
    monkeypatch.setitem(sys.modules, "matplotlib", None)                 # pretend it is not installed
    with pytest.raises(ImportError, match=r"bertkit\[viz\]"):
        save_attention("I love Paris", minilm_path, tmp_path)
    out = save_attention("I love Paris", minilm_path, tmp_path, png=False)   # HTML still works
    assert out["png"] is None and out["html"].is_file()


def test_cli_attention(tmp_path, minilm_path, capsys):
    from bertkit.cli import main
    d = tiny_model_dir(tmp_path / "m", "BertForMaskedLM", minilm_path)
    assert main(["attention", "I love Paris", "--pair", "so much", "--model", str(d), "--out",
                 str(tmp_path / "a"), "--json", "--no-png"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["shape"][:2] == [2, 4] and result["tokens"][0] == "[CLS]"
    assert main(["attention", "", "--model", str(d), "--out", str(tmp_path / "b")]) == 2
    assert "non-empty" in capsys.readouterr().err


def test_page_files_are_package_data_and_fill_in_one_pass():
    """The viewer's HTML/JS/CSS live in bertkit/apps/static, read with importlib.resources:
    pyproject.toml must ship them (a non-editable install has no source tree to read)."""
    import fnmatch
    import tomllib
    from pathlib import Path

    from bertkit.apps.serve import page_html
    from bertkit.apps.viz import render_static

    root = Path(__file__).resolve().parents[1]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["bertkit"]
    package = root / "src" / "bertkit"
    files = sorted(p.relative_to(package).as_posix() for p in (package / "apps" / "static").iterdir())
    assert {"apps/static/attention.js", "apps/static/attention.css", "apps/static/attention.html",
            "apps/static/demo.html"} <= set(files)
    assert all(any(fnmatch.fnmatch(f, p) for p in patterns) for f in files), (files, patterns)
    page = page_html()
    assert "function renderAttention" in page and ".bk-attn" in page
    assert "/*CSS*/" not in page and "/*ATTENTION_JS*/" not in page
    one = render_static("attention.html", title="__DATA__", subtitle="/*CSS*/", data="{}")
    assert "<title>__DATA__</title>" in one and '<p class="bk-sub">/*CSS*/</p>' in one
