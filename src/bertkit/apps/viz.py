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
from pathlib import Path

import numpy as np
import torch


def _load(model, tokenizer=None):
    """A model directory or a loaded (model, tokenizer) → (BertModel encoder, tokenizer)."""
    import bertkit
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"model directory not found or without config.json: {path}")
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # any head weights: the encoder is all we need
            model = bertkit.BertModel.from_pretrained(path)
        tokenizer = tokenizer or bertkit.BertTokenizer.from_pretrained(path)
    if tokenizer is None:
        raise ValueError("pass tokenizer= with an already-loaded model")
    return getattr(model, "bert", model).eval(), tokenizer


@torch.no_grad()
def attention_maps(text: str, model, pair: str | None = None, tokenizer=None, max_length: int = 128) -> dict:
    """{"tokens": [T], "token_type_ids": [T], "attentions": np.ndarray [L,A,T,T]} for one input."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("give a non-empty sentence to look at")
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
        raise ImportError("attention PNGs need matplotlib: pip install 'bertkit[viz]' "
                          "(the HTML view works without it)") from None
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

ATTENTION_CSS = """
.bk-attn { font-family: system-ui, sans-serif; font-size: 14px; }
.bk-attn .bk-controls { margin: 6px 0; display: flex; gap: 12px; align-items: center; flex-wrap: wrap; }
.bk-attn .bk-thumbs { display: flex; flex-wrap: wrap; gap: 4px; margin: 6px 0; }
.bk-attn .bk-thumbs canvas { border: 2px solid transparent; cursor: pointer; }
.bk-attn .bk-thumbs canvas.bk-on { border-color: #d33; }
.bk-attn .bk-hover { min-height: 1.4em; color: #333; }
.bk-attn .bk-legend span { padding: 0 4px; }
"""

ATTENTION_JS = r"""
// Draws BERT attention: a big heat map for one layer/head (or the mean of a layer's heads)
// with tokens on both axes, and one clickable thumbnail per head of the chosen layer.
function bkColor(v) {            // 0 → pale, 1 (the map's largest weight) → dark blue
  const t = Math.max(0, Math.min(1, v));
  const r = Math.round(247 - t * 239), g = Math.round(251 - t * 203), b = Math.round(255 - t * 148);
  return `rgb(${r},${g},${b})`;
}
function bkMatrix(data, layer, head) {
  const heads = data.attentions[layer];
  if (head >= 0) return heads[head];
  const T = heads[0].length, m = [];
  for (let i = 0; i < T; i++) { m.push(new Array(T).fill(0));
    for (let h = 0; h < heads.length; h++) for (let j = 0; j < T; j++) m[i][j] += heads[h][i][j] / heads.length; }
  return m;
}
function bkIsSpecial(tok) { return /^\[(CLS|SEP|PAD|MASK|UNK)\]$/.test(tok); }
function bkDraw(canvas, m, tokens, big) {
  const T = m.length, ctx = canvas.getContext("2d");
  const label = big ? Math.min(110, 8 + 7 * Math.max(...tokens.map(t => t.length))) : 0;
  const cell = big ? Math.max(8, Math.min(28, Math.floor(560 / T))) : Math.max(1, Math.floor(72 / T));
  canvas.width = label + cell * T; canvas.height = label + cell * T;
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, canvas.width, canvas.height);
  let top = 1e-6;                 // colours relative to the largest weight of this map
  for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) top = Math.max(top, m[i][j]);
  for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) {
    ctx.fillStyle = bkColor(m[i][j] / top); ctx.fillRect(label + j * cell, label + i * cell, cell, cell); }
  if (big) {
    ctx.font = `${Math.min(13, cell)}px system-ui, sans-serif`; ctx.textBaseline = "middle";
    for (let i = 0; i < T; i++) {
      ctx.fillStyle = bkIsSpecial(tokens[i]) ? "#c22" : "#222";
      ctx.textAlign = "right"; ctx.fillText(tokens[i], label - 4, label + i * cell + cell / 2);
      ctx.save(); ctx.translate(label + i * cell + cell / 2, label - 4); ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "left"; ctx.fillText(tokens[i], 0, 0); ctx.restore();
    }
  }
  canvas.dataset.label = label; canvas.dataset.cell = cell;
}
function renderAttention(root, data) {
  const L = data.attentions.length, A = data.attentions[0].length;
  root.classList.add("bk-attn");
  root.innerHTML = `<div class="bk-controls">
      <label>layer <select class="bk-layer"></select></label>
      <label>head <select class="bk-head"></select></label>
      <span class="bk-legend">rows: query token (from) · columns: key token (to) ·
        <span style="color:#c22">[CLS]/[SEP] in red</span></span></div>
    <div class="bk-thumbs"></div><canvas class="bk-main"></canvas><div class="bk-hover"></div>`;
  const layerSel = root.querySelector(".bk-layer"), headSel = root.querySelector(".bk-head");
  for (let l = 0; l < L; l++) layerSel.add(new Option(String(l), l));
  headSel.add(new Option("mean of all heads", -1));
  for (let h = 0; h < A; h++) headSel.add(new Option(String(h), h));
  const main = root.querySelector(".bk-main"), hover = root.querySelector(".bk-hover");
  const thumbs = root.querySelector(".bk-thumbs");
  function update() {
    const layer = +layerSel.value, head = +headSel.value;
    const m = bkMatrix(data, layer, head);
    bkDraw(main, m, data.tokens, true);
    thumbs.innerHTML = "";
    for (let h = 0; h < A; h++) {
      const c = document.createElement("canvas"); c.title = `layer ${layer} head ${h}`;
      bkDraw(c, data.attentions[layer][h], data.tokens, false);
      if (h === head) c.classList.add("bk-on");
      c.onclick = () => { headSel.value = h; update(); };
      thumbs.appendChild(c);
    }
    main.onmousemove = (ev) => {
      const r = main.getBoundingClientRect(), label = +main.dataset.label, cell = +main.dataset.cell;
      const j = Math.floor((ev.clientX - r.left - label) / cell), i = Math.floor((ev.clientY - r.top - label) / cell);
      hover.textContent = (i >= 0 && j >= 0 && i < m.length && j < m.length)
        ? `${data.tokens[i]} → ${data.tokens[j]}: ${m[i][j].toFixed(3)}` : "";
    };
  }
  layerSel.onchange = update; headSel.onchange = update;
  if (data.layer !== undefined) layerSel.value = data.layer;
  update();
  root.dataset.ready = "1";
}
"""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body {{ margin: 16px; }} {css}</style></head>
<body><h2>{title}</h2><p class="bk-sub">{subtitle}</p><div id="attention"></div>
<script>{js}</script>
<script>const DATA = {data};
renderAttention(document.getElementById("attention"), DATA);</script>
</body></html>
"""


def attention_payload(tokens: list[str], attentions: np.ndarray, decimals: int = 3) -> dict:
    """JSON-able {"tokens", "attentions": [L][A][T][T]} with rounded weights (smaller files)."""
    return {"tokens": list(tokens), "attentions": np.round(attentions.astype(np.float64), decimals).tolist()}


def save_html(tokens: list[str], attentions: np.ndarray, out_html, title: str = "BERT attention",
              subtitle: str = "") -> Path:
    """One self-contained HTML file (no external scripts, styles or fonts)."""
    data = json.dumps(attention_payload(tokens, attentions), separators=(",", ":"))
    data = data.replace("</", "<\\/")                     # never close the <script> early
    page = _PAGE.format(title=html.escape(title), subtitle=html.escape(subtitle), css=ATTENTION_CSS,
                        js=ATTENTION_JS, data=data)
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
