"""A small local Hugging Face Hub for tests: huggingface_hub talks to it as to huggingface.co.

    server = HubServer({"org/tiny-bert": {"main": {"config.json": b"{...}", "vocab.txt": b"..."}}})
    server.add_repo("org/private", {"main": files}, private=True, tokens={"hf_good"})

A repo maps revision names (branches/tags) or 40-hex commit hashes to {file name: bytes}
(bytes, str, or a Path read lazily; a whole revision may also be a directory Path).  A named
revision's commit hash is derived from its contents, so the same files give the same commit.

Endpoints served (those huggingface_hub 2.4.0 calls for `hf_hub_download`, `snapshot_download`,
`HfApi.model_info`, the conversion-PR look-up of transformers, `create_repo` and `upload_folder`):

    GET  /api/models/{repo_id}[/revision/{revision}]   {"id", "sha", "siblings": [{"rfilename"}], ...}
    GET  /api/models/{repo_id}/tree/{revision}         [{"type": "file", "path", "size", "oid", "lfs"}]
    GET  /api/models/{repo_id}/discussions             open pull requests (`add_pr`), one page
    GET  /api/models/{repo_id}/commits/{revision}      the history, newest first
    HEAD /{repo_id}/resolve/{revision}/{filename}      metadata only (X-Repo-Commit, ETag, Content-Length)
    GET  /{repo_id}/resolve/{revision}/{filename}      the bytes (Range "bytes=N-" honoured)
    POST /api/repos/create                             a new empty repo (409 if it exists)
    POST /api/models/{repo_id}/preupload/{revision}    every file "regular" (sent inline, no LFS)
    POST /api/models/{repo_id}/commit/{revision}       NDJSON header + base64 files -> a new commit
    POST /api/models/{repo_id}/branch/{branch}         a branch from main
    POST /api/validate-yaml                            a README.md's front matter must be a YAML mapping

Writing needs a token in `server.writers` (401 without a token, 403 with another); every commit is
recorded in `server.commits_made`.

Small ("git") files answer 200 with ETag = their git blob sha1.  Large ("LFS") files (.safetensors,
.bin, .h5, .msgpack) answer 302 to a second server on another port (a "CDN": another origin, so
huggingface_hub stops there, reads X-Linked-Etag (sha256) / X-Linked-Size, and drops the token
before following), as the real Hub does.  No X-Xet-* header is ever sent (xet would bypass HTTP).
Errors carry the X-Error-Code huggingface_hub maps to its exceptions: RepoNotFound (401 without a
token, 404 with one), RevisionNotFound, EntryNotFound (with X-Repo-Commit), GatedRepo (401 without
a token, 403 with a token that has no access); an unknown token gets 401 "Invalid credentials in
Authorization header".  Every request is logged (`server.requests`) so tests can assert what was,
or was not, fetched.

The `hub` fixture starts one, points huggingface_hub at it, gives it an empty cache, turns
telemetry/xet/tokens off, and refuses any non-loopback connection while the test runs.
"""
from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest

LFS_SUFFIXES = (".safetensors", ".bin", ".h5", ".msgpack", ".ckpt", ".pt", ".pth", ".onnx")
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}


@dataclass
class Logged:
    """One request seen by the server (`server` is "hub" or "cdn")."""

    server: str
    method: str
    path: str
    status: int = 0
    repo_id: str | None = None
    revision: str | None = None
    filename: str | None = None
    authorization: str | None = None
    body_bytes: int = 0                       # bytes of file content sent (0 for HEAD, errors, redirects)


@dataclass
class _Repo:
    revisions: dict[str, dict[str, bytes]]    # name -> files (names and commit hashes both)
    commits: dict[str, str]                   # name -> commit hash
    private: bool = False
    gated: bool = False
    tokens: frozenset = frozenset()
    parents: dict = field(default_factory=dict)              # commit -> parent commit
    discussions: list = field(default_factory=list)          # pull requests, as the API lists them


def _read(value) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    return Path(value).read_bytes()


def _files(spec) -> dict[str, bytes]:
    if isinstance(spec, (str, Path)) and Path(spec).is_dir():
        root = Path(spec)
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    return {name: _read(value) for name, value in spec.items()}


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_lfs(filename: str) -> bool:
    return filename.endswith(LFS_SUFFIXES)


class HubServer:
    """Serve `{repo_id: {revision: {filename: bytes}}}` over HTTP on 127.0.0.1 (a Hub + a CDN port)."""

    def __init__(self, spec: dict | None = None):
        self.repos: dict[str, _Repo] = {}
        self.requests: list[Logged] = []
        self.blobs: dict[str, tuple[str, bytes]] = {}           # sha256 -> (filename, bytes), for the CDN
        self._lock = threading.Lock()
        self._servers: list[ThreadingHTTPServer] = []
        self.outage: int | None = None        # set to e.g. 503: every Hub request gets that status
        self.writers: set[str] = {"hf_write"}  # tokens that may create repos and commit
        self.commits_made: list[dict] = []     # {"repo_id", "revision", "summary", "description", "files"}
        self.cards_checked: list[str] = []     # README.md texts sent to /api/validate-yaml
        for repo_id, revisions in (spec or {}).items():
            self.add_repo(repo_id, revisions)

    # ---------------------------------------------------------------- content
    def add_repo(self, repo_id: str, revisions: dict, *, private: bool = False, gated: bool = False,
                 tokens=()) -> dict[str, str]:
        """Add (or replace) a repo; returns {revision name: commit hash}.  `tokens` may read it."""
        files_by_name = {name: _files(spec) for name, spec in revisions.items()}
        commits = {name: (name if _is_commit(name) else self._commit_of(repo_id, files))
                   for name, files in files_by_name.items()}
        by_any = dict(files_by_name)
        by_any.update({commits[name]: files for name, files in files_by_name.items()})
        for files in files_by_name.values():
            for filename, data in files.items():
                if is_lfs(filename):
                    self.blobs[hashlib.sha256(data).hexdigest()] = (filename, data)
        self.repos[repo_id] = _Repo(by_any, {**commits, **{c: c for c in commits.values()}}, private, gated,
                                    frozenset(tokens))
        return commits

    def add_pr(self, repo_id: str, files: dict, *, base: str = "main", author: str = "SFconvertbot",
               title: str = "Adding `safetensors` variant of this model", status: str = "open") -> str:
        """Open pull request N on `repo_id`: `base`'s files plus `files`, one commit on top; returns "refs/pr/N"."""
        repo = self.repos[repo_id]
        num = len(repo.discussions) + 1
        ref = f"refs/pr/{num}"
        self.put_commit(repo_id, ref, {**repo.revisions[base], **_files(files)}, parent=repo.commits[base])
        repo.discussions.append({"num": num, "title": title, "status": status, "isPullRequest": True,
                                 "author": {"name": author}, "createdAt": "2024-01-02T00:00:00.000Z",
                                 "repo": {"name": repo_id, "type": "model"}})
        return ref

    def put_commit(self, repo_id: str, revision: str, files: dict[str, bytes], parent: str | None) -> str:
        """Point `revision` at a new commit holding `files` (child of `parent`); returns its hash."""
        repo = self.repos[repo_id]
        commit = self._commit_of(repo_id + (parent or ""), files)
        repo.revisions[revision] = repo.revisions[commit] = files
        repo.commits[revision] = repo.commits[commit] = commit
        if parent:
            repo.parents[commit] = parent
        for filename, data in files.items():
            if is_lfs(filename):
                self.blobs[hashlib.sha256(data).hexdigest()] = (filename, data)
        return commit

    @staticmethod
    def _commit_of(repo_id: str, files: dict[str, bytes]) -> str:
        h = hashlib.sha1(repo_id.encode())
        for name in sorted(files):
            h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
        return h.hexdigest()

    # ---------------------------------------------------------------- the log
    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def log(self, entry: Logged) -> None:
        with self._lock:
            self.requests.append(entry)

    def downloads(self) -> list[str]:
        """File names whose content was sent (GET with a body, from the Hub or the CDN)."""
        return [r.filename for r in self.requests if r.body_bytes > 0]

    def bytes_sent(self, filename: str) -> int:
        return sum(r.body_bytes for r in self.requests if r.filename == filename)

    def touched(self, filename: str) -> list[Logged]:
        """Every request (HEAD or GET, Hub or CDN) that concerned `filename`."""
        return [r for r in self.requests if r.filename == filename]

    # ---------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._servers[0].server_address[1]}"

    @property
    def cdn_url(self) -> str:
        return f"http://127.0.0.1:{self._servers[1].server_address[1]}"

    def start(self) -> "HubServer":
        for handler in (_HubHandler, _CdnHandler):
            server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
            server.daemon_threads = True
            server.block_on_close = False
            server.hub = self                                       # type: ignore[attr-defined]
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
            self._servers.append(server)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers = []


def _is_commit(text: str) -> bool:
    return len(text) == 40 and all(c in "0123456789abcdef" for c in text)


class _Base(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"                 # keep-alive, as huggingface_hub's pooled client expects
    server_name = "hub"

    def log_message(self, format, *args):         # noqa: A002 - quiet
        pass

    @property
    def hub(self) -> HubServer:
        return self.server.hub                    # type: ignore[attr-defined]

    def reply(self, entry: Logged, status: int, headers: dict, body: bytes = b"") -> None:
        """Log the request, then send status + headers (+ body unless HEAD).

        Logged first: the client may act on the answer before this thread runs again.
        """
        entry.status = status
        sends_file = self.command != "HEAD" and status in (200, 206) and entry.filename is not None
        entry.body_bytes = len(body) if sends_file else 0
        self.hub.log(entry)
        self.send_response(status)
        for key, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def error(self, entry: Logged, status: int, code: str | None, message: str, extra: dict | None = None):
        headers = {"Content-Type": "application/json", "X-Error-Message": message, **(extra or {})}
        if code:
            headers["X-Error-Code"] = code
        self.reply(entry, status, headers, json.dumps({"error": message}).encode())

    def entry(self) -> Logged:
        return Logged(self.server_name, self.command, self.path, authorization=self.headers.get("Authorization"))

    def send_file(self, entry: Logged, data: bytes, headers: dict) -> None:
        start = 0
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and rng[6:].split("-")[0].isdigit():
            start = int(rng[6:].split("-")[0])
        if start:
            headers = {**headers, "Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
        self.reply(entry, 206 if start else 200, {"Accept-Ranges": "bytes", **headers}, data[start:])


class _HubHandler(_Base):
    """huggingface.co: /api/models/... and /{repo}/resolve/{revision}/{file}."""

    def do_GET(self):
        self.route()

    def do_HEAD(self):
        self.route()

    def do_POST(self):
        self.route()

    def route(self) -> None:
        entry = self.entry()
        if self.hub.outage:
            return self.error(entry, self.hub.outage, None, "Service Unavailable")
        path = urlsplit(self.path).path
        parts = path.strip("/").split("/")
        if self.command == "POST":
            return self.write(entry, parts)
        if parts[:2] == ["api", "models"] and len(parts) > 2:
            return self.api(entry, parts[2:])
        for n in (2, 1):                                      # "org/name/resolve/..." or "name/resolve/..."
            if len(parts) > n + 2 and parts[n] == "resolve":
                entry.repo_id, entry.revision = "/".join(parts[:n]), unquote(parts[n + 1])
                entry.filename = unquote("/".join(parts[n + 2:]))
                return self.resolve(entry)
        self.error(entry, 404, None, "Not Found")

    def access(self, entry: Logged, repo_id: str, for_file: bool) -> _Repo | None:
        """The repo if this request may read it; otherwise answer the error the Hub gives and return None."""
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        known = set().union(self.hub.writers, *(r.tokens for r in self.hub.repos.values()))
        if token is not None and token not in known:
            self.error(entry, 401, None, "Invalid credentials in Authorization header")
            return None
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and token not in repo.tokens):
            self.error(entry, 404 if token else 401, "RepoNotFound", "Repository not found")
            return None
        if repo.gated and for_file and token not in repo.tokens:
            message = (f"Access to model {repo_id} is restricted and you are not in the authorized list."
                       if token else f"Access to model {repo_id} is restricted. You must have access to it and "
                       "be authenticated to access it. Please log in.")
            self.error(entry, 403 if token else 401, "GatedRepo", message)
            return None
        return repo

    def api(self, entry: Logged, rest: list[str]) -> None:
        repo_id, verb, revision = _split_api(rest)
        entry.repo_id, entry.revision = repo_id, revision
        repo = self.access(entry, repo_id, for_file=False)
        if repo is None:
            return
        if verb == "discussions":
            found = [d for d in repo.discussions if d["status"] == "open"]
            return self.json(entry, {"count": len(found), "start": 0, "discussions": found})
        if revision not in repo.revisions:
            return self.error(entry, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
        files, commit = repo.revisions[revision], repo.commits[revision]
        if verb == "tree":
            return self.json(entry, [{"type": "file", "path": name, **_sibling(name, data, True, tree=True)}
                                     for name, data in sorted(files.items())])
        if verb == "commits":
            history = [commit]
            while history[-1] in repo.parents:
                history.append(repo.parents[history[-1]])
            return self.json(entry, [{"id": c, "authors": [{"user": "someone"}], "date": "2024-01-01T00:00:00.000Z",
                                      "title": "commit", "message": ""} for c in history])
        blobs = "blobs" in parse_qs(urlsplit(self.path).query)
        info = {"_id": hashlib.md5(repo_id.encode()).hexdigest()[:24], "id": repo_id,
                "modelId": repo_id, "sha": commit, "private": repo.private,
                "gated": "manual" if repo.gated else False, "disabled": False, "tags": [],
                "lastModified": "2024-01-01T00:00:00.000Z", "createdAt": "2024-01-01T00:00:00.000Z",
                "siblings": [_sibling(name, data, blobs) for name, data in sorted(files.items())]}
        self.json(entry, info)

    def json(self, entry: Logged, data, status: int = 200) -> None:
        self.reply(entry, status, {"Content-Type": "application/json"}, json.dumps(data).encode())

    # ---------------------------------------------------------------- writing (create_repo, upload_folder)
    def write(self, entry: Logged, parts: list[str]) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if parts == ["api", "validate-yaml"]:
            return self.validate_yaml(entry, json.loads(body)["content"])
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        if token is None:
            return self.error(entry, 401, None, "Invalid username or password.")
        if token not in self.hub.writers:
            return self.error(entry, 403, None, "You don't have the rights to write here")
        if parts[:3] == ["api", "repos", "create"]:
            return self.create(entry, json.loads(body), token)
        if parts[:2] != ["api", "models"]:
            return self.error(entry, 404, None, "Not Found")
        repo_id, verb, revision = _split_api(parts[2:])
        entry.repo_id, entry.revision = repo_id, revision
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            return self.error(entry, 404, "RepoNotFound", "Repository not found")
        if verb == "branch":
            if revision in repo.revisions:
                return self.error(entry, 409, None, "Reference already exists")
            repo.revisions[revision], repo.commits[revision] = repo.revisions["main"], repo.commits["main"]
            return self.json(entry, {})
        if revision not in repo.revisions:
            return self.error(entry, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
        if verb == "preupload":
            paths = [f["path"] for f in json.loads(body)["files"]]
            return self.json(entry, {"files": [{"path": p, "uploadMode": "regular", "shouldIgnore": False}
                                               for p in paths]})
        if verb == "commit":
            return self.commit(entry, repo, body)
        self.error(entry, 404, None, "Not Found")

    def validate_yaml(self, entry: Logged, readme: str) -> None:
        """upload_folder checks a README.md's front matter: it must be a YAML mapping (400 otherwise)."""
        import yaml                                    # huggingface_hub depends on PyYAML
        self.hub.cards_checked.append(readme)
        try:
            front = yaml.safe_load(readme.split("---")[1]) if readme.startswith("---") else {}
            assert isinstance(front, dict)
        except Exception as err:
            return self.json(entry, {"errors": [{"message": f"bad YAML: {err}"}]}, status=400)
        self.json(entry, {"warnings": []})

    def create(self, entry: Logged, request: dict, token: str) -> None:
        repo_id = "/".join(filter(None, (request.get("organization"), request["name"])))
        entry.repo_id = repo_id
        if repo_id in self.hub.repos:
            return self.error(entry, 409, None, "You already created this model repo")
        private = bool(request.get("private")) or request.get("visibility") == "private"   # old and new clients
        self.hub.add_repo(repo_id, {"main": {}}, private=private, tokens={token})
        self.json(entry, {"url": f"{self.hub.url}/{repo_id}", "name": repo_id})

    def commit(self, entry: Logged, repo: _Repo, body: bytes) -> None:
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        header = next(line["value"] for line in lines if line["key"] == "header")
        added = {line["value"]["path"]: base64.b64decode(line["value"]["content"])
                 for line in lines if line["key"] == "file"}
        files = {**repo.revisions[entry.revision], **added}
        oid = self.hub.put_commit(entry.repo_id, entry.revision, files, parent=repo.commits[entry.revision])
        self.hub.commits_made.append({"repo_id": entry.repo_id, "revision": entry.revision, "files": added,
                                      "summary": header.get("summary"), "description": header.get("description")})
        self.json(entry, {"commitUrl": f"{self.hub.url}/{entry.repo_id}/commit/{oid}", "commitOid": oid,
                          "pullRequestUrl": None})

    def resolve(self, entry: Logged) -> None:
        repo = self.access(entry, entry.repo_id, for_file=True)
        if repo is None:
            return
        if entry.revision not in repo.revisions:
            return self.error(entry, 404, "RevisionNotFound", f"Invalid rev id: {entry.revision}")
        commit = repo.commits[entry.revision]
        data = repo.revisions[entry.revision].get(entry.filename)
        if data is None:
            return self.error(entry, 404, "EntryNotFound", f"{entry.filename} does not exist on \"{commit}\"",
                              {"X-Repo-Commit": commit})
        headers = {"X-Repo-Commit": commit, "Content-Type": "application/octet-stream"}
        if is_lfs(entry.filename):
            sha256 = hashlib.sha256(data).hexdigest()
            location = f"{self.hub.cdn_url}/repos/{sha256[:2]}/{sha256}?filename={quote(entry.filename)}"
            return self.reply(entry, 302, {**headers, "Location": location, "ETag": f'"{sha256}"',
                                           "X-Linked-Etag": f'"{sha256}"', "X-Linked-Size": str(len(data))})
        self.send_file(entry, data, {**headers, "ETag": f'"{git_blob_sha1(data)}"'})


_API_VERBS = ("revision", "tree", "discussions", "commits", "preupload", "commit", "branch")


def _split_api(rest: list[str]) -> tuple[str, str | None, str]:
    """["org", "name", "tree", "main"] -> ("org/name", "tree", "main"); a bare repo id -> (id, None, "main")."""
    for n in (2, 1):
        if len(rest) > n and rest[n] in _API_VERBS:
            revision = unquote("/".join(rest[n + 1:])) or "main"
            return "/".join(rest[:n]), rest[n], revision
    return "/".join(rest), None, "main"


def _sibling(name: str, data: bytes, blobs: bool, tree: bool = False) -> dict:
    """A file as model_info lists it ("siblings"), or as the tree endpoint does (tree=True)."""
    if not blobs:
        return {"rfilename": name}
    sha256 = hashlib.sha256(data).hexdigest()
    if tree:
        out = {"size": len(data), "oid": git_blob_sha1(data)}
        return {**out, "lfs": {"oid": sha256, "size": len(data), "pointerSize": 134}} if is_lfs(name) else out
    out = {"rfilename": name, "size": len(data), "blobId": git_blob_sha1(data)}
    if is_lfs(name):
        out["lfs"] = {"size": len(data), "sha256": sha256, "pointerSize": 134}
    return out


class _CdnHandler(_Base):
    """The storage host LFS files are redirected to: /repos/xx/<sha256>, no token needed (URL is 'signed')."""

    server_name = "cdn"

    def do_GET(self):
        entry = self.entry()
        sha256 = urlsplit(self.path).path.rsplit("/", 1)[-1]
        found = self.hub.blobs.get(sha256)
        if found is None:
            return self.error(entry, 404, None, "NoSuchKey")
        entry.filename = found[0]
        self.send_file(entry, found[1], {"Content-Type": "application/octet-stream", "ETag": f'"{sha256}"'})

    do_HEAD = do_GET


# --------------------------------------------------------------------------- network guard
def _loopback(host) -> bool:
    host = str(host).strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def guard_network(monkeypatch, blocked: list) -> None:
    """Refuse every DNS lookup and connection that is not to this machine; record the attempts."""
    real_connect, real_connect_ex, real_gai = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def check(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            blocked.append(address)
            raise ConnectionRefusedError(f"test network guard: connection to {address!r} refused (tests are offline)")

    def connect(sock, address):
        check(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        check(sock, address)
        return real_connect_ex(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        if host is not None and not _loopback(host.decode() if isinstance(host, bytes) else host):
            blocked.append(host)
            raise socket.gaierror(socket.EAI_NONAME, f"test network guard: no DNS for {host!r} (tests are offline)")
        return real_gai(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def point_hub_at(monkeypatch, url: str, home: Path) -> None:
    """Make huggingface_hub (already imported or not) use `url`, a cache under `home`, no token, no telemetry.

    huggingface_hub reads HF_ENDPOINT, HF_HUB_CACHE, HF_HUB_OFFLINE, ... once, at import, into
    `huggingface_hub.constants`; setting the environment is not enough once it is imported, so both
    the environment (for later imports / subprocesses) and the constants are set.
    """
    from huggingface_hub import constants
    from huggingface_hub.utils import close_session

    env = {"HF_ENDPOINT": url, "HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub"),
           "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1",
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(key, raising=False)
    consts = {"ENDPOINT": url, "HUGGINGFACE_CO_URL_TEMPLATE": url + "/{repo_id}/resolve/{revision}/{filename}",
              "HF_HUB_CACHE": str(home / "hub"), "HF_HUB_OFFLINE": False, "HF_HUB_DISABLE_TELEMETRY": True,
              "HF_HUB_DISABLE_XET": True, "HF_TOKEN_PATH": str(home / "token"),
              "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"), "HF_HUB_DISABLE_IMPLICIT_TOKEN": False}
    for key, value in consts.items():
        if hasattr(constants, key):
            monkeypatch.setattr(constants, key, value)
    close_session()            # the shared httpx client read proxies at creation: make a fresh one


@pytest.fixture
def hub(monkeypatch, tmp_path) -> Iterator[HubServer]:
    """A running HubServer that huggingface_hub points at; the real network is unreachable meanwhile.

    Yields the server (add repos with `hub.add_repo`, read `hub.requests`); `hub.cache` is the
    empty huggingface_hub cache folder, `hub.blocked` the refused non-local connection attempts
    (the test fails at teardown if any happened and were not cleared).
    """
    pytest.importorskip("huggingface_hub")
    from huggingface_hub.utils import close_session

    server = HubServer().start()
    server.blocked = []                                      # type: ignore[attr-defined]
    server.cache = tmp_path / "hf_home" / "hub"              # type: ignore[attr-defined]
    guard_network(monkeypatch, server.blocked)
    point_hub_at(monkeypatch, server.url, tmp_path / "hf_home")
    try:
        yield server
    finally:
        close_session()
        server.stop()
    assert not server.blocked, f"a test tried to reach the network: {server.blocked}"
