"""A small web demo: fill in [MASK], ask questions about a passage, browse attention maps.

    bertkit serve --model runs/mini/model [--qa-model runs/korquad/best] [--port 8000]

then open http://127.0.0.1:8000.  Needs the `[serve]` extra (FastAPI + uvicorn).

JSON API (all POST bodies are JSON objects):

    GET  /api/health      → {"status": "ok", "model", "fill_mask", "qa", "layers", "heads", ...}
    POST /api/fill-mask   {"text": "Love is like the [MASK].", "top_k": 5}
    POST /api/qa          {"question": "...", "context": "...", "top_k": 1}
    POST /api/attention   {"text": "I love Paris", "pair": null}
    POST /api/embed       {"texts": ["...", "..."], "pooling": "mean", "normalize": true}

Safety rails, each with a readable message in {"error": ...}:
  * bodies over 64 KB → 413; texts over their length limit → 422; wrong types → 422;
    a body that is not JSON → 400;
  * one model call at a time (a lock; the calls run in a worker thread so the server keeps
    answering); a request that waits or runs longer than the timeout → 503 (busy) / 504;
  * the server listens on 127.0.0.1 unless you ask for another address with --host.
"""
# No `from __future__ import annotations` here: FastAPI reads the request models from the
# endpoint annotations at run time, and those models are local to `create_app`.
import asyncio
import json
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 64 * 1024
    max_text_chars: int = 1000          # fill-mask text, QA question, attention text
    max_context_chars: int = 20_000     # QA passage
    max_embed_texts: int = 32
    max_top_k: int = 50
    attention_max_tokens: int = 64
    timeout_s: float = 10.0


class Busy(Exception):
    """The model stayed busy with other requests for the whole timeout."""


class Unavailable(Exception):
    """The feature needs a model this server was not started with."""


# ----------------------------------------------------------------------------- models

class ModelHost:
    """Loads the models once; runs every model call under one lock (PyTorch modules are not
    meant to run forward passes from several threads at once, and 2 cores gain nothing)."""

    def __init__(self, model_dir, qa_model_dir=None, device="cpu"):
        import bertkit
        from bertkit.pipelines.features import FeatureExtractionPipeline
        from bertkit.pipelines.fill_mask import FillMaskPipeline

        self.model_dir = Path(model_dir)
        self.qa_model_dir = Path(qa_model_dir) if qa_model_dir else None
        self.tokenizer = bertkit.BertTokenizer.from_pretrained(self.model_dir)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")                        # we report a missing head ourselves
            mlm = bertkit.BertForMaskedLM.from_pretrained(self.model_dir)
        missing = [k for k in mlm.loading_info.get("missing_keys", []) if k.startswith("cls.")]
        self.fill_mask_problem = None
        if missing:
            self.fill_mask_problem = (f"the model at {self.model_dir} has no masked-LM head (no cls.predictions "
                                      "weights in its checkpoint), so it cannot fill in [MASK]; start the server "
                                      "with a pretrained BERT such as one from `bertkit pretrain`")
        self.fill = None if missing else FillMaskPipeline(mlm, tokenizer=self.tokenizer, device=device)
        self.features = FeatureExtractionPipeline(mlm.bert, tokenizer=self.tokenizer, device=device)
        self.encoder = self.features.model
        self.qa = None
        if self.qa_model_dir is not None:
            from bertkit.pipelines.qa import QuestionAnsweringPipeline
            self.qa = QuestionAnsweringPipeline(self.qa_model_dir, device=device)
        self.lock = threading.Lock()

    def info(self) -> dict:
        cfg = self.encoder.config
        return {"model": _short(self.model_dir), "fill_mask": self.fill is not None,
                "fill_mask_problem": self.fill_mask_problem, "qa": self.qa is not None,
                "qa_model": _short(self.qa_model_dir) if self.qa_model_dir else None,
                "layers": cfg.num_hidden_layers, "heads": cfg.num_attention_heads, "hidden": cfg.hidden_size,
                "vocab_size": cfg.vocab_size}

    def run(self, fn, deadline: float):
        """Call fn() while holding the model lock; give up (Busy) if the lock is not ours by `deadline`."""
        wait = max(0.0, deadline - time.monotonic())
        if not self.lock.acquire(timeout=wait):
            raise Busy()
        try:
            return fn()
        finally:
            self.lock.release()

    # -- the model calls (run under the lock, in a worker thread)
    def fill_mask(self, text: str, top_k: int):
        if self.fill is None:
            raise Unavailable(self.fill_mask_problem)
        results = self.fill(text, top_k=top_k)
        return results if results and isinstance(results[0], list) else [results]

    def answer(self, question: str, context: str, top_k: int):
        if self.qa is None:
            raise Unavailable("no question-answering model: start the server with --qa-model DIR "
                              "(a model fine-tuned with `bertkit finetune --task korquad` or squad)")
        answers = self.qa(question=question, context=context, top_k=top_k)
        return answers if isinstance(answers, list) else [answers]

    def attention(self, text: str, pair: str | None, max_tokens: int) -> dict:
        from bertkit.apps.viz import attention_maps, attention_payload
        maps = attention_maps(text, self.encoder, pair=pair, tokenizer=self.tokenizer, max_length=max_tokens)
        L, A, T, _ = maps["attentions"].shape
        return {**attention_payload(maps["tokens"], maps["attentions"]), "layers": L, "heads": A, "length": T}

    def embed(self, texts: list[str], pooling: str, normalize: bool) -> dict:
        vectors = self.features(texts, pooling=pooling, normalize=normalize)
        return {"dim": int(vectors[0].shape[-1]), "vectors": [v.tolist() for v in vectors]}


def _short(path: Path) -> str:
    """The last two parts of a model path ("runs/sst2/best" → "sst2/best"): enough to recognise it."""
    return "/".join(Path(path).resolve().parts[-2:])


# ----------------------------------------------------------------------------- the app

def create_app(model_dir=None, qa_model_dir=None, limits: Limits | None = None, device="cpu", host: ModelHost | None = None):
    """The FastAPI application (models loaded now).  Pass `host=` to reuse loaded models."""
    try:
        from fastapi import FastAPI, Request
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import HTMLResponse, JSONResponse
        from pydantic import BaseModel, ConfigDict, Field
        from starlette.concurrency import run_in_threadpool
    except ImportError:
        raise ImportError("the web demo needs FastAPI and uvicorn: pip install 'bertkit[serve]'") from None

    limits = limits or Limits()
    host = host or ModelHost(model_dir, qa_model_dir, device=device)
    app = FastAPI(title="bertkit demo", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.host = host
    app.state.limits = limits

    class Strict(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)

    class FillMaskRequest(Strict):
        text: str = Field(min_length=1, max_length=limits.max_text_chars)
        top_k: int = Field(5, ge=1, le=limits.max_top_k)

    class QARequest(Strict):
        question: str = Field(min_length=1, max_length=limits.max_text_chars)
        context: str = Field(min_length=1, max_length=limits.max_context_chars)
        top_k: int = Field(1, ge=1, le=limits.max_top_k)

    class AttentionRequest(Strict):
        text: str = Field(min_length=1, max_length=limits.max_text_chars)
        pair: str | None = Field(None, max_length=limits.max_text_chars)

    class EmbedRequest(Strict):
        texts: list[str] = Field(min_length=1, max_length=limits.max_embed_texts)
        pooling: str = Field("mean", pattern="^(cls|mean|max)$")
        normalize: bool = True

    def error(status: int, message: str, **extra) -> JSONResponse:
        return JSONResponse({"error": message, **extra}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError):
        problems = exc.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            return error(400, "the request body is not valid JSON: send a JSON object such as "
                              '{"text": "Love is like the [MASK]."}')
        parts = []
        for p in problems[:5]:
            where = ".".join(str(x) for x in p.get("loc", ()) if x != "body") or "body"
            parts.append(f"{where}: {p.get('msg', 'invalid')}")
        return error(422, "; ".join(parts), detail=[{"loc": list(p.get("loc", ())), "msg": p.get("msg")}
                                                   for p in problems[:5]])

    async def call(fn):
        """Run a model call in a worker thread, one at a time, within the time limit."""
        deadline = time.monotonic() + limits.timeout_s
        try:
            return await asyncio.wait_for(run_in_threadpool(host.run, fn, deadline), timeout=limits.timeout_s)
        except asyncio.TimeoutError:
            return error(504, f"the model did not answer within {limits.timeout_s:g} s; try a shorter text")
        except Busy:
            return error(503, f"the model stayed busy with other requests for {limits.timeout_s:g} s; "
                              "try again in a moment")
        except Unavailable as exc:
            return error(501, str(exc))
        except (ValueError, TypeError) as exc:
            return error(422, str(exc))

    def ok(value):
        return value if isinstance(value, JSONResponse) else JSONResponse(value)

    @app.get("/", response_class=HTMLResponse)
    async def index():
        return HTMLResponse(page_html(host.info()))

    @app.get("/api/health")
    async def health():
        return {"status": "ok", **host.info()}

    @app.post("/api/fill-mask")
    async def fill_mask(req: FillMaskRequest):
        mask = host.tokenizer.mask_token
        if mask not in req.text:
            return error(422, f"text has no {mask} token: put {mask} where the model should fill in a word")
        out = await call(lambda: host.fill_mask(req.text, req.top_k))
        return ok(out if isinstance(out, JSONResponse) else {"text": req.text, "masks": out})

    @app.post("/api/qa")
    async def qa(req: QARequest):
        out = await call(lambda: host.answer(req.question, req.context, req.top_k))
        return ok(out if isinstance(out, JSONResponse) else {"answers": out})

    @app.post("/api/attention")
    async def attention(req: AttentionRequest):
        return ok(await call(lambda: host.attention(req.text, req.pair, limits.attention_max_tokens)))

    @app.post("/api/embed")
    async def embed(req: EmbedRequest):
        for i, t in enumerate(req.texts):
            if len(t) > limits.max_text_chars:
                return error(422, f"texts.{i}: longer than {limits.max_text_chars} characters")
        return ok(await call(lambda: host.embed(req.texts, req.pooling, req.normalize)))

    return BodyLimit(app, limits.max_body_bytes)


class BodyLimit:
    """ASGI middleware: refuse request bodies over `max_bytes` with 413 before the app reads them."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    def __getattr__(self, name):            # app.state etc. stay reachable through the wrapper
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await self._too_large(send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                return await self._too_large(send)
        body = b"".join(chunks)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    async def _too_large(self, send):
        body = json.dumps({"error": f"request body larger than {self.max_bytes // 1024} KB; "
                                    "send shorter texts"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


# ----------------------------------------------------------------------------- running

def run_server(model_dir, qa_model_dir=None, host: str = "127.0.0.1", port: int = 8000, threads: int | None = None,
               limits: Limits | None = None, device: str = "cpu") -> None:
    """Load the models and serve until Ctrl-C (what `bertkit serve` does)."""
    try:
        import uvicorn
    except ImportError:
        raise ImportError("the web demo needs FastAPI and uvicorn: pip install 'bertkit[serve]'") from None
    if threads:
        import torch
        torch.set_num_threads(threads)
    if host not in LOOPBACK:
        print(f"warning: listening on {host}: anyone who can reach this machine can use the demo")
    app = create_app(model_dir, qa_model_dir, limits=limits, device=device)
    print(f"bertkit demo: http://{'[' + host + ']' if ':' in host else host}:{port}  (Ctrl-C stops it)")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def start_in_thread(app, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0):
    """Start uvicorn in a background thread on an ephemeral port (tests, benchmarks).

    Returns (server, thread, base_url); stop with `server.should_exit = True; thread.join()`."""
    import uvicorn
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    start = time.monotonic()
    while not server.started:
        if not thread.is_alive() or time.monotonic() - start > timeout:
            raise RuntimeError(f"the server did not start on {host}:{port}")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://{host}:{port}"


# ----------------------------------------------------------------------------- the page

def page_html(info: dict) -> str:
    from bertkit.apps.viz import ATTENTION_CSS, ATTENTION_JS
    return (_PAGE.replace("/*CSS*/", ATTENTION_CSS).replace("/*ATTENTION_JS*/", ATTENTION_JS)
            .replace("__TITLE__", "bertkit demo"))


_PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font-family: system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #222; }
header { background: #1f3a5f; color: #fff; padding: 10px 20px; display: flex; gap: 20px; align-items: baseline; }
header h1 { font-size: 20px; margin: 0; }
#status { font-size: 13px; opacity: .9; }
nav { display: flex; gap: 4px; padding: 10px 20px 0; }
nav button { border: 1px solid #ccd; border-bottom: none; background: #e9ecf1; padding: 8px 14px; cursor: pointer;
  border-radius: 6px 6px 0 0; font-size: 14px; }
nav button.on { background: #fff; font-weight: 600; }
section { display: none; background: #fff; margin: 0 20px 20px; padding: 16px 20px; border: 1px solid #ccd; }
section.on { display: block; }
textarea, input[type=text] { width: 100%; box-sizing: border-box; font-size: 15px; padding: 6px; }
button.go { margin-top: 8px; padding: 6px 16px; font-size: 14px; cursor: pointer; }
.err { color: #b00; margin-top: 8px; white-space: pre-wrap; }
.note { color: #666; font-size: 13px; }
table.fills td { padding: 2px 10px 2px 0; }
.bar { background: #4c78a8; height: 12px; display: inline-block; vertical-align: middle; }
mark { background: #ffe066; padding: 0 2px; }
#qa-out p { line-height: 1.6; }
/*CSS*/
</style></head>
<body>
<header><h1>bertkit demo</h1><span id="status">connecting…</span></header>
<nav>
  <button data-tab="fill" class="on">Fill the [MASK]</button>
  <button data-tab="qa">Question answering</button>
  <button data-tab="attn">Attention</button>
</nav>
<section id="fill" class="on">
  <p class="note">Type a sentence with [MASK] where a word is missing; BERT lists the words it expects there.</p>
  <input type="text" id="fill-text" value="Love is like the [MASK]. You can't see it but you can feel it">
  <button class="go" id="fill-go">Fill</button>
  <div id="fill-out"></div>
</section>
<section id="qa">
  <p class="note" id="qa-note">Ask a question about a passage; the answer is highlighted in the passage.</p>
  <input type="text" id="qa-question" value="How many people can live on one island?">
  <textarea id="qa-context" rows="6">Players live on a deserted island. Up to eight players can live together on one island, and up to four can play at the same time on one console.</textarea>
  <button class="go" id="qa-go">Answer</button>
  <div id="qa-out"></div>
</section>
<section id="attn">
  <p class="note">Every layer and head of the model; rows are the token that looks, columns the token looked at.</p>
  <input type="text" id="attn-text" value="I love Paris">
  <input type="text" id="attn-pair" placeholder="optional second sentence (pair)" value="It is a beautiful city.">
  <button class="go" id="attn-go">Show attention</button>
  <div id="attn-out"></div>
</section>
<script>
/*ATTENTION_JS*/
const $ = (id) => document.getElementById(id);
function esc(s) { return String(s).replace(/[&<>"']/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c])); }
async function post(url, body) {
  const r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  let data = {};
  try { data = await r.json(); } catch (e) { data = {error: `HTTP ${r.status}`}; }
  if (!r.ok) throw new Error(data.error || `HTTP ${r.status}`);
  return data;
}
function showError(el, e) { el.innerHTML = `<div class="err">${esc(e.message || e)}</div>`; }
document.querySelectorAll("nav button").forEach(b => b.onclick = () => {
  document.querySelectorAll("nav button, section").forEach(x => x.classList.remove("on"));
  b.classList.add("on"); $(b.dataset.tab).classList.add("on");
});
let HEALTH = null;
async function health() {
  try {
    const r = await fetch("/api/health"); HEALTH = await r.json();
    $("status").textContent = `model ${HEALTH.model}: ${HEALTH.layers} layers × ${HEALTH.heads} heads · ` +
      `fill-mask ${HEALTH.fill_mask ? "on" : "off"} · QA ${HEALTH.qa ? "on (" + HEALTH.qa_model + ")" : "off"}`;
    $("status").dataset.ready = "1";
    if (!HEALTH.qa) $("qa-note").innerHTML = "<b>No question-answering model loaded.</b> Start the server with " +
      "<code>--qa-model DIR</code> (a model fine-tuned for QA) to use this tab.";
    if (!HEALTH.fill_mask) $("fill-out").innerHTML = `<div class="err">${esc(HEALTH.fill_mask_problem)}</div>`;
  } catch (e) { $("status").textContent = "server not reachable"; }
}
$("fill-go").onclick = async () => {
  const out = $("fill-out"); out.textContent = "…";
  try {
    const data = await post("/api/fill-mask", {text: $("fill-text").value, top_k: 5});
    out.innerHTML = data.masks.map((rows, i) => (data.masks.length > 1 ? `<h4>[MASK] #${i + 1}</h4>` : "") +
      "<table class='fills'>" + rows.map(r => `<tr><td><b>${esc(r.token_str)}</b></td>
        <td><span class="bar" style="width:${Math.round(200 * r.score)}px"></span> ${r.score.toFixed(3)}</td>
        <td class="note">${esc(r.sequence)}</td></tr>`).join("") + "</table>").join("");
  } catch (e) { showError(out, e); }
};
$("qa-go").onclick = async () => {
  const out = $("qa-out"), context = $("qa-context").value; out.textContent = "…";
  try {
    const data = await post("/api/qa", {question: $("qa-question").value, context, top_k: 3});
    const best = data.answers[0];
    if (best.start === null) { out.innerHTML = "<p>No answer found.</p>"; return; }
    out.innerHTML = `<p><b>Answer:</b> ${esc(best.answer)} <span class="note">(score ${best.score.toFixed(3)})</span></p>
      <p>${esc(context.slice(0, best.start))}<mark>${esc(context.slice(best.start, best.end))}</mark>${esc(context.slice(best.end))}</p>
      <p class="note">other candidates: ${data.answers.slice(1).map(a => esc(a.answer) + " (" + a.score.toFixed(3) + ")").join(", ")}</p>`;
  } catch (e) { showError(out, e); }
};
$("attn-go").onclick = async () => {
  const out = $("attn-out"); out.textContent = "…";
  try {
    const pair = $("attn-pair").value.trim();
    const data = await post("/api/attention", {text: $("attn-text").value, pair: pair || null});
    renderAttention(out, data);
  } catch (e) { showError(out, e); }
};
function openTab(name) {             // "#attn" / "#qa" / "#fill" in the address opens that tab and runs it
  const b = document.querySelector(`nav button[data-tab="${name}"]`);
  if (b) { b.onclick(); $(name + "-go").onclick(); }
}
health().then(() => {
  const tab = location.hash.slice(1);
  if (["fill", "qa", "attn"].includes(tab)) openTab(tab);
  else if (HEALTH && HEALTH.fill_mask) $("fill-go").onclick();
});
</script>
</body></html>
"""
