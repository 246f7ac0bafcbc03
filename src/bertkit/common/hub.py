"""Open a published BERT by its Hugging Face Hub name: `resolve_model_dir("bert-base-uncased")`.

Anywhere bertkit accepts a model directory it can also take a *Hub name*; this module turns
that name into a local directory holding config.json, vocab.txt, tokenizer_config.json and
model.safetensors, i.e. the same layout `bertkit.modeling.checkpoint` reads.  It lives on the
ground floor because both the tokenizer (`bertkit.text`) and the models (`bertkit.modeling`) open
files by name.

Words used below
----------------
repo id
    The name of a model repository on the Hub: ``"namespace/name"`` (``"klue/bert-base"``,
    ``"google-bert/bert-base-multilingual-cased"``) or, for a few historical models, a bare
    ``"name"`` (``"bert-base-uncased"``, now an alias of ``"google-bert/bert-base-uncased"``).
    Letters, digits, ``-``, ``_`` and ``.``; at most one ``/``.
revision
    Which version of the repo: a branch (``"main"``, the default), a tag (``"v1.0"``) or a commit
    hash (40 hex digits).  A repo is a git repository, so a branch moves when its owner pushes
    while a commit hash never changes: pin ``revision=<commit>`` for reproducible results.
the cache
    Downloads go to huggingface_hub's cache (``~/.cache/huggingface/hub``, moved with
    ``HF_HUB_CACHE``/``HF_HOME`` or ``cache_dir=``), shared with transformers::

        models--klue--bert-base/
            blobs/<sha>                   file contents, stored once
            refs/main                     the commit that "main" pointed to last time
            snapshots/<commit>/vocab.txt  -> ../../blobs/<sha>   (one folder per commit)
            bertkit/<commit>/             bertkit's own files (a vocab.txt derived from
                                          tokenizer.json), never inside blobs/ or snapshots/

    The returned directory is ``snapshots/<commit>`` (or ``bertkit/<commit>``): a complete
    model directory.  A second call finds the files there and downloads nothing.

Rules
-----
* A path that exists on disk always wins and the network is never touched, even when a repo
  of the same name exists.  A path-like string that does not exist ("./x", "/x", "~/x", "a/b/c",
  "x/config.json") is "not found"; it is never sent to the Hub.  Neither is "runs/nope" while
  a folder ``runs/`` exists here: that is a mistyped folder, answered at once with the
  closest of its subfolders ("did you mean 'runs/sst2'?").
* An unreachable Hub (no network, a dead proxy, a 5xx outage) is known from the first
  request: a repo not in the cache fails then, instead of after huggingface_hub's retries
  with back-off (5 of them, ~25 s, for a file that is not cached).
* Only what a BERT needs is downloaded; ``config.json`` first, and a config whose
  ``model_type`` is not ``"bert"`` is refused before any weight is fetched.
* Weights are safetensors only.  bertkit never unpickles a downloaded file: a repo that only
  has ``pytorch_model.bin`` (or TensorFlow/Flax weights) is refused with how to convert it.
* Offline (``HF_HUB_OFFLINE=1`` or ``local_files_only=True``) only the cache is read.  Tokens
  are huggingface_hub's: ``token=``, else ``HF_TOKEN``, else the login stored by ``hf auth login``.
  Progress bars are huggingface_hub's (``HF_HUB_DISABLE_PROGRESS_BARS=1`` or ``progress=False``
  turn them off).

Needs the optional extra: ``pip install 'bertkit[hub]'`` (which installs huggingface_hub).
"""
from __future__ import annotations

import inspect
import json
import logging
import os
import re
import shutil
import sys
from pathlib import Path, PurePosixPath

from bertkit.common.bundled import BUNDLED, find_minilm
from bertkit.common.files import atomic_write_text
from bertkit.common.hub_names import (CONFIG, SAFETENSORS, SAFETENSORS_INDEX, TOKENIZER_FILES, TOKENIZER_JSON,
                                      UNSAFE_WEIGHTS, VOCAB, HubError, is_hub_name, looks_like_path,
                                      refuse_missing_subfolder, valid_repo_id)

__all__ = ["HubError", "is_hub_name", "resolve_model_dir"]
_log = logging.getLogger(__name__)

_COMMIT = re.compile(r"[0-9a-f]{40}")
_UNSAFE = re.compile(r"(pytorch_model|tf_model|flax_model)([-.\w]*)\.(bin|h5|msgpack)(\.index\.json)?|model\.ckpt.*")
_INSTALL = "pip install 'bertkit[hub]' (or: pip install huggingface_hub)"
_LOGIN = "pass token=..., set HF_TOKEN, or run `hf auth login` (`huggingface-cli login` in older versions)"


# --------------------------------------------------------------------------- entry point
def resolve_model_dir(name_or_path: str | os.PathLike, *, revision: str | None = None,
                      cache_dir: str | os.PathLike | None = None, local_files_only: bool | None = None,
                      token: str | bool | None = None, need_weights: bool = True,
                      progress: bool = True) -> Path:
    """A local model directory for `name_or_path`: a path on disk, or a Hub repo id downloaded to the cache.

    name_or_path      an existing path (returned as is, no network, huggingface_hub not imported)
                      or a repo id such as "bert-base-uncased" or "klue/bert-base".
    revision          branch, tag or commit hash (default: the repo's "main").
    cache_dir         huggingface_hub cache folder (default: HF_HUB_CACHE, ~/.cache/huggingface/hub).
    local_files_only  True: read the cache only; None: follow HF_HUB_OFFLINE; False: go online.
    token             Hub token for private/gated repos (None: HF_TOKEN or the stored login).
    need_weights      False: config and tokenizer files only (e.g. to build a tokenizer).
    progress          False: no download progress bars for this call.

    Raises HubError (a FileNotFoundError) with a one-line message that says what to do.
    """
    if isinstance(name_or_path, str) and not name_or_path.strip():
        raise HubError("model path not found: the model name is empty", "path_not_found")
    if isinstance(name_or_path, os.PathLike) or not isinstance(name_or_path, str):
        path = Path(name_or_path).expanduser()
        if path.exists():
            return path
        raise HubError(f"model path not found: {str(name_or_path)!r} does not exist", "path_not_found")
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    if name_or_path.lower() in BUNDLED:
        return find_minilm()
    if looks_like_path(name_or_path):
        raise HubError(f"model path not found: {name_or_path!r} does not exist (a Hub name looks like "
                       f"'bert-base-uncased' or 'klue/bert-base')", "path_not_found")
    refuse_missing_subfolder(name_or_path)
    if not valid_repo_id(name_or_path):
        raise HubError(f"model not found: {name_or_path!r} is neither an existing path nor a valid Hub repo id "
                       f"('name' or 'namespace/name': letters, digits, '-', '_', '.')", "invalid_name")
    hf = _import_hub()
    offline = _offline(hf) if local_files_only is None else bool(local_files_only)
    job = _Job(hf, name_or_path, revision, cache_dir, token, need_weights, progress)
    if offline:
        return job.from_cache(why="offline" if local_files_only is None else "local_files_only")
    return job.online()


def _import_hub():
    try:
        import huggingface_hub
        import huggingface_hub.constants  # noqa: F401  (submodules are lazy in huggingface_hub >= 1.0:
        import huggingface_hub.errors     # noqa: F401   import them, or `hf.constants` fails in a fresh process)
        import huggingface_hub.utils      # noqa: F401
    except ImportError:
        raise HubError(f"opening a model by Hub name needs huggingface_hub: {_INSTALL}",
                       "no_huggingface_hub") from None
    return huggingface_hub


def _offline(hf) -> bool:
    """The library's offline switch (read at its import) or HF_HUB_OFFLINE set since."""
    flag = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return bool(hf.constants.HF_HUB_OFFLINE) or flag.upper() in ("1", "ON", "YES", "TRUE")


def _errors(hf):
    """huggingface_hub's exception classes, wherever this version keeps them."""
    mod = getattr(hf, "errors", None) or hf.utils
    get = lambda name, default=None: getattr(mod, name, None) or getattr(hf.utils, name, default)  # noqa: E731
    entry = get("EntryNotFoundError")
    return dict(gated=get("GatedRepoError"), repo=get("RepositoryNotFoundError"),
                revision=get("RevisionNotFoundError"), entry=get("RemoteEntryNotFoundError", entry),
                local=get("LocalEntryNotFoundError"), http=get("HfHubHTTPError"),
                offline=get("OfflineModeIsEnabled", ConnectionError), invalid=get("HFValidationError", ValueError))


def _network_errors(hf) -> tuple[type[BaseException], ...]:
    """Exceptions meaning "the Hub could not be reached" for the HTTP client huggingface_hub uses."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError, _errors(hf)["offline"]]
    for module, names in (("httpx2", ("TransportError",)), ("httpx", ("TransportError",)),
                          ("requests", ("ConnectionError", "Timeout"))):
        if module in sys.modules:
            errors += [getattr(sys.modules[module], n) for n in names if hasattr(sys.modules[module], n)]
    return tuple(errors)


# --------------------------------------------------------------------------- one resolution
class _Job:
    """One `resolve_model_dir` call for a repo id: the online path, the cache path, error wording."""

    def __init__(self, hf, repo_id, revision, cache_dir, token, need_weights, progress):
        self.hf, self.repo_id, self.revision, self.token = hf, repo_id, revision, token
        self.cache_dir = None if cache_dir is None else str(Path(cache_dir).expanduser())
        self.need_weights = need_weights
        self.tqdm = None if progress else getattr(hf.utils, "silent_tqdm", None)
        self.what = f"'{repo_id}'" + (f" (revision '{revision}')" if revision else "")

    def download(self, filename: str, revision: str | None, local_only: bool = False) -> Path:
        kwargs = {} if self.tqdm is None else {"tqdm_class": self.tqdm}
        return Path(self.hf.hf_hub_download(self.repo_id, filename, revision=revision, cache_dir=self.cache_dir,
                                            token=self.token, local_files_only=local_only, **kwargs))

    def online(self) -> Path:
        """Download what is missing from the cache; fall back to the cache when the Hub cannot be reached."""
        if self.revision and _COMMIT.fullmatch(self.revision):
            try:                                   # a commit never changes: a complete cached copy is final
                return self.from_cache(why="local_files_only")
            except HubError:
                pass
        errors = _errors(self.hf)
        unreachable = self.probe()
        if unreachable is not None:
            return self.from_cache(why="unreachable", error=unreachable)
        try:
            snapshot = self.fetch()
        except HubError:
            raise
        except (*_network_errors(self.hf), errors["local"] or ConnectionError) as err:
            return self.from_cache(why="unreachable", error=err)
        except Exception as err:
            status = getattr(getattr(err, "response", None), "status_code", None)
            if errors["http"] and isinstance(err, errors["http"]) and status in (429, 500, 502, 503, 504):
                return self.from_cache(why="unreachable", error=err)     # Hub down: like huggingface_hub
            translated = self.translate(err)
            if translated is None:                                       # not a Hub answer: a real bug
                raise
            raise translated from err
        return _complete(snapshot, self.need_weights, self.what, cached=False)

    def probe(self) -> BaseException | None:
        """For a repo not in the cache: one HEAD of config.json without retries; the error when the
        Hub cannot be reached (network down or a 5xx outage), else None.

        hf_hub_download retries a failed first request 5 times with back-off (~25 s) when the
        file is not cached; this answer comes from the first attempt.  A cached repo needs no
        probe: hf_hub_download falls back to the cache at once."""
        cached = self.hf.try_to_load_from_cache(self.repo_id, CONFIG, cache_dir=self.cache_dir,
                                                revision=self.revision)
        if isinstance(cached, str):
            return None
        get = self.hf.get_hf_file_metadata
        no_retry = {"retry_on_errors": False} if "retry_on_errors" in inspect.signature(get).parameters else {}
        try:
            get(self.hf.hf_hub_url(self.repo_id, CONFIG, revision=self.revision), token=self.token,
                timeout=self.hf.constants.HF_HUB_ETAG_TIMEOUT, **no_retry)
        except _network_errors(self.hf) as err:
            return err
        except Exception as err:                   # the Hub answered: fetch() says what it means
            http, status = _errors(self.hf)["http"], getattr(getattr(err, "response", None), "status_code", None)
            if http and isinstance(err, http) and status in (429, 500, 502, 503, 504):
                return err
        return None

    def fetch(self) -> Path:
        """config.json first (refuse non-BERTs), then the listed tokenizer and safetensors files of its commit."""
        try:
            config = self.download(CONFIG, self.revision)   # also records refs/<branch> -> commit
        except Exception as err:
            entry = _errors(self.hf)["entry"]
            if entry and isinstance(err, entry):
                raise HubError(f"{self.what} has no config.json: it is not a transformers model repo",
                               "no_config") from err
            raise
        snapshot = config.parent                            # .../snapshots/<commit>
        _check_bert(config, self.what)
        info = self.hf.HfApi().model_info(self.repo_id, revision=snapshot.name, token=self.token)
        files = {s.rfilename for s in (info.siblings or [])}
        for name in _plan(files, self.need_weights, self.what):
            self.download(name, snapshot.name)
        if self.need_weights and SAFETENSORS not in files:
            for shard in _shards(snapshot / SAFETENSORS_INDEX, files, self.what):
                self.download(shard, snapshot.name)
        return snapshot

    def from_cache(self, why: str, error: BaseException | None = None) -> Path:
        """The cached snapshot for this revision, without any request (it must be complete)."""
        local = _errors(self.hf)["local"] or FileNotFoundError
        try:
            config = self.download(CONFIG, self.revision, local_only=True)
        except (local, FileNotFoundError) as err:
            raise self.not_cached(why, error or err) from (error or err)
        _check_bert(config, self.what)
        if error is not None:
            _log.warning("could not reach the Hub (%s: %s); using the cached copy of %s",
                         type(error).__name__, error, self.what)
        return _complete(config.parent, self.need_weights, self.what, cached=True)

    def not_cached(self, why: str, error: BaseException) -> HubError:
        where = self.cache_dir or self.hf.constants.HF_HUB_CACHE
        if why == "unreachable" and _offline(self.hf):
            why = "offline"
        if why == "unreachable":
            return HubError(f"could not reach the Hub ({self.hf.constants.ENDPOINT}: {type(error).__name__}) and "
                            f"{self.what} is not in the cache {where}: check the network connection and retry, "
                            f"or pass a local model directory", "unreachable")
        switch = "HF_HUB_OFFLINE=1 is set" if why == "offline" else "local_files_only=True was passed"
        return HubError(f"{self.what} is not in the cache {where} and {switch}: it was never downloaded here. "
                        f"Run once online to download it, or pass a local model directory", "offline")

    def translate(self, err: BaseException) -> HubError | None:
        """huggingface_hub's exception -> one clear HubError (None for exceptions that are not the Hub's)."""
        e, url = _errors(self.hf), f"{self.hf.constants.ENDPOINT}/{self.repo_id}"
        status = getattr(getattr(err, "response", None), "status_code", None)
        if e["gated"] and isinstance(err, e["gated"]):
            return HubError(f"{self.what} is a gated repo: accept its conditions at {url} while logged in, "
                            f"then {_LOGIN}", "gated")
        if e["repo"] and isinstance(err, e["repo"]):
            return HubError(f"repo {self.what} not found on the Hub ({url}): check the name; a private or gated "
                            f"repo needs a token: {_LOGIN}", "repo_not_found")
        if e["revision"] and isinstance(err, e["revision"]):
            return HubError(f"revision '{self.revision}' not found in '{self.repo_id}': use a branch, tag or "
                            f"commit hash that exists (see {url}/tree/main)", "revision_not_found")
        if e["entry"] and isinstance(err, e["entry"]):
            return HubError(f"a file listed by {self.what} is missing on the Hub ({err.__class__.__name__}): "
                            f"the repo is incomplete; try another revision", "bad_file")
        if e["invalid"] and isinstance(err, e["invalid"]):
            return HubError(f"invalid Hub name {self.what}: {str(err).splitlines()[0]}", "invalid_name")
        if not (e["http"] and isinstance(err, e["http"])):
            return None
        if status in (401, 403):
            return HubError(f"the Hub refused the token for {self.what} (HTTP {status}): check it, or {_LOGIN}",
                            "auth")
        return HubError(f"the Hub failed for {self.what} ({type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else status}); retry later", "http")


# --------------------------------------------------------------------------- what to download
def _plan(files: set[str], need_weights: bool, what: str) -> list[str]:
    """The files of a repo listing that bertkit downloads, in order (config.json is already there).

    Tokenizer: vocab.txt, else tokenizer.json (a vocab.txt is derived from it), plus
    tokenizer_config.json / special_tokens_map.json when present.  Weights: model.safetensors,
    else model.safetensors.index.json (its shards are added once it is read).
    """
    if VOCAB in files:
        names = [VOCAB]
    elif TOKENIZER_JSON in files:
        names = [TOKENIZER_JSON]
    else:
        raise HubError(f"{what} has no vocab.txt (nor a tokenizer.json to derive it from): it holds no BERT "
                       f"WordPiece vocabulary; use a repo with vocab.txt", "no_vocab")
    names += [name for name in TOKENIZER_FILES if name in files]
    if not need_weights:
        return names
    for name in (SAFETENSORS, SAFETENSORS_INDEX):
        if name in files:
            return names + [name]
    unsafe = sorted(f for f in files if _UNSAFE.fullmatch(PurePosixPath(f).name))
    if unsafe:
        raise _unsafe_weights(what, unsafe)
    raise HubError(f"{what} has no weights (no model.safetensors): bertkit needs safetensors weights",
                   "no_weights")


def _unsafe_weights(what: str, names: list[str]) -> HubError:
    return HubError(
        f"{what} has weights only as {', '.join(names[:3])}, not safetensors; bertkit never unpickles downloaded "
        f"files (a pickle can run code). Convert it safely: open a safetensors conversion PR with the Hub's "
        f"'safetensors/convert' Space (https://huggingface.co/spaces/safetensors/convert) and use revision="
        f"'refs/pr/<n>', or load it yourself in a trusted environment and save_pretrained(dir, "
        f"safe_serialization=True), then pass dir", "unsafe_weights")


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise HubError(f"{path.name} of {what} is not readable JSON ({err})", "bad_file") from err
    if not isinstance(data, dict):
        raise HubError(f"{path.name} of {what} is not a JSON object", "bad_file")
    return data


def _check_bert(config: Path, what: str) -> None:
    """Refuse a config.json that is not a BERT's (before any weight is downloaded)."""
    data = _read_json(config, what)
    model_type = data.get("model_type")
    if model_type == "bert":
        return
    archs = data.get("architectures") or []
    if model_type is None and all(str(a).startswith("Bert") for a in archs):
        return                                   # very old BERT configs carry no model_type
    kind = model_type if model_type is not None else f"unknown (architectures {archs})"
    raise HubError(f"{what} is not a BERT: its config.json says model_type={kind!s}; bertkit opens "
                   f"model_type 'bert' only", "not_bert")


def _shards(index: Path, files: set[str] | None, what: str) -> list[str]:
    """The shard file names listed by model.safetensors.index.json (checked against the repo listing)."""
    weight_map = _read_json(index, what).get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise HubError(f"{index.name} of {what} has no weight_map", "bad_file")
    shards = sorted(set(map(str, weight_map.values())))
    bad = [s for s in shards if not s.endswith(".safetensors") or (files is not None and s not in files)]
    if bad:
        raise HubError(f"{index.name} of {what} lists shard(s) {bad[:3]} that are not safetensors files of the "
                       f"repo", "bad_file")
    return shards


# --------------------------------------------------------------------------- the finished directory
def _complete(snapshot: Path, need_weights: bool, what: str, cached: bool) -> Path:
    """Check `snapshot` holds a whole BERT; derive vocab.txt from tokenizer.json if needed.

    Returns `snapshot`, or `bertkit/<commit>` beside it when a vocab.txt had to be written.
    """
    incomplete = (f"the cached copy of {what} in {snapshot} is incomplete" if cached
                  else f"the download of {what} into {snapshot} is incomplete")
    run_online = "; run once online to finish the download" if cached else "; retry"
    names = [CONFIG] + [n for n in TOKENIZER_FILES if (snapshot / n).is_file()]
    if need_weights:
        if (snapshot / SAFETENSORS).is_file():
            names.append(SAFETENSORS)
        elif (snapshot / SAFETENSORS_INDEX).is_file():
            shards = _shards(snapshot / SAFETENSORS_INDEX, None, what)
            missing = [s for s in shards if not (snapshot / s).is_file()]
            if missing:
                raise HubError(f"{incomplete} (missing {missing[:3]}){run_online}", "incomplete_cache")
            names += [SAFETENSORS_INDEX, *shards]
        elif any((snapshot / n).is_file() for n in UNSAFE_WEIGHTS):
            raise _unsafe_weights(what, [n for n in UNSAFE_WEIGHTS if (snapshot / n).is_file()])
        else:
            raise HubError(f"{incomplete} (no model.safetensors){run_online}", "incomplete_cache")
    if (snapshot / VOCAB).is_file():
        return snapshot
    if not (snapshot / TOKENIZER_JSON).is_file():
        raise HubError(f"{incomplete} (no vocab.txt){run_online}", "incomplete_cache")
    tokens, settings = _vocab_from_tokenizer_json(snapshot / TOKENIZER_JSON, what)
    return _derived_dir(snapshot, names + [TOKENIZER_JSON], tokens, settings)


def _vocab_from_tokenizer_json(path: Path, what: str) -> tuple[list[str], dict]:
    """(tokens ordered by id, tokenizer settings) of a WordPiece tokenizer.json.

    tokenizer.json keeps the vocabulary as {"model": {"type": "WordPiece", "vocab": {token: id}}}
    and tokens added later in "added_tokens": [{"id": .., "content": ..}]; vocab.txt is one
    token per line, line number = id, so the ids must run 0..V-1 without holes.
    """
    data = _read_json(path, what)
    model = data.get("model") or {}
    if model.get("type", "WordPiece") != "WordPiece" or not isinstance(model.get("vocab"), dict):
        raise HubError(f"{what} has no vocab.txt and its tokenizer.json holds a {model.get('type')} model, not a "
                       f"WordPiece vocabulary: it is not a BERT tokenizer", "no_vocab")
    by_id: dict[int, str] = {}
    pairs = list(model["vocab"].items()) + [(t.get("content"), t.get("id")) for t in data.get("added_tokens") or []]
    for token, index in pairs:
        if not isinstance(token, str) or not isinstance(index, int) or by_id.setdefault(index, token) != token:
            raise HubError(f"tokenizer.json of {what} has a bad vocabulary entry {token!r}: {index!r}", "no_vocab")
        if "\n" in token or "\r" in token:
            raise HubError(f"tokenizer.json of {what} has a token with a line break: {token!r}", "no_vocab")
    if sorted(by_id) != list(range(len(by_id))):
        raise HubError(f"tokenizer.json of {what} has vocabulary ids with holes: cannot write vocab.txt", "no_vocab")
    norm = data.get("normalizer") or {}
    settings = {}
    if norm.get("type") == "BertNormalizer":
        settings = {"do_lower_case": bool(norm.get("lowercase", True)), "strip_accents": norm.get("strip_accents"),
                    "tokenize_chinese_chars": bool(norm.get("handle_chinese_chars", True))}
    return [by_id[i] for i in range(len(by_id))], settings


def _derived_dir(snapshot: Path, names: list[str], tokens: list[str], settings: dict) -> Path:
    """`<repo>/bertkit/<commit>/`: links to the snapshot's files plus the derived vocab.txt.

    The snapshot and blobs belong to huggingface_hub and are never written; a tokenizer_config.json
    is added (from tokenizer.json's normalizer) only if the repo has none.
    """
    target = snapshot.parent.parent / "bertkit" / snapshot.name
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        link = target / name
        if not os.path.lexists(link):
            try:
                os.symlink(os.path.relpath(snapshot / name, target), link)
            except OSError:                      # no symlinks (Windows without developer mode)
                shutil.copyfile(snapshot / name, link)
    _write_if_changed(target / VOCAB, "".join(t + "\n" for t in tokens))
    if settings and not (snapshot / TOKENIZER_FILES[0]).is_file():
        _write_if_changed(target / TOKENIZER_FILES[0], json.dumps(settings, indent=2) + "\n")
    return target


def _write_if_changed(path: Path, text: str) -> None:
    """Write atomically, and only when the content differs (a second call changes nothing)."""
    if not (path.is_file() and path.read_text(encoding="utf-8") == text):
        atomic_write_text(path, text)
