"""The web demo's JSON API: answers, and a readable 4xx/5xx for every kind of bad request."""
from __future__ import annotations

import json
import re
import threading
import time

import pytest

from pipeline_fixtures import tiny_model_dir

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from bertkit.apps.serve import Limits, ModelHost, create_app, start_in_thread, startup_lines  # noqa: E402


@pytest.fixture(scope="module")
def host(tmp_path_factory, minilm_path):
    root = tmp_path_factory.mktemp("serve")
    mlm = tiny_model_dir(root / "mlm", "BertForMaskedLM", minilm_path)
    qa = tiny_model_dir(root / "qa", "BertForQuestionAnswering", minilm_path, scale=30)
    return ModelHost(mlm, qa)


@pytest.fixture(scope="module")
def client(host):
    return TestClient(create_app(host=host))


def test_health_and_page(client):
    info = client.get("/api/health").json()
    assert info["status"] == "ok" and info["fill_mask"] and info["qa"]
    assert (info["layers"], info["heads"]) == (2, 4)
    page = client.get("/")
    assert page.status_code == 200 and "renderAttention" in page.text and "/api/health" in page.text
    assert "http://" not in page.text and "https://" not in page.text        # no CDN, nothing external


def test_the_json_api_is_documented_by_fastapi(client, host):
    """/docs (Swagger UI) and /openapi.json answer and list every endpoint; the page and start-up link them."""
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) == {"/api/health", "/api/fill-mask", "/api/qa", "/api/attention", "/api/embed"}
    assert schema["paths"]["/api/fill-mask"]["post"]["summary"].startswith("The words BERT expects")
    assert "FillMaskRequest" in schema["components"]["schemas"] and '"error"' in schema["info"]["description"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower() and "/openapi.json" in docs.text
    page = client.get("/").text
    assert 'href="/docs"' in page and 'href="/openapi.json"' in page
    lines = startup_lines(host, "http://127.0.0.1:8000")
    assert lines[-1] == ("  JSON API: http://127.0.0.1:8000/docs (try it in the browser), "
                         "http://127.0.0.1:8000/openapi.json (the schema)")
    assert not any(": off — " in line for line in lines) and host.unavailable() == {}


def test_docs_page_works_offline(client):
    """/docs references no other host: Swagger UI's script, CSS and icon are served by the app itself."""
    docs = client.get("/docs")
    assert docs.status_code == 200 and "SwaggerUIBundle(" in docs.text
    assert "http://" not in docs.text and "https://" not in docs.text and "//cdn" not in docs.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert {a.rsplit("/", 1)[-1] for a in assets} == {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}
    for url in assets:
        assert url.startswith("/docs-assets/")
        r = client.get(url)
        assert r.status_code == 200 and len(r.content) > 1000, url
    assert "SwaggerUIBundle" in client.get("/docs-assets/swagger-ui-bundle.js").text
    assert client.get("/docs-assets/nothing.js").status_code == 404


def test_fill_mask_equals_the_pipeline(client, host):
    text = "Love is like the [MASK]. You can't see it but you can feel it"
    r = client.post("/api/fill-mask", json={"text": text, "top_k": 3})
    assert r.status_code == 200
    assert r.json()["masks"] == [host.fill(text, top_k=3)]
    two = client.post("/api/fill-mask", json={"text": "The [MASK] sat on the [MASK]."}).json()
    assert len(two["masks"]) == 2 and all(len(m) == 5 for m in two["masks"])


def test_qa_attention_embed(client):
    context = "Players live on a deserted island. Up to eight players can live together on one island."
    answers = client.post("/api/qa", json={"question": "How many?", "context": context, "top_k": 2}).json()["answers"]
    assert len(answers) == 2 and all(context[a["start"]:a["end"]] == a["answer"] for a in answers)
    att = client.post("/api/attention", json={"text": "I love Paris", "pair": "It is big"}).json()
    assert att["tokens"][0] == "[CLS]" and att["tokens"].count("[SEP]") == 2
    assert (att["layers"], att["heads"], att["length"]) == (2, 4, len(att["tokens"]))
    for row in att["attentions"][1][3]:
        assert sum(row) == pytest.approx(1.0, abs=0.01)
    emb = client.post("/api/embed", json={"texts": ["a", "b c"], "pooling": "mean"}).json()
    assert emb["dim"] == 32 and len(emb["vectors"]) == 2
    assert sum(x * x for x in emb["vectors"][0]) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("path,body,status,message", [
    ("/api/fill-mask", {"text": "no mask here"}, 422, "[MASK]"),
    ("/api/fill-mask", {"text": 5}, 422, "valid string"),
    ("/api/fill-mask", {"text": "[MASK]", "top_k": "5"}, 422, "top_k"),
    ("/api/fill-mask", {"text": "[MASK]", "top_k": 0}, 422, "top_k"),
    ("/api/fill-mask", {"text": "[MASK]", "colour": "red"}, 422, "colour"),
    ("/api/fill-mask", {}, 422, "text"),
    ("/api/fill-mask", {"text": "[MASK] " * 300}, 422, "at most 1000 characters"),
    ("/api/fill-mask", ["[MASK]"], 422, "valid dictionary"),
    ("/api/qa", {"question": "Where?"}, 422, "context"),
    ("/api/qa", {"question": "", "context": "Paris"}, 422, "question"),
    ("/api/qa", {"question": "Where?", "context": "x" * 20_001}, 422, "context"),
    ("/api/attention", {"text": ""}, 422, "text"),
    ("/api/embed", {"texts": "one string"}, 422, "valid list"),
    ("/api/embed", {"texts": ["a"] * 33}, 422, "texts"),
    ("/api/embed", {"texts": ["a"], "pooling": "median"}, 422, "pooling"),
])
def test_bad_requests_get_a_message(client, path, body, status, message):
    r = client.post(path, json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def test_malformed_json_and_oversized_body(client):
    r = client.post("/api/fill-mask", content=b'{"text": "[MASK]"', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = client.post("/api/fill-mask", json={"text": "[MASK] " + "x" * 70_000})
    assert r.status_code == 413 and "KB" in r.json()["error"]
    r = client.post("/api/fill-mask", content=b"text=[MASK]", headers={"content-type": "text/plain"})
    assert r.status_code in (400, 422) and r.json()["error"]
    assert client.get("/api/nothing").status_code == 404
    assert client.get("/api/fill-mask").status_code == 405


def test_every_error_answer_has_the_documented_shape(client, host, monkeypatch):
    """404, 405 and a bug answer {"error": "..."} like the rails do (not FastAPI's {"detail": ...})."""
    r = client.get("/api/nothing")
    assert r.status_code == 404 and set(r.json()) == {"error"} and "/api/qa" in r.json()["error"]
    r = client.get("/api/fill-mask")
    assert r.status_code == 405 and set(r.json()) == {"error"} and "POST" in r.json()["error"]
    assert r.headers["allow"] == "POST"
    monkeypatch.setattr(host, "embed", lambda *a, **k: 1 / 0)
    r = TestClient(create_app(host=host), raise_server_exceptions=False).post("/api/embed", json={"texts": ["a"]})
    assert r.status_code == 500 and "ZeroDivisionError" in r.json()["error"]


def test_timeout_and_busy(host):
    slow = Limits(timeout_s=0.3)
    app = create_app(host=host, limits=slow)
    client = TestClient(app)
    original = host.fill_mask
    host.fill_mask = lambda text, top_k: time.sleep(1.0) or original(text, top_k)
    try:
        results = {}

        def call(name):
            results[name] = client.post("/api/fill-mask", json={"text": "[MASK]"})

        first = threading.Thread(target=call, args=("first",))
        first.start()
        time.sleep(0.1)
        call("second")                      # the lock is held by the slow first call
        first.join()
        assert results["first"].status_code == 504 and "did not answer" in results["first"].json()["error"]
        assert results["second"].status_code in (503, 504)
        assert "busy" in results["second"].json()["error"] or "did not answer" in results["second"].json()["error"]
    finally:
        host.fill_mask = original
        time.sleep(1.0)                     # let the abandoned worker finish and free the lock
    assert client.post("/api/fill-mask", json={"text": "[MASK]"}).status_code == 200


def test_model_without_mlm_head_and_no_qa_model(minilm_path):
    app = create_app(minilm_path)
    client = TestClient(app)
    info = client.get("/api/health").json()
    assert info["fill_mask"] is False and "masked-LM head" in info["fill_mask_problem"] and info["qa"] is False
    assert set(info["unavailable"]) == {"fill-mask", "question answering"}
    lines = startup_lines(app.state.host, "http://127.0.0.1:8000")        # said at start-up, before any request
    assert lines[1].startswith("  fill-mask: off — the model at ") and "no masked-LM head" in lines[1]
    assert lines[2].startswith("  question answering: off — ") and "--qa-model" in lines[2]
    r = client.post("/api/fill-mask", json={"text": "Paris is the [MASK] of France."})
    assert r.status_code == 501 and "masked-LM head" in r.json()["error"]
    r = client.post("/api/qa", json={"question": "Where?", "context": "Paris"})
    assert r.status_code == 501 and "--qa-model" in r.json()["error"]
    att = client.post("/api/attention", json={"text": "I love Paris"}).json()
    assert (att["layers"], att["heads"]) == (6, 12)             # attention works with any encoder


def test_real_server_on_loopback(host):
    server, thread, url = start_in_thread(create_app(host=host))
    try:
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=url, timeout=30) as http:
            assert http.get("/api/health").json()["status"] == "ok"
            errors = []

            def worker(i):
                with httpx.Client(base_url=url, timeout=30) as c:
                    for _ in range(3):
                        r = c.post("/api/fill-mask", json={"text": f"number {i} is [MASK]."})
                        if r.status_code != 200:
                            errors.append(r.status_code)

            threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert errors == []

            def chunks():                  # no Content-Length: the limit must count the bytes
                for _ in range(20):
                    yield b"x" * 8192

            r = http.post("/api/fill-mask", content=chunks(), headers={"content-type": "application/json"})
            assert r.status_code == 413
            r = http.post("/api/fill-mask", content=b"{oops", headers={"content-type": "application/json"})
            assert r.status_code == 400 and json.loads(r.text)["error"]
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_cli_listens_on_loopback_by_default():
    from bertkit.cli import build_parser
    args = build_parser().parse_args(["serve", "--model", "m"])
    assert args.host == "127.0.0.1" and args.port == 8000


def test_missing_fastapi_says_how_to_install(host, monkeypatch):
    import sys

    from bertkit.common.errors import MissingDependency
    monkeypatch.setitem(sys.modules, "fastapi", None)               # makes `import fastapi` fail
    with pytest.raises(MissingDependency, match=r"web demo.*'fastapi'.*pip install 'bertkit\[serve\]'"):
        create_app(host=host)
