"""Records with named fields → `TextExample`s: JSON Lines, JSON arrays, Parquet (and `datasets` rows).

Rows of a data set opened by name (`data/named.py`: `--dataset glue:sst2`) are records too:
`read_dataset` for texts and labels, `read_tagged_dataset` for words and tags.

A record reader yields (place, line or row number, record); `read_records` turns each
record into a `TextExample`, counting in the `ReadReport` what it could not take (a
missing field, a label that is not a number).  Places are line numbers for JSON Lines,
"item 3" for a JSON array, "row 3" for Parquet, so messages point at the right spot.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator

from bertkit.common.compression import data_suffix, open_text
from bertkit.common.errors import InputError, missing_dependency

from bertkit.data.named import DatasetSplit

from .examples import ExampleList, TaggedExample, TextExample, _check_file
from .report import ReadReport

RECORD_SUFFIXES = (".json", ".jsonl", ".parquet")     # named fields, not delimited columns


def _parse_label(raw: str, label_type: type, report: ReadReport, line: int):
    raw = raw.strip()
    if raw == "":
        report.skip("rows with an empty label", line, one="row with an empty label")
        return None
    if label_type is float:
        try:
            return float(raw)
        except ValueError:
            report.skip("rows whose label is not a number", (line, raw), one="row whose label is not a number",
                        hint="a regression task needs a number in the label column")
            return None
    return raw


def quoted_columns(column) -> str:
    """'label', or 'gold_label' or 'label' for a tuple of names tried in order."""
    return " or ".join(map(repr, column)) if isinstance(column, (tuple, list)) else repr(column)


def read_jsonl(path: str | Path, text_column: str, text_pair_column: str | None = None,
               label_column: str | tuple | None = None, *, label_type: type = str,
               guid_column: str | None = None) -> ExampleList:
    """Read JSON Lines (one object per line), or a JSON array of objects, with named fields into `TextExample`s.

    A `.json` file whose first character is `[` is one array (places are its items: "item 3");
    otherwise each line is an object (places are lines)."""
    path = Path(path)
    _check_file(path)
    report = ReadReport(source=str(path), file=str(path))
    columns = (text_column, text_pair_column, label_column, guid_column)
    return read_records(_json_records(path, report), columns, label_type, report)


def _json_records(path: Path, report: ReadReport) -> Iterator[tuple[int | str, int, dict | None]]:
    """(place, line, object or None) of a JSONL file or a JSON array (None: counted in `report`)."""
    if data_suffix(path) == ".json" and _starts_with_bracket(path):
        with open_text(path) as f:
            try:
                items = json.load(f)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}: not valid JSON (line {e.lineno}: {e.msg}); give a JSON array of objects "
                                 "or JSON Lines (one object per line)") from None
        for i, obj in enumerate(items, start=1):
            if not isinstance(obj, dict):
                report.skip("items that are not a JSON object", f"item {i}", one="item that is not a JSON object")
                obj = None
            yield f"item {i}", i, obj
        return
    with open_text(path) as f:                  # (a compressed stream cannot seek back: opened again)
        for n, line in enumerate(f, start=1):
            yield n, n, _json_object(line, n, report)


def _starts_with_bracket(path: Path) -> bool:
    """Whether the file's first non-blank character is '[' (a JSON array, not JSON Lines)."""
    with open_text(path) as f:
        first = f.read(1)
        while first and first.isspace():
            first = f.read(1)
    return first == "["


def read_parquet(path: str | Path, text_column: str, text_pair_column: str | None = None,
                 label_column: str | tuple | None = None, *, label_type: type = str,
                 guid_column: str | None = None) -> ExampleList:
    """Read a Parquet file (columns by name) into `TextExample`s, in batches (pyarrow; places: "row 3")."""
    path = Path(path)
    _check_file(path)
    parquet = _parquet_file(path)
    names = parquet.schema_arrow.names
    for column in (text_column, text_pair_column):
        if column is not None and column not in names:
            raise InputError(f"{path}: no column named {column!r}; the file has {names}. Name the right columns "
                             "with --text-column / --pair-column / --label-column")
    report = ReadReport(source=str(path), file=str(path))
    columns = (text_column, text_pair_column, label_column, guid_column)
    return read_records(_parquet_records(parquet), columns, label_type, report)


def _parquet_file(path: Path):
    try:
        import pyarrow.parquet as pq  # optional: only Parquet files need it
    except ImportError:
        raise missing_dependency("pyarrow", "data", f"reading {path} (Parquet)") from None
    try:
        return pq.ParquetFile(path)
    except Exception as e:          # pyarrow's ArrowInvalid & co. for a file that is not Parquet
        raise InputError(f"{path}: not a readable Parquet file ({str(e).splitlines()[0]}); check the file "
                         "or give it its real suffix (.csv, .tsv, .jsonl)") from None


def _parquet_records(parquet) -> Iterator[tuple[str, int, dict]]:
    row = 0
    for batch in parquet.iter_batches(batch_size=4096):
        for obj in batch.to_pylist():
            row += 1
            yield f"row {row}", row, obj


def read_records(records: Iterable[tuple[int | str, int, dict | None]], columns: tuple, label_type: type,
                 report: ReadReport) -> ExampleList:
    """Records with named fields → `TextExample`s: the common body of the JSON, Parquet and `datasets` readers.

    `records` yields (place for messages, line or row number, the record or None when it was
    already counted as skipped); `columns` = (text, pair, label or a tuple of labels, guid).
    A label that is missing, None or -1 ("no gold label" in GLUE's test splits) leaves the
    example unlabelled."""
    text_column, pair_column, label_column, guid_column = columns
    out = ExampleList(report=report)
    labels = label_column if isinstance(label_column, (tuple, list)) else (label_column,)
    for place, n, obj in records:
        if obj is None:
            continue
        noun = "line" if isinstance(place, int) else "record"
        missing = [c for c in (text_column, pair_column) if c is not None and c not in obj]
        if missing:
            report.skip(f"{noun}s without the field {missing[0]!r}", place, one=f"{noun} without the field {missing[0]!r}")
            continue
        label = None
        if label_column is not None:
            key = next((k for k in labels if k in obj and obj[k] is not None and obj[k] != -1), None)
            if key is None:
                report.note(f"{noun}s without a label in {quoted_columns(label_column)} (kept unlabelled)", place,
                            one=f"{noun} without a label in {quoted_columns(label_column)} (kept unlabelled)")
            else:
                label = _parse_label(str(obj[key]), label_type, report, place)
                if label is None:
                    continue
        pair = None if pair_column is None else str(obj[pair_column])
        guid = str(obj.get(guid_column, "")) if guid_column else ""
        out.append(TextExample(str(obj[text_column]), pair, label, guid, n))
    report.examples = len(out)
    return out


def _json_object(line: str, n: int, report: ReadReport) -> dict | None:
    """One JSONL line → its object, or None (counted: empty, not JSON, not an object)."""
    if not line.strip():
        report.skip("empty lines", n, one="empty line")
        return None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        report.skip("lines that are not valid JSON", (n, e.msg), one="line that is not valid JSON")
        return None
    if not isinstance(obj, dict):
        report.skip("lines that are not a JSON object", n, one="line that is not a JSON object")
        return None
    return obj


def read_dataset(split: DatasetSplit, text_column: str, text_pair_column: str | None = None,
                 label_column: str | tuple | None = None, *, label_type: type = str,
                 guid_column: str | None = None, **_table_options) -> ExampleList:
    """The rows of a named data set's split → `TextExample`s (places: "row 3").

    Labels are kept as the data set stores them: a ClassLabel's number ("0", "1", as in the
    GLUE files); -1 (no gold label: GLUE's test splits) leaves the example unlabelled."""
    split.require(text_column, text_pair_column)
    report = ReadReport(source=split.source)
    return read_records(split.records(), (text_column, text_pair_column, label_column, guid_column), label_type,
                        report)


def read_tagged_dataset(split: DatasetSplit, words_column: str = "tokens",
                        tags_column: str | None = "ner_tags") -> ExampleList:
    """Rows with a list of words and a list of tags (conll2003's tokens / ner_tags) → `TaggedExample`s.

    Tags stored as ClassLabel numbers become their names (3 → 'B-ORG'); `tags_column=None`
    or a data set without it reads unlabelled words."""
    split.require(words_column)
    names = split.label_names(tags_column) if tags_column else None
    if names is None and tags_column:
        inner = (getattr(split.rows, "features", None) or {}).get(tags_column)
        names = list(inner.feature.names) if hasattr(getattr(inner, "feature", None), "names") else None
    has_tags = tags_column is not None and tags_column in split.columns
    report = ReadReport(source=split.source)
    out = ExampleList(report=report)
    for place, n, row in split.records():
        words = [str(w) for w in row[words_column]]
        tags = [names[t] if names and isinstance(t, int) else str(t) for t in row[tags_column]] if has_tags else None
        if not words:
            report.skip("rows without words", place, one="row without words")
            continue
        if tags is not None and len(tags) != len(words):
            report.skip("rows whose tags and words differ in number", place, one="row whose tags and words differ "
                        "in number")
            continue
        out.append(TaggedExample(words, tags, place, " ".join(words), n))
    report.examples = len(out)
    return out
