"""Epoch plans stored once on disk and memory-mapped by every process that needs them.

A plan (which sentences make each instance, which items share each packed row) is a
pure function of its inputs: the shards, the dataset's settings, the seed and the
epoch.  In a job of many processes each would otherwise compute the same arrays and
hold its own copy; with a `plan_dir` the first process to get there writes them and
the others (and later runs) map the file read-only, so the operating system keeps a
single copy in its page cache.

Files of one plan, `<stem>` = `<kind>-<hash>-epoch<e>` where the hash covers every
input of the plan (`settings_hash`):

    <stem>.json          small statistics (instances, random_next, fill, ...)
    <stem>.<name>.npy    one file per array (np.load(mmap_mode="r") needs .npy, not .npz)

Each file is written to a temporary sibling and renamed over its target (atomic on
POSIX and Windows).  Several processes may build the same plan at the same time:
their bytes are identical, so whichever rename comes last changes nothing.  The JSON
is written first and the arrays after it in a fixed order, so a plan counts as
present only when every file is there.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from bertkit.common.files import atomic_file, atomic_write_text


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (e.g. a shards manifest: its identity)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def settings_hash(settings: dict) -> str:
    """Short stable hash of a JSON-able dict of settings (key order does not matter)."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _paths(plan_dir: Path, stem: str, names: tuple[str, ...]) -> tuple[Path, dict[str, Path]]:
    return plan_dir / f"{stem}.json", {n: plan_dir / f"{stem}.{n}.npy" for n in names}


def save_plan(plan_dir: str | os.PathLike, stem: str, arrays: dict[str, np.ndarray], stats: dict) -> None:
    """Write the statistics then each array, each atomically (temporary file + rename)."""
    json_path, paths = _paths(Path(plan_dir), stem, tuple(arrays))
    atomic_write_text(json_path, json.dumps(stats, sort_keys=True))
    for name, array in arrays.items():
        with atomic_file(paths[name]) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(array), allow_pickle=False)


def load_plan(plan_dir: str | os.PathLike, stem: str,
              names: tuple[str, ...]) -> tuple[dict[str, np.ndarray], dict] | None:
    """The memory-mapped arrays and statistics of a stored plan, or None if it is not (all) there."""
    json_path, paths = _paths(Path(plan_dir), stem, names)
    if not json_path.exists() or not all(p.exists() for p in paths.values()):
        return None
    stats = json.loads(json_path.read_text(encoding="utf-8"))
    return {n: np.load(p, mmap_mode="r", allow_pickle=False) for n, p in paths.items()}, stats


def cached_plan(plan_dir: str | os.PathLike | None, stem: str, names: tuple[str, ...],
                build: Callable[[], tuple[dict[str, np.ndarray], dict]]) -> tuple[dict[str, np.ndarray], dict]:
    """Load the plan `stem` from `plan_dir`, or `build()` it (and store it there, then map it).

    Without a plan_dir this is just `build()`.
    """
    if plan_dir is None:
        return build()
    found = load_plan(plan_dir, stem, names)
    if found is not None:
        return found
    arrays, stats = build()
    save_plan(plan_dir, stem, arrays, stats)
    return load_plan(plan_dir, stem, names) or (arrays, stats)
