"""Atomic writes: a file or a directory is replaced whole, or not at all.

A crash, a full disk or Ctrl-C in the middle of a save must never leave a half-written
checkpoint, vocab or index where the good old one was.  The rule, used everywhere in
bertkit: write into a temporary sibling (same directory, so the same file system), flush
it to disk, then `os.replace` it over the target — a rename is atomic on POSIX and
Windows.  If anything fails before the rename, the temporary is removed and the target
is untouched.

Permissions are those of a plain `open()` / `mkdir()`: files 0666 and directories 0777
less the umask (0644 / 0755 under the usual umask 022), not the private 0600 / 0700 of
the temporary they were written as — a model folder is meant to be shared and served.
A file that replaces an existing one keeps that file's mode.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


def current_umask() -> int:
    """The process umask (read without changing it where the system allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)                   # elsewhere: the classic set-and-restore
    os.umask(mask)
    return mask


def follow_umask(path: Path) -> None:
    """Give `path` (and, for a directory, everything in it) the mode open()/mkdir() would have:
    0666 / 0777 less the umask.  Temporary files and directories are created private (0600 /
    0700); this is what makes their renamed result look like any other saved file."""
    mask = current_umask()
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            os.chmod(root, 0o777 & ~mask)
            for name in files:
                os.chmod(os.path.join(root, name), 0o666 & ~mask)
    else:
        os.chmod(path, 0o666 & ~mask)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it replaces `path` in one rename.

        with atomic_file("model.onnx") as tmp:
            write_somehow(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:            # the bytes are on disk before the rename makes them visible
            os.fsync(fh.fileno())
        if path.is_file():
            os.chmod(tmp, path.stat().st_mode & 0o7777)     # a replaced file keeps its mode
        else:
            follow_umask(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, merge: bool = False) -> Iterator[Path]:
    """Yield an empty temporary directory next to `path`; on success it becomes `path`.

    merge=False: an existing `path` is replaced as a whole (its old files are gone).
    merge=True: the new files replace their namesakes inside an existing `path`, one
    atomic rename each; other files already there are kept (a model directory that
    also holds a user's README keeps it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
    try:
        yield tmp
        follow_umask(tmp)
        if merge and path.is_dir():
            for file in tmp.iterdir():
                os.replace(file, path / file.name)
        else:
            old = None
            if path.exists():
                old = path.with_name(f".{path.name}.old-{os.getpid()}")
                os.replace(path, old)
            os.replace(tmp, path)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- a failed run's folder

#: What a failed run keeps of what it made: a model or a checkpoint, and the log of the steps it trained.
WORTH_KEEPING = ("*.safetensors", "train_log.csv")


@contextlib.contextmanager
def removed_on_failure(path: str | os.PathLike, enabled: bool = True) -> Iterator[Path]:
    """Run a block that writes into the output folder `path`; if it fails, take back what it made.

    On an error (not Ctrl-C: training saves on Ctrl-C and resumes) the block's new things are
    removed: `path` itself, and the parents it needed, when they did not exist before; otherwise
    only the entries of `path` that were not there.  Never anything that existed before the block,
    and never a new entry holding WORTH_KEEPING files (a model saved after an epoch, a checkpoint
    to resume from).  So `bertkit finetune --model wrong --out runs/x` leaves no empty runs/x.
    `enabled=False` (the other processes under torchrun) does nothing.
    """
    path = Path(path)
    top = path                                          # the highest folder this block will create
    while not top.parent.exists() and top.parent != top:
        top = top.parent
    existed = path.exists() or path.is_symlink()
    before = set(os.listdir(path)) if path.is_dir() else set()
    try:
        yield path
    except Exception:
        if enabled:
            new = [top] if not existed else [path / n for n in set(os.listdir(path)) - before] if path.is_dir() else []
            for entry in new:
                _remove_unless_worth_keeping(entry)
        raise


def _remove_unless_worth_keeping(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        if not any(any(entry.rglob(pattern)) for pattern in WORTH_KEEPING):
            shutil.rmtree(entry, ignore_errors=True)
    elif entry.exists() or entry.is_symlink():
        if not any(entry.match(pattern) for pattern in WORTH_KEEPING):
            entry.unlink(missing_ok=True)
