"""Data sets by name, through the `datasets` library: `--dataset nsmc`, `glue:sst2`, `wikitext:wikitext-103-raw-v1`.

    split = open_split("glue:sst2", "validation")     # NAME[:CONFIG] → one split of it
    split.rows                                        # a datasets.Dataset (or IterableDataset when streaming)

A spec is a Hub name with an optional config after a colon (`klue:ynat`), or a local
folder: one written by `Dataset.save_to_disk` / `DatasetDict.save_to_disk` (read with
`load_from_disk`), or a folder of data files (Parquet, CSV, JSON) that `load_dataset`
reads as it reads a Hub repo.  A local path always wins and never touches the network.
Names go through `datasets.load_dataset`, with its cache (`HF_HOME`, `HF_DATASETS_CACHE`)
and its offline switch (`HF_DATASETS_OFFLINE=1`); `streaming=True` reads a corpus too big
for the disk cache row by row.  The `datasets` package is optional
(`pip install 'bertkit[datasets]'`).

What a user can get wrong is one line each: a name that cannot be found (offline, or a
typo), a split the data set does not have (the splits it has are listed), a column it
does not have (its columns are listed).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from bertkit.common.errors import InputError, missing_dependency

EVAL_SPLITS = ("validation", "validation_matched", "dev", "test")     # tried in order for evaluation


@dataclass
class DatasetSplit:
    """One split of a named data set: its rows, and a name for messages ("glue:sst2[validation]")."""

    spec: str
    split: str
    rows: Any                  # datasets.Dataset or IterableDataset
    splits: tuple[str, ...]    # every split the data set has

    @property
    def source(self) -> str:
        return f"{self.spec}[{self.split}]"

    def __str__(self) -> str:
        return self.source

    @property
    def columns(self) -> list[str]:
        names = getattr(self.rows, "column_names", None)
        if names is None:                       # a streamed data set without declared features: its first row
            names = list(next(iter(self.rows), {}).keys())
        return list(names)

    def require(self, *columns, flags: str = "--text-column / --pair-column / --label-column") -> None:
        """An InputError naming the data set's columns unless every named column is there."""
        have = self.columns
        for column in columns:
            if column is not None and column not in have:
                raise InputError(f"{self.source} has no column {column!r}; its columns are {have}. Name the right "
                                 f"column with {flags}")

    def label_names(self, column: str) -> list[str] | None:
        """The names of a ClassLabel column (glue's 'negative', 'positive'), None for other columns."""
        feature = (getattr(self.rows, "features", None) or {}).get(column)
        return list(feature.names) if hasattr(feature, "names") else None

    def records(self) -> Iterator[tuple[str, int, dict]]:
        """(place, row number, row) for each row: what `tasks.records.read_records` reads."""
        for n, row in enumerate(self.rows, start=1):
            yield f"row {n}", n, row


def _datasets():
    try:
        import datasets  # optional: only --dataset needs it
    except ImportError:
        raise missing_dependency("datasets", "datasets", "--dataset") from None
    return datasets


def parse_spec(spec: str) -> tuple[str, str | None]:
    """'glue:sst2' → ('glue', 'sst2'); 'nsmc' → ('nsmc', None); an existing path is never cut at a colon."""
    if os.path.exists(spec) or ":" not in spec:
        return spec, None
    name, config = spec.rsplit(":", 1)
    return name, config or None


def _on_disk(name: str) -> bool:
    """Whether `name` is a folder written by `save_to_disk` (a Dataset or a DatasetDict)."""
    path = Path(name)
    return path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists())


def _load_error(spec: str, error: Exception) -> InputError:
    """datasets raises many kinds (not found, offline, bad config ...): one line that says what to do."""
    detail = " ".join(str(error).split())[:300] or type(error).__name__
    offline = os.environ.get("HF_DATASETS_OFFLINE") or os.environ.get("HF_HUB_OFFLINE")
    hint = ("offline (HF_DATASETS_OFFLINE/HF_HUB_OFFLINE set) and not in the cache: run once online, or give a "
            "local folder" if offline else "check the name and config (NAME or NAME:CONFIG), or give a local folder")
    return InputError(f"--dataset {spec}: cannot load it ({type(error).__name__}: {detail}); {hint}")


def _splits_of(spec: str, streaming: bool) -> tuple[dict | None, tuple[str, ...]]:
    """(the loaded splits when they come whole from disk, else None; the split names) — nothing built yet."""
    datasets = _datasets()
    name, config = parse_spec(spec)
    if _on_disk(name):
        loaded = datasets.load_from_disk(name)
        loaded = loaded if isinstance(loaded, datasets.DatasetDict) else datasets.DatasetDict(train=loaded)
        return loaded, tuple(loaded.keys())
    try:
        return None, tuple(datasets.get_dataset_split_names(name, config))
    except Exception as e:          # noqa: BLE001  (see _load_error)
        raise _load_error(spec, e) from None


def open_split(spec: str, split: str | None = None, *, streaming: bool = False,
               fallbacks: tuple[str, ...] = ()) -> DatasetSplit | None:
    """One split of the data set `spec` (only that split is downloaded and prepared).

    `split` is required to exist; with `split=None` the first of `fallbacks` that exists is
    taken, and None is returned when none does (the caller then carves one)."""
    loaded, splits = _splits_of(spec, streaming)
    if split is None:
        split = next((s for s in fallbacks if s in splits), None)
        if split is None:
            return None
    if split not in splits:
        raise InputError(f"--dataset {spec} has no split {split!r}; its splits are {list(splits)} "
                         "(choose one with --dataset-split)")
    if loaded is not None:
        return DatasetSplit(spec, split, loaded[split], splits)
    name, config = parse_spec(spec)
    try:
        rows = _datasets().load_dataset(name, config, split=split, streaming=streaming)
    except Exception as e:          # noqa: BLE001  (see _load_error)
        raise _load_error(spec, e) from None
    return DatasetSplit(spec, split, rows, splits)


def write_corpus(split: DatasetSplit, column: str, path: Path) -> dict:
    """Write one text column as a corpus file, one document per line (rows streamed; empty rows left out).

    Newlines inside a text become spaces, so that each row stays one document."""
    split.require(column, flags="--text-column")
    rows = documents = 0
    with open(path, "w", encoding="utf-8") as f:
        for row in split.rows:
            rows += 1
            text = " ".join(str(row[column] or "").split())
            if text:
                f.write(text + "\n")
                documents += 1
    if not documents:
        raise InputError(f"{split.source}: the column {column!r} is empty in all {rows:,} rows; name the text "
                         "column with --text-column")
    return {"rows": rows, "documents": documents}
