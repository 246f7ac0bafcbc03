"""Web demo under load: latency of fill-mask and QA requests, and a 1,000-request soak test.

    python bench/bench_serve.py [--model DIR] [--qa-model DIR] [--threads 2] [--soak 1000]

The server runs as a real `bertkit serve` process on 127.0.0.1 (an ephemeral port);
clients are threads with their own HTTP connection (httpx), all on loopback.

1. latency: 8 concurrent clients send fill-mask requests, then QA requests; p50/p99 per
   request as the clients see it (queueing included: the server runs one model call at
   a time), requests/s, and the error count (must be 0);
2. soak: `--soak` requests (mixed fill-mask / QA / attention / embed / health, plus a few
   deliberately bad requests that must get 4xx) from 16 concurrent clients; counts by
   status (no 5xx allowed) and the server's resident memory before and after.

Default models: MiniLM's real encoder with *random* MLM and QA heads (the compute of a
real 6-layer, H=384 model; the answers themselves are meaningless).
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table  # noqa: E402

FILL = ["Love is like the [MASK]. You can't see it but you can feel it", "Paris is the [MASK] of France.",
        "Where are you come from? I'm from [MASK].", "The man went to the [MASK] to buy some milk."]
QA = [("How many players can live on one island?",
       "Players live on a deserted island. Up to eight players can live together on one island, and up to four "
       "can play at the same time on one console. The island can be in the northern or southern hemisphere."),
      ("What does the immune system do?",
       "The immune system is a network of biological processes that protects an organism from diseases. It "
       "detects and responds to a wide variety of pathogens, from viruses to parasitic worms, as well as cancer "
       "cells and objects such as wood splinters, distinguishing them from the organism's own healthy tissue.")]


def minilm_with_heads(out: Path) -> tuple[Path, Path]:
    """MiniLM's encoder + random MLM head, and + random QA head, saved as two checkpoints."""
    from bertkit import BertForMaskedLM, BertForQuestionAnswering, BertTokenizer
    from bertkit.modeling.checkpoint import find_minilm
    base = find_minilm()
    tok = BertTokenizer.from_pretrained(base)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        BertForMaskedLM.from_pretrained(base).save_pretrained(out / "mlm", tokenizer=tok)
        BertForQuestionAnswering.from_pretrained(base, num_labels=2).save_pretrained(out / "qa", tokenizer=tok)
    return out / "mlm", out / "qa"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(model: Path, qa_model: Path, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "bertkit.cli", "serve", "--model", str(model), "--qa-model", str(qa_model),
           "--host", "127.0.0.1", "--port", str(port), "--threads", str(threads), "--timeout", "60"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    import httpx
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited:\n" + proc.stdout.read())
        try:
            if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("server did not start within 120 s")


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def run_clients(url: str, clients: int, per_client: int, make_request) -> tuple[list[float], Counter, float]:
    """`clients` threads, each with its own connection, each sending `per_client` requests."""
    import httpx
    latencies, statuses, lock = [], Counter(), threading.Lock()

    def client(c: int):
        with httpx.Client(base_url=url, timeout=120) as http:
            for i in range(per_client):
                method, path, body = make_request(c, i)
                t0 = time.perf_counter()
                try:
                    r = http.request(method, path, json=body)
                    status = r.status_code
                except httpx.HTTPError as exc:
                    status = f"error:{type(exc).__name__}"
                elapsed = time.perf_counter() - t0
                with lock:
                    latencies.append(elapsed)
                    statuses[status] += 1

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, statuses, time.perf_counter() - start


def soak_request(c: int, i: int):
    k = (c * 7919 + i) % 20
    if k < 8:
        return "POST", "/api/fill-mask", {"text": FILL[k % len(FILL)], "top_k": 5}
    if k < 12:
        q, ctx = QA[k % 2]
        return "POST", "/api/qa", {"question": q, "context": ctx, "top_k": 3}
    if k < 14:
        return "POST", "/api/attention", {"text": "I love Paris", "pair": "It is a beautiful city"}
    if k < 16:
        return "POST", "/api/embed", {"texts": ["I love Paris", "Sam hated the movie"]}
    if k < 18:
        return "GET", "/api/health", None
    if k == 18:
        return "POST", "/api/fill-mask", {"text": "no mask in this one"}          # must be 422
    return "POST", "/api/qa", {"question": 42, "context": "wrong type"}          # must be 422


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="checkpoint with an MLM head (default: MiniLM + random MLM head)")
    p.add_argument("--qa-model", default=None, help="QA checkpoint (default: MiniLM + random QA head)")
    p.add_argument("--threads", type=int, default=2, help="torch threads in the server")
    p.add_argument("--requests", type=int, default=25, help="latency phase: requests per client per endpoint")
    p.add_argument("--soak", type=int, default=1000)
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    model, qa_model = (Path(args.model), Path(args.qa_model)) if args.model and args.qa_model else minilm_with_heads(tmp)
    proc, url = start_server(model, qa_model, args.threads)
    try:
        rss_start = rss_mb(proc.pid)
        run_clients(url, 2, 3, lambda c, i: ("POST", "/api/fill-mask", {"text": FILL[0]}))      # warm up
        rows = []
        for name, make in (
                ("fill-mask", lambda c, i: ("POST", "/api/fill-mask", {"text": FILL[(c + i) % len(FILL)], "top_k": 5})),
                ("qa", lambda c, i: ("POST", "/api/qa", dict(zip(("question", "context"), QA[(c + i) % 2]))))):
            lat, statuses, wall = run_clients(url, 8, args.requests, make)
            errors = sum(n for s, n in statuses.items() if s != 200)
            rows.append([name, 8, len(lat), f"{1000 * statistics.median(lat):.1f}",
                         f"{1000 * percentile(lat, 99):.1f}", f"{len(lat) / wall:.1f}", errors])
        print(f"\n## Latency, 8 concurrent clients on loopback (server: {args.threads} torch threads, "
              f"model {model.name}, qa {qa_model.name})\n")
        print(markdown_table(["endpoint", "clients", "requests", "p50 ms", "p99 ms", "req/s", "errors"], rows))

        rss_before = rss_mb(proc.pid)
        per_client = -(-args.soak // 16)
        lat, statuses, wall = run_clients(url, 16, per_client, soak_request)
        rss_after = rss_mb(proc.pid)
        five_xx = sum(n for s, n in statuses.items() if isinstance(s, int) and s >= 500)
        failures = sum(n for s, n in statuses.items() if not isinstance(s, int))
        print(f"\n## Soak: {len(lat)} mixed requests from 16 concurrent clients\n")
        print(markdown_table(["status", "count"], sorted(((str(s), n) for s, n in statuses.items()))))
        print()
        print(markdown_table(
            ["requests", "wall s", "req/s", "p50 ms", "p99 ms", "5xx", "connection errors",
             "RSS at start MB", "RSS before soak MB", "RSS after soak MB"],
            [[len(lat), f"{wall:.1f}", f"{len(lat) / wall:.1f}", f"{1000 * statistics.median(lat):.1f}",
              f"{1000 * percentile(lat, 99):.1f}", five_xx, failures, f"{rss_start:.0f}", f"{rss_before:.0f}",
              f"{rss_after:.0f}"]]))
        ok = five_xx == 0 and failures == 0 and all(r[-1] == 0 for r in rows)
        print(f"\nresult: {'PASS' if ok else 'FAIL'} (zero 5xx and zero errors required)")
        if not ok:
            sys.exit(1)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
