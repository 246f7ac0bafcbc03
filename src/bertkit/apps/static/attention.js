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
