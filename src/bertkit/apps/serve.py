"""A small web demo: fill in [MASK], ask questions about a passage, browse attention maps.

    bertkit serve --model runs/mini/model [--qa-model runs/korquad/best] [--port 8000]

then open http://127.0.0.1:8000.  Needs the `[serve]` extra (FastAPI + uvicorn).

What the models cannot do is said at start-up and on the page, not discovered by a
failing request: a model without a masked-LM head (`Checkpoint.has_mlm_head`, e.g. a
sentence encoder or a fine-tuned classifier) serves no fill-mask; without --qa-model
there is no question answering.  Attention and embeddings work with any BERT.

JSON API, described by FastAPI's own pages: /docs (try every endpoint in the browser) and
/openapi.json (the schema).  Everything is served by this server, nothing from the internet:
Swagger UI's script and CSS come from the pip package `fastapi-offline` (MIT; Swagger UI
itself is Apache-2.0), part of the `[serve]` extra, under /docs-assets/.
All POST bodies are JSON objects:

    GET  /api/health      → {"status": "ok", "model", "fill_mask", "qa", "layers", "heads", ...}
    POST /api/fill-mask   {"text": "Love is like the [MASK].", "top_k": 5}
    POST /api/qa          {"question": "...", "context": "...", "top_k": 1}   (a squad2 model answers "" as
                          `bertkit predict` does: with the null threshold saved in its task.json)
    POST /api/attention   {"text": "I love Paris", "pair": null}
    POST /api/embed       {"texts": ["...", "..."], "pooling": "mean", "normalize": true}

Safety rails, each with a readable message in {"error": ...}:
  * bodies over 64 KB → 413; texts over their length limit → 422; wrong types → 422;
    a body that is not JSON → 400;
  * one model call at a time (a lock; the calls run in a worker thread so the server keeps
    answering); a request that waits or runs longer than the timeout → 503 (busy) / 504;
  * the server listens on 127.0.0.1 unless you ask for another address with --host;
  * a path that does not exist → 404, a wrong method → 405 (with Allow), a bug → 500:
    the same {"error": ...} shape as every other error.
"""
# No `from __future__ import annotations` here: FastAPI reads the request models from the
# endpoint annotations at run time, and those models are made by `_request_models`.
import asyncio
import json
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch

from bertkit.apps.viz import attention_maps, attention_payload, render_static
from bertkit.common.devices import resolve_device
from bertkit.common.errors import missing_dependency
from bertkit.modeling.encoder import BertModel
from bertkit.modeling.heads import BertForMaskedLM
from bertkit.modeling.pretrained import open_checkpoint
from bertkit.pipelines.features import FeatureExtractionPipeline
from bertkit.pipelines.fill_mask import FillMaskPipeline
from bertkit.pipelines.qa import QuestionAnsweringPipeline
from bertkit.text.tokenizer import BertTokenizer

LOOPBACK = ("127.0.0.1", "localhost", "::1")
API_DESCRIPTION = ("The JSON API behind the bertkit demo page (`bertkit serve`). Errors are JSON too: "
                   '{"error": "what was wrong and what to do"} with status 400 (not JSON), 413 (body over the '
                   "limit), 422 (a field of the wrong type or size), 501 (a feature this server's models cannot "
                   "serve: see GET /api/health, `unavailable`), 503 (busy) or 504 (too slow).")


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

    def __init__(self, model_dir, qa_model_dir=None, device=None, backend: str = "torch"):
        """`device`: as everywhere (`resolve_device`): None is the GPU when there is one, else the CPU.
        `backend="onnx"`: embeddings and answers run on ONNX Runtime (bertkit.modeling.onnx_runtime);
        fill-mask and attention maps stay on torch (the graph has no attention maps)."""
        device = resolve_device(device)
        self.model_dir = Path(model_dir)
        self.qa_model_dir = Path(qa_model_dir) if qa_model_dir else None
        self.tokenizer = BertTokenizer.from_pretrained(self.model_dir)
        encoder, self.fill, self.fill_mask_problem = self._load_encoder(device)
        self.encoder = encoder.to(device).eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")                        # an MLM checkpoint's missing pooler: unused
            self.features = (FeatureExtractionPipeline(str(self.model_dir), backend="onnx") if backend == "onnx"
                             else FeatureExtractionPipeline(encoder, tokenizer=self.tokenizer, device=device))
        self.qa = None
        self.qa_problem = ("no question-answering model: start the server with --qa-model DIR (a model "
                           "fine-tuned with `bertkit finetune --task korquad` or squad)")
        if self.qa_model_dir is not None:
            self.qa = QuestionAnsweringPipeline(str(self.qa_model_dir), device=None if backend == "onnx" else device,
                                                backend=backend)
            self.qa_problem = None
        self.lock = threading.Lock()

    def _load_encoder(self, device):
        """(encoder, fill-mask pipeline or None, why not): the MLM head only when the checkpoint has one."""
        if not open_checkpoint(self.model_dir).has_mlm_head:
            problem = (f"the model at {_short(self.model_dir)} has no masked-LM head (no cls.predictions weights "
                       "in its checkpoint), so it cannot fill in [MASK]; start the server with a pretrained BERT "
                       "such as bert-base-uncased or one from `bertkit pretrain`")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")                    # heads of a fine-tuned model are not needed
                return BertModel.from_pretrained(self.model_dir), None, problem
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mlm = BertForMaskedLM.from_pretrained(self.model_dir)
        return mlm.bert, FillMaskPipeline(mlm, tokenizer=self.tokenizer, device=device), None

    def unavailable(self) -> dict[str, str]:
        """Feature → why this server cannot offer it (empty when everything is on)."""
        out = {"fill-mask": self.fill_mask_problem, "question answering": self.qa_problem}
        return {feature: why for feature, why in out.items() if why}

    def info(self) -> dict:
        cfg = self.encoder.config
        return {"model": _short(self.model_dir), "fill_mask": self.fill is not None,
                "fill_mask_problem": self.fill_mask_problem, "qa": self.qa is not None,
                "qa_problem": self.qa_problem, "unavailable": self.unavailable(),
                "qa_model": _short(self.qa_model_dir) if self.qa_model_dir else None,
                "layers": cfg.num_hidden_layers, "heads": cfg.num_attention_heads, "hidden": cfg.hidden_size,
                "vocab_size": cfg.vocab_size, "docs": "/docs", "openapi": "/openapi.json"}

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
            raise Unavailable(self.qa_problem)
        answers = self.qa(question=question, context=context, top_k=top_k)
        return answers if isinstance(answers, list) else [answers]

    def attention(self, text: str, pair: str | None, max_tokens: int) -> dict:
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

def create_app(model_dir=None, qa_model_dir=None, limits: Limits | None = None, device=None, host: ModelHost | None = None,
               backend: str = "torch"):
    """The FastAPI application (models loaded now).  Pass `host=` to reuse loaded models."""
    _require("fastapi")
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    limits = limits or Limits()
    host = host or ModelHost(model_dir, qa_model_dir, device=device, backend=backend)
    app = FastAPI(title="bertkit demo", description=API_DESCRIPTION, docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json")
    _add_docs(app)
    app.state.host = host
    app.state.limits = limits
    app.add_exception_handler(RequestValidationError, _on_invalid)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_bug)
    _add_routes(app, host, limits, _request_models(limits))
    return BodyLimit(app, limits.max_body_bytes)


def _require(package: str, module: str | None = None) -> None:
    """Import an optional package of the [serve] extra, or say how to install it."""
    try:
        __import__(module or package)
    except ImportError:
        raise missing_dependency(package, "serve", "the web demo") from None


DOCS_ASSETS = "/docs-assets"


def _add_docs(app) -> None:
    """/docs: FastAPI's Swagger UI page, its script, CSS and icon served from /docs-assets/ (package
    data of `fastapi-offline`), so the page works with no internet connection."""
    _require("fastapi-offline", "fastapi_offline")
    from importlib.resources import files

    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    assets = Path(str(files("fastapi_offline") / "static"))
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="bertkit demo - JSON API",
                                   swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png")


def _request_models(limits: Limits) -> SimpleNamespace:
    """The JSON bodies of the POST endpoints: strict types, sizes from `limits`, no extra keys."""
    from pydantic import BaseModel, ConfigDict, Field

    class Strict(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)

    class FillMaskRequest(Strict):
        text: str = Field(min_length=1, max_length=limits.max_text_chars, examples=["Love is like the [MASK]."],
                          description="a text with one or more [MASK] tokens")
        top_k: int = Field(5, ge=1, le=limits.max_top_k, description="words per [MASK]")

    class QARequest(Strict):
        question: str = Field(min_length=1, max_length=limits.max_text_chars, examples=["How many players?"])
        context: str = Field(min_length=1, max_length=limits.max_context_chars, description="the passage",
                             examples=["Up to eight players can live together on one island."])
        top_k: int = Field(1, ge=1, le=limits.max_top_k, description="answers, best first")

    class AttentionRequest(Strict):
        text: str = Field(min_length=1, max_length=limits.max_text_chars, examples=["I love Paris"])
        pair: str | None = Field(None, max_length=limits.max_text_chars, description="optional second sentence")

    class EmbedRequest(Strict):
        texts: list[str] = Field(min_length=1, max_length=limits.max_embed_texts, examples=[["I love Paris"]])
        pooling: str = Field("mean", pattern="^(cls|mean|max)$", description="cls, mean or max")
        normalize: bool = Field(True, description="unit-length vectors")

    return SimpleNamespace(fill_mask=FillMaskRequest, qa=QARequest, attention=AttentionRequest, embed=EmbedRequest)


def _error(status: int, message: str, **extra):
    """A JSON error answer: {"error": message, ...}."""
    from fastapi.responses import JSONResponse
    return JSONResponse({"error": message, **extra}, status_code=status)


async def _on_invalid(request, exc):
    """A body that is not JSON → 400; wrong or missing fields → 422 naming each (at most 5)."""
    problems = exc.errors()
    if any(p.get("type") == "json_invalid" for p in problems):
        return _error(400, "the request body is not valid JSON: send a JSON object such as "
                           '{"text": "Love is like the [MASK]."}')
    parts = []
    for p in problems[:5]:
        where = ".".join(str(x) for x in p.get("loc", ()) if x != "body") or "body"
        parts.append(f"{where}: {p.get('msg', 'invalid')}")
    return _error(422, "; ".join(parts), detail=[{"loc": list(p.get("loc", ())), "msg": p.get("msg")}
                                                for p in problems[:5]])


ROUTES = "GET /, GET /api/health, POST /api/fill-mask, /api/qa, /api/attention, /api/embed (see /docs)"


async def _on_http_error(request, exc):
    """FastAPI's own answers (404 no such path, 405 wrong method ...) in the documented shape."""
    path, method = request.url.path, request.method
    if exc.status_code == 404:
        message = f"no such page: {path}; this server answers {ROUTES}"
    elif exc.status_code == 405:
        allow = {k.lower(): v for k, v in (exc.headers or {}).items()}.get("allow", "another method")
        message = f"{method} is not allowed on {path}: use {allow}"
    else:
        message = str(exc.detail)
    response = _error(exc.status_code, message)
    response.headers.update(exc.headers or {})
    return response


async def _on_bug(request, exc):
    """An exception no rail caught is a bug in bertkit: a 500 in the documented shape."""
    return _error(500, f"internal error (a bug in bertkit, please report it): {type(exc).__name__}: {exc}")


async def _call(host: ModelHost, limits: Limits, fn):
    """Run a model call in a worker thread, one at a time, within the time limit."""
    from starlette.concurrency import run_in_threadpool
    deadline = time.monotonic() + limits.timeout_s
    try:
        return await asyncio.wait_for(run_in_threadpool(host.run, fn, deadline), timeout=limits.timeout_s)
    except asyncio.TimeoutError:
        return _error(504, f"the model did not answer within {limits.timeout_s:g} s; try a shorter text")
    except Busy:
        return _error(503, f"the model stayed busy with other requests for {limits.timeout_s:g} s; "
                           "try again in a moment")
    except Unavailable as exc:
        return _error(501, str(exc))
    except (ValueError, TypeError) as exc:
        return _error(422, str(exc))


def _add_routes(app, host: ModelHost, limits: Limits, models: SimpleNamespace) -> None:
    """The page and the JSON API (see the module docstring)."""
    from fastapi.responses import HTMLResponse, JSONResponse

    def ok(value):
        return value if isinstance(value, JSONResponse) else JSONResponse(value)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        return HTMLResponse(page_html())

    @app.get("/api/health", summary="The models, their sizes, and which features are off (and why)")
    async def health():
        """`unavailable` maps each feature this server cannot offer to the reason and the fix."""
        return {"status": "ok", **host.info()}

    @app.post("/api/fill-mask", summary="The words BERT expects behind each [MASK]")
    async def fill_mask(req: models.fill_mask):
        """`masks`: per [MASK], the top_k {token_str, score, sequence}.  501 without a masked-LM head."""
        mask = host.tokenizer.mask_token
        if mask not in req.text:
            return _error(422, f"text has no {mask} token: put {mask} where the model should fill in a word")
        out = await _call(host, limits, lambda: host.fill_mask(req.text, req.top_k))
        return ok(out if isinstance(out, JSONResponse) else {"text": req.text, "masks": out})

    @app.post("/api/qa", summary="Answer a question from a passage (extractive)")
    async def qa(req: models.qa):
        """`answers`: {answer, score, start, end} (character offsets into context).  501 without --qa-model."""
        out = await _call(host, limits, lambda: host.answer(req.question, req.context, req.top_k))
        return ok(out if isinstance(out, JSONResponse) else {"answers": out})

    @app.post("/api/attention", summary="Every layer's and head's attention map over the tokens")
    async def attention(req: models.attention):
        """`tokens`, `attentions` [layer][head][from token][to token], `layers`, `heads`, `length`."""
        return ok(await _call(host, limits, lambda: host.attention(req.text, req.pair, limits.attention_max_tokens)))

    @app.post("/api/embed", summary="One vector per text (pooled BERT output)")
    async def embed(req: models.embed):
        """`dim` and `vectors` (one list of floats per text)."""
        for i, t in enumerate(req.texts):
            if len(t) > limits.max_text_chars:
                return _error(422, f"texts.{i}: longer than {limits.max_text_chars} characters")
        return ok(await _call(host, limits, lambda: host.embed(req.texts, req.pooling, req.normalize)))


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
               limits: Limits | None = None, device: str | None = None, backend: str = "torch") -> None:
    """Load the models and serve until Ctrl-C (what `bertkit serve` does)."""
    _require("uvicorn")
    import uvicorn
    if threads:
        torch.set_num_threads(threads)
    if host not in LOOPBACK:
        print(f"warning: listening on {host}: anyone who can reach this machine can use the demo")
    app = create_app(model_dir, qa_model_dir, limits=limits, device=device, backend=backend)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    print("\n".join(startup_lines(app.state.host, url)), flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def startup_lines(host: ModelHost, url: str) -> list[str]:
    """What `bertkit serve` says when it starts: where, what is off and why, where the API is described."""
    lines = [f"bertkit demo: {url}  (Ctrl-C stops it)"]
    lines += [f"  {feature}: off — {why}" for feature, why in host.unavailable().items()]
    lines.append(f"  JSON API: {url}/docs (try it in the browser), {url}/openapi.json (the schema)")
    return lines


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

def page_html() -> str:
    """The demo page (apps/static/demo.html) with the attention viewer's CSS and JS inlined."""
    return render_static("demo.html")
