"""Attention pictures: what does each head of each layer look at?

Every layer of BERT has A heads; each head turns its queries and keys into a T×T matrix
of weights, softmax(QKᵀ/√d) — row i says how token i spreads its attention over all
tokens (the row sums to 1).  Looking at them shows heads that attend to the next or
previous word, heads that park on [SEP] or [CLS] ("no-op" attention), heads that link
a pronoun to its noun.

* `attention_maps(text, model, pair=None)` → tokens + an [L,A,T,T] array;
* `save_png_grid(...)`  every layer (rows) × every head (columns) in one PNG (matplotlib,
  `pip install bertkit[viz]`);
* `save_html(...)` one self-contained HTML file (inline JS/CSS, no network) to browse
  layers and heads, tokens on both axes, hover for the exact weight;
* `save_attention(text, model, out_dir, pair=None)` → both files.

[CLS] and [SEP] are kept (they draw much of the attention) and shown in another colour.
"""
from __future__ import annotations

import html
import json
import re
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from bertkit.common.errors import InputError, NotFoundError, missing_dependency
from bertkit.modeling.encoder import BertModel
from bertkit.text.tokenizer import BertTokenizer


def _load(model, tokenizer=None):
    """A model directory or a loaded (model, tokenizer) → (BertModel encoder, tokenizer)."""
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not (path / "config.json").is_file():
            raise NotFoundError(f"model directory not found or without config.json: {path}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # any head weights: the encoder is all we need
            model = BertModel.from_pretrained(path)
        tokenizer = tokenizer or BertTokenizer.from_pretrained(path)
    if tokenizer is None:
        raise InputError("pass tokenizer= with an already-loaded model")
    return getattr(model, "bert", model).eval(), tokenizer


@torch.no_grad()
def attention_maps(text: str, model, pair: str | None = None, tokenizer=None, max_length: int = 128) -> dict:
    """{"tokens": [T], "token_type_ids": [T], "attentions": np.ndarray [L,A,T,T]} for one input."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("give a non-empty sentence to look at")
    encoder, tok = _load(model, tokenizer)
    limit = min(max_length, encoder.config.max_position_embeddings)
    enc = tok(text, text_pair=pair, truncation=True, max_length=limit, return_tensors="pt")
    device = next(encoder.parameters()).device
    inputs = {k: enc[k].to(device) for k in ("input_ids", "token_type_ids", "attention_mask")}
    out = encoder(**inputs, output_attentions=True)
    attn = torch.stack([a[0] for a in out.attentions]).float().cpu().numpy()    # [L,A,T,T]
    return {"tokens": tok.convert_ids_to_tokens(enc["input_ids"][0].tolist()),
            "token_type_ids": enc["token_type_ids"][0].tolist(), "attentions": attn}


# ----------------------------------------------------------------------------- PNG

def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise missing_dependency("matplotlib", "viz",
                                 "drawing attention PNGs (the HTML view works without it)") from None
    return plt


def save_png_grid(tokens: list[str], attentions: np.ndarray, out_png, title: str = "") -> Path:
    """All layers (rows) × all heads (columns) as small heat maps in one PNG.

    Token labels are drawn on the left column and the bottom row when there are few
    enough tokens to read (≤ 40)."""
    plt = _pyplot()
    L, A, T, _ = attentions.shape
    cell = 1.5 if T <= 16 else 2.2
    fig, axes = plt.subplots(L, A, figsize=(A * cell + 1, L * cell + 1), squeeze=False)
    show_labels = T <= 40
    for layer in range(L):
        for head in range(A):
            ax = axes[layer][head]
            ax.imshow(attentions[layer, head], cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if layer == 0:
                ax.set_title(f"head {head}", fontsize=7)
            if head == 0:
                ax.set_ylabel(f"layer {layer}", fontsize=7)
            if show_labels and head == 0:
                ax.set_yticks(range(T), tokens, fontsize=max(3, 7 - T // 10))
            if show_labels and layer == L - 1:
                ax.set_xticks(range(T), tokens, fontsize=max(3, 7 - T // 10), rotation=90)
    fig.suptitle(title or "attention: rows = query token (from), columns = key token (to)", fontsize=9)
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


# ----------------------------------------------------------------------------- HTML

STATIC = "static"          # package data next to this module: attention.{js,css,html}, demo.html


def static_text(name: str) -> str:
    """A file of bertkit/apps/static (shipped as package data), as text."""
    return resources.files("bertkit.apps").joinpath(STATIC).joinpath(name).read_text(encoding="utf-8")


def render_static(name: str, **values: str) -> str:
    """A static page with its markers (__TITLE__, /*CSS*/, ...) replaced, all in one pass.

    One pass: a value that happens to contain a marker (a title with "__DATA__" in it)
    is inserted as it is, never replaced again.
    """
    markers = {f"__{key.upper()}__": value for key, value in values.items()}
    markers["/*CSS*/"] = static_text("attention.css")
    markers["/*ATTENTION_JS*/"] = static_text("attention.js")
    pattern = re.compile("|".join(re.escape(m) for m in markers))
    return pattern.sub(lambda m: markers[m.group()], static_text(name))


def attention_payload(tokens: list[str], attentions: np.ndarray, decimals: int = 3) -> dict:
    """JSON-able {"tokens", "attentions": [L][A][T][T]} with rounded weights (smaller files)."""
    return {"tokens": list(tokens), "attentions": np.round(attentions.astype(np.float64), decimals).tolist()}


def save_html(tokens: list[str], attentions: np.ndarray, out_html, title: str = "BERT attention",
              subtitle: str = "") -> Path:
    """One self-contained HTML file (no external scripts, styles or fonts)."""
    data = json.dumps(attention_payload(tokens, attentions), separators=(",", ":"))
    data = data.replace("</", "<\\/")                     # never close the <script> early
    page = render_static("attention.html", title=html.escape(title), subtitle=html.escape(subtitle), data=data)
    out_html = Path(out_html)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    out_html.write_text(page, encoding="utf-8")
    return out_html


def save_attention(text: str, model, out_dir, pair: str | None = None, tokenizer=None, png: bool = True,
                   max_length: int = 128) -> dict:
    """Attention of `text` (and `pair`) → out_dir/attention.png + out_dir/attention.html.

    Returns {"tokens", "shape": [L,A,T,T], "png": path or None, "html": path}."""
    maps = attention_maps(text, model, pair=pair, tokenizer=tokenizer, max_length=max_length)
    tokens, attn = maps["tokens"], maps["attentions"]
    out_dir = Path(out_dir)
    shown = text if pair is None else f"{text}  ‖  {pair}"
    L, A, T, _ = attn.shape
    subtitle = f"{shown} — {L} layers × {A} heads, {T} tokens"
    html_path = save_html(tokens, attn, out_dir / "attention.html", subtitle=subtitle)
    png_path = save_png_grid(tokens, attn, out_dir / "attention.png", title=subtitle) if png else None
    return {"tokens": tokens, "shape": list(attn.shape), "png": png_path, "html": html_path}
