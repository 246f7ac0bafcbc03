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
* Only what a BERT needs is downloaded (huggingface_hub's ``snapshot_download`` with a list of
  file names); ``config.json`` first, and a config whose ``model_type`` is not ``"bert"`` is
  refused before any weight is fetched.
* Weights, in order of preference: ``model.safetensors`` (or its shards); the safetensors
  conversion that the Hub's bot "SFconvertbot" opened as a pull request (``refs/pr/N``) on this
  very commit, as transformers finds it; ``pytorch_model.bin`` (or its shards), which
  `bertkit.modeling.checkpoint` reads with torch's weights-only unpickler (a pickle that would
  run code is refused there).  TensorFlow- or Flax-only repos are refused with how to convert.
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
from pathlib import Path

from tqdm.auto import tqdm

from bertkit.common.bundled import BUNDLED, find_minilm
from bertkit.common.files import atomic_write_text
from bertkit.common.hub_files import check_bert, shard_names, tokenizer_plan, vocab_from_tokenizer_json, weights_plan
from bertkit.common.hub_names import (CONFIG, PYTORCH_BIN, PYTORCH_INDEX, SAFETENSORS, SAFETENSORS_INDEX,
                                      TOKENIZER_FILES, TOKENIZER_JSON, VOCAB, HubError, is_hub_name,
                                      looks_like_path, refuse_missing_subfolder, valid_repo_id)

__all__ = ["HubError", "import_hub", "is_hub_name", "resolve_model_dir"]
_log = logging.getLogger(__name__)

_COMMIT = re.compile(r"[0-9a-f]{40}")
#: How the Hub's conversion bot names its pull requests (transformers/safetensors_conversion.py).
CONVERSION_BOT, CONVERSION_TITLE = "SFconvertbot", "Adding `safetensors` variant of this model"
CONVERSION_RECORD = "conversion.json"          # in bertkit/<commit>/: which PR the weights came from
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
    hf = import_hub()
    offline = _offline(hf) if local_files_only is None else bool(local_files_only)
    job = _Job(hf, name_or_path, revision, cache_dir, token, need_weights, progress)
    if offline:
        return job.from_cache(why="offline" if local_files_only is None else "local_files_only")
    return job.online()


def import_hub(purpose: str = "opening a model by Hub name"):
    """huggingface_hub with the submodules bertkit uses; a one-line HubError when it is not installed."""
    try:
        import huggingface_hub
        import huggingface_hub.constants  # noqa: F401  (submodules are lazy in huggingface_hub >= 1.0:
        import huggingface_hub.errors     # noqa: F401   import them, or `hf.constants` fails in a fresh process)
        import huggingface_hub.utils      # noqa: F401
    except ImportError:
        raise HubError(f"{purpose} needs huggingface_hub: {_INSTALL}",
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


class QuietBar(tqdm):
    """A progress bar that never shows (progress=False); a real tqdm, as snapshot_download's bars need."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{**kwargs, "disable": True})


# --------------------------------------------------------------------------- one resolution
class _Job:
    """One `resolve_model_dir` call for a repo id: the online path, the cache path, error wording."""

    def __init__(self, hf, repo_id, revision, cache_dir, token, need_weights, progress):
        self.hf, self.repo_id, self.revision, self.token = hf, repo_id, revision, token
        self.cache_dir = None if cache_dir is None else str(Path(cache_dir).expanduser())
        self.need_weights = need_weights
        self.tqdm = None if progress else QuietBar
        self.what = f"'{repo_id}'" + (f" (revision '{revision}')" if revision else "")

    def snapshot(self, revision: str | None, names: list[str]) -> Path:
        """huggingface_hub's snapshot_download of `names` only; returns snapshots/<commit>."""
        kwargs = {} if self.tqdm is None else {"tqdm_class": self.tqdm}
        return Path(self.hf.snapshot_download(self.repo_id, revision=revision, cache_dir=self.cache_dir,
                                              token=self.token, allow_patterns=names, **kwargs))

    def cached_config(self) -> Path:
        """config.json of this revision from the cache, no request (refs/<branch> gives the commit)."""
        return Path(self.hf.hf_hub_download(self.repo_id, CONFIG, revision=self.revision, cache_dir=self.cache_dir,
                                            token=self.token, local_files_only=True))

    def listing(self, commit: str) -> set[str]:
        """File names of the repo at `commit`: the tree snapshot_download cached, else one request."""
        try:
            return {f.path for f in self.hf.get_cached_repo_tree(self.repo_id, revision=commit,
                                                                  cache_dir=self.cache_dir)}
        except Exception:                          # older huggingface_hub, or no cached tree
            return set(self.hf.HfApi().list_repo_files(self.repo_id, revision=commit, token=self.token))

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
        """config.json first (refuse non-BERTs), then the tokenizer files, then the weights of that commit."""
        snapshot = self.snapshot(self.revision, [CONFIG])           # also records refs/<branch> -> commit
        if not (snapshot / CONFIG).is_file():
            raise HubError(f"{self.what} has no config.json: it is not a transformers model repo", "no_config")
        check_bert(snapshot / CONFIG, self.what)
        files = self.listing(snapshot.name)
        tokenizer = tokenizer_plan(files, self.what)
        if not self.need_weights:
            self.snapshot(snapshot.name, tokenizer)
            return _complete(snapshot, False, self.what, cached=False)
        weights = weights_plan(files, self.what)
        if weights in (PYTORCH_BIN, PYTORCH_INDEX):                 # prefer the Hub's safetensors conversion
            pr = None if _converted(snapshot) else find_conversion_pr(self.hf, self.repo_id, snapshot.name,
                                                                       self.token)
            if pr is not None:
                self.fetch_conversion(snapshot, pr)
            if pr is not None or _converted(snapshot):
                self.snapshot(snapshot.name, tokenizer)
                return _complete(snapshot, True, self.what, cached=False)
        self.fetch_weights(snapshot.name, [*tokenizer, weights], files)
        return _complete(snapshot, True, self.what, cached=False)

    def fetch_weights(self, revision: str, names: list[str], files: set[str]) -> Path:
        """`names` (the last one a weight file), then the shards it lists if it is an index."""
        snapshot = self.snapshot(revision, names)
        if names[-1].endswith(".index.json"):
            self.snapshot(revision, shard_names(snapshot / names[-1], files, self.what))
        return snapshot

    def fetch_conversion(self, snapshot: Path, pr: str) -> None:
        """The safetensors weights of conversion PR `pr`, linked into bertkit/<commit>/ beside the snapshot."""
        pr_files = self.listing(self.snapshot(pr, [CONFIG]).name)
        weights = next((n for n in (SAFETENSORS, SAFETENSORS_INDEX) if n in pr_files), None)
        if weights is None:
            raise HubError(f"the safetensors conversion {pr} of {self.what} has no model.safetensors: pass "
                           f"revision= of a commit with weights", "no_weights")
        pr_snapshot = self.fetch_weights(pr, [weights], pr_files)
        own = _own_dir(snapshot)
        names = [weights] + (shard_names(pr_snapshot / weights, None, self.what) if weights != SAFETENSORS else [])
        _link(own, {name: pr_snapshot / name for name in names})
        _write_if_changed(own / CONVERSION_RECORD, json.dumps({"revision": pr, "commit": pr_snapshot.name}) + "\n")
        _log.info("%s has only pytorch_model.bin; using the safetensors conversion %s", self.what, pr)

    def from_cache(self, why: str, error: BaseException | None = None) -> Path:
        """The cached snapshot for this revision, without any request (it must be complete)."""
        local = _errors(self.hf)["local"] or FileNotFoundError
        try:
            config = self.cached_config()
        except (local, FileNotFoundError) as err:
            raise self.not_cached(why, error or err) from (error or err)
        check_bert(config, self.what)
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
def find_conversion_pr(hf, repo_id: str, commit: str, token) -> str | None:
    """The git reference ("refs/pr/N") of the Hub's safetensors conversion of `commit`, or None.

    As transformers does (transformers/safetensors_conversion.py): an open pull request titled
    CONVERSION_TITLE, opened by the bot CONVERSION_BOT, whose parent commit is `commit` (the PR
    adds model.safetensors on top of exactly these weights).  bertkit only looks; it never asks
    the conversion Space to open one.  Any failure means "no conversion": the .bin is used.
    """
    api = hf.HfApi()
    try:
        for pr in api.get_repo_discussions(repo_id, discussion_type="pull_request", discussion_status="open",
                                           token=token):
            if pr.title != CONVERSION_TITLE or pr.author != CONVERSION_BOT:
                continue
            history = api.list_repo_commits(repo_id, revision=pr.git_reference, token=token)
            if len(history) > 1 and history[1].commit_id == commit:
                return pr.git_reference
    except Exception as err:                       # listing discussions is optional (old Hubs, mirrors)
        _log.info("could not look for a safetensors conversion of %s: %s", repo_id, err)
    return None


# --------------------------------------------------------------------------- the finished directory
def _weights_in(folder: Path, what: str, incomplete: str) -> list[str]:
    """The weight files present in `folder` (safetensors preferred), [] if none; a partial set of shards fails."""
    for single, index in ((SAFETENSORS, SAFETENSORS_INDEX), (PYTORCH_BIN, PYTORCH_INDEX)):
        if (folder / single).is_file():
            return [single]
        if (folder / index).is_file():
            shards = shard_names(folder / index, None, what)
            missing = [s for s in shards if not (folder / s).is_file()]
            if missing:
                raise HubError(f"{incomplete} (missing {missing[:3]})", "incomplete_cache")
            return [index, *shards]
    return []


def _complete(snapshot: Path, need_weights: bool, what: str, cached: bool) -> Path:
    """Check `snapshot` holds a whole BERT; returns it, or bertkit/<commit>/ beside it when bertkit had to add
    files: a vocab.txt derived from tokenizer.json, or the weights of a safetensors conversion PR."""
    incomplete = (f"the cached copy of {what} in {snapshot} is incomplete" if cached
                  else f"the download of {what} into {snapshot} is incomplete")
    run_online = "; run once online to finish the download" if cached else "; retry"
    own = _own_dir(snapshot)
    names = [CONFIG] + [n for n in (*TOKENIZER_FILES, TOKENIZER_JSON) if (snapshot / n).is_file()]
    converted = _converted(snapshot) and need_weights
    if need_weights and not converted:
        weights = _weights_in(snapshot, what, incomplete + run_online)
        if not weights:
            raise HubError(f"{incomplete} (no model.safetensors nor pytorch_model.bin){run_online}", "incomplete_cache")
        names += weights
    if (snapshot / VOCAB).is_file() and not converted:
        return snapshot
    if (snapshot / VOCAB).is_file():
        names.append(VOCAB)
    elif not (snapshot / TOKENIZER_JSON).is_file():
        raise HubError(f"{incomplete} (no vocab.txt){run_online}", "incomplete_cache")
    else:
        tokens, settings = vocab_from_tokenizer_json(snapshot / TOKENIZER_JSON, what)
        _write_if_changed(own / VOCAB, "".join(t + "\n" for t in tokens))
        if settings and not (snapshot / TOKENIZER_FILES[0]).is_file():
            _write_if_changed(own / TOKENIZER_FILES[0], json.dumps(settings, indent=2) + "\n")
    _link(own, {name: snapshot / name for name in names})
    return own


def _own_dir(snapshot: Path) -> Path:
    """`<repo>/bertkit/<commit>/`: bertkit's files for a commit (huggingface_hub's snapshots are never written)."""
    return snapshot.parent.parent / "bertkit" / snapshot.name


def _converted(snapshot: Path) -> bool:
    """True when bertkit/<commit>/ holds the complete weights of a safetensors conversion PR."""
    own = _own_dir(snapshot)
    try:
        return (own / CONVERSION_RECORD).is_file() and bool(_weights_in(own, "", ""))
    except HubError:
        return False


def _link(target: Path, sources: dict[str, Path]) -> None:
    """Symlink target/<name> -> source for each file (a copy where symlinks are not allowed)."""
    target.mkdir(parents=True, exist_ok=True)
    for name, source in sources.items():
        link = target / name
        if not os.path.lexists(link):
            try:
                os.symlink(os.path.relpath(source, target), link)
            except OSError:                      # no symlinks (Windows without developer mode)
                shutil.copyfile(source, link)


def _write_if_changed(path: Path, text: str) -> None:
    """Write atomically, and only when the content differs (a second call changes nothing)."""
    if not (path.is_file() and path.read_text(encoding="utf-8") == text):
        atomic_write_text(path, text)
