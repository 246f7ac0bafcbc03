"""Reading fine-tuning data: tables (TSV/CSV/JSON/JSONL/Parquet), CoNLL columns, KMOU NER, SQuAD JSON.

The format is the file name's suffix: `.csv` (commas), `.json` (a JSON array of objects, or
one object per line), `.jsonl`, `.parquet` (needs pyarrow: the `[data]` extra), anything
else TSV (or plain text, one text per line).  Any of them may be compressed (`.gz`, `.bz2`,
`.xz`, `.zst`: `train.jsonl.gz`), see `common/compression.py`.

Every reader returns an `ExampleList` (`examples.py`) — a plain list of examples that also carries a
`ReadReport`.  The report counts everything the reader did *not* take at face value
(empty lines, rows with the wrong number of columns, labels that are not numbers,
answers that are not where `answer_start` says ...), with the first few line numbers
of each kind, so that nothing is dropped silently.  The CLI prints `report.summary()`.

Three kinds of examples, one per task family:

    TextExample    text (+ text_pair) (+ label)      single-text / pair classification, regression
    TaggedExample  words (+ tags, one per word)      token tagging (NER)
    QAExample      question, context (+ answers)     extractive QA (SQuAD / KorQuAD)

Labels are kept as they appear in the file (strings; floats for regression); the task
maps them to ids, so a label the model does not know is still scored (as an error).
"""
from __future__ import annotations

import csv
import random
import sys
from pathlib import Path
from typing import Callable, Sequence

from bertkit.common.compression import data_suffix, open_text
from bertkit.common.errors import InputError
from bertkit.data.named import DatasetSplit

from .examples import ExampleList, QAExample, TaggedExample, TextExample, _check_file, _part  # noqa: F401
from .records import (RECORD_SUFFIXES, _parquet_file, _parse_label, quoted_columns, read_dataset,  # noqa: F401
                      read_jsonl, read_parquet, read_records)
from .report import ReadReport  # noqa: F401  (ReadReport lives in .report; re-exported)

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))   # long documents in one cell are fine


# ----------------------------------------------------------------------- table readers
def _delimiter_for(path: Path, delimiter: str | None) -> str:
    if delimiter is not None:
        return delimiter
    return "," if data_suffix(path) == ".csv" else "\t"


def _column_index(column, header: list[str] | None, path: Path, required: bool) -> int | None:
    """Turn a column name or index into an index; None when the column is absent and optional.

    `column` may also be a tuple of names tried in order (MNLI: ``("gold_label", "label")``).
    """
    if column is None:
        return None
    if isinstance(column, (tuple, list)):
        for name in column:
            index = _column_index(name, header, path, required=False)
            if index is not None:
                return index
        if required:
            raise InputError(f"{path}: none of the columns {list(column)} is in the header {header}")
        return None
    if isinstance(column, int) or (isinstance(column, str) and column.lstrip("-").isdigit()
                                   and (header is None or column not in header)):
        return int(column)
    if header is None:
        raise InputError(f"{path}: column {column!r} is a name but the file is read without a header; "
                         "give column numbers (0-based) or read with header=True")
    if column in header:
        return header.index(column)
    if required:
        raise InputError(f"{path}: no column named {column!r}; the header has {header}. Name the right "
                         "columns with --text-column / --pair-column / --label-column (bertkit finetune); "
                         "predict and classify read the columns the model was fine-tuned on, or a plain "
                         "text file (one text per line, no header)")
    return None


def header_of(path: str | Path, delimiter: str | None = None) -> list[str]:
    """The column names of a file (for messages): a TSV/CSV first line, a Parquet schema; [] for JSON."""
    path = Path(path)
    if not path.is_file() or data_suffix(path) in (".json", ".jsonl"):
        return []
    if data_suffix(path) == ".parquet":
        return list(_parquet_file(path).schema_arrow.names)
    with open_text(path, newline="") as f:
        return next(csv.reader(f, delimiter=_delimiter_for(path, delimiter)), [])


def is_plain_text(path: str | Path, text_column, delimiter: str | None = None, probe: int = 50) -> bool:
    """Whether a file is plain text, one text per line, rather than a table with a header.

    True for a file that is not .csv/.json/.jsonl, whose first `probe` lines hold no tab
    (the table separator) and whose first line is not the header cell `text_column`:
    `bertkit predict --file reviews.txt` then reads each line as one text.
    """
    path = Path(path)
    if data_suffix(path) in (".csv", *RECORD_SUFFIXES) or delimiter not in (None, "\t"):
        return False
    if not isinstance(text_column, str) or text_column.lstrip("-").isdigit():
        return False
    with open_text(path, newline="") as f:
        lines = [line for _, line in zip(range(probe), f)]
    return bool(lines) and not any("\t" in line for line in lines) and lines[0].strip() != text_column


def read_lines(path: str | Path) -> ExampleList:
    """Plain text, one text per line (no header, no labels) → unlabelled `TextExample`s.

    Empty lines are skipped (counted); each example keeps its `line`."""
    path = Path(path)
    _check_file(path)
    report = ReadReport(source=str(path), file=str(path))
    out = ExampleList(report=report)
    with open_text(path) as f:
        for n, line in enumerate(f, start=1):
            text = line.rstrip("\r\n")
            if not text.strip():
                report.skip("empty lines", n, one="empty line")
                continue
            out.append(TextExample(text, None, None, "", n))
    report.examples = len(out)
    return out


def read_table(path: str | Path, text_column: str | int, text_pair_column: str | int | None = None,
               label_column: str | int | tuple | None = None, *, delimiter: str | None = None,
               header: bool = True, quoting: str = "auto", label_type: type = str,
               guid_column: str | int | None = None, strip: bool = False) -> ExampleList:
    """Read a TSV/CSV file (or JSON/JSONL/Parquet, by extension) into `TextExample`s.

    Columns are names (from the header) or 0-based numbers; `label_column` may be a tuple
    of names, the first one the header has is used.  `quoting="auto"` reads TSV with
    quoting disabled (`csv.QUOTE_NONE`: GLUE/NSMC contain bare `"` characters) and CSV
    with standard quoting.  A UTF-8 BOM is ignored.  When the header has no label column
    the examples are unlabelled (for `predict`).  Each example records its `line`.
    A plain text file (`is_plain_text`: no tab, no header) is read as one text per line.
    """
    if isinstance(path, DatasetSplit):                  # --dataset NAME: rows of a named data set
        return read_dataset(path, text_column, text_pair_column, label_column, label_type=label_type,
                            guid_column=guid_column)
    path = Path(path)
    if data_suffix(path) in RECORD_SUFFIXES:
        reader = read_parquet if data_suffix(path) == ".parquet" else read_jsonl
        return reader(path, text_column, text_pair_column, label_column,
                      label_type=label_type, guid_column=guid_column)
    _check_file(path)
    if header and text_pair_column is None and is_plain_text(path, text_column, delimiter):
        return read_lines(path)
    delim = _delimiter_for(path, delimiter)
    if quoting == "auto":
        quoting = "none" if delim == "\t" else "csv"
    quote = csv.QUOTE_NONE if quoting == "none" else csv.QUOTE_MINIMAL
    report = ReadReport(source=str(path), file=str(path))
    out = ExampleList(report=report)
    with open_text(path, newline="") as f:
        rows = csv.reader(f, delimiter=delim, quoting=quote)
        names = next(rows, None) if header else None
        if header and names is None:
            raise InputError(f"{path} is empty")
        columns = [_column_index(text_column, names, path, required=True),
                   _column_index(text_pair_column, names, path, required=True),
                   _column_index(label_column, names, path, required=False),
                   _column_index(guid_column, names, path, required=False)]
        _table_rows(rows, columns, label_type, strip, delim, report, out)
    if label_column is not None and columns[2] is None:
        report.note(f"examples unlabelled: the file has no column {quoted_columns(label_column)} (they can be "
                    "predicted, not scored)", count=len(out), one="example unlabelled: the file has no column "
                    f"{quoted_columns(label_column)} (it can be predicted, not scored)")
    report.examples = len(out)
    return out


def _table_rows(rows, columns: list, label_type: type, strip: bool, delim: str, report: ReadReport,
                out: list) -> None:
    """The body of `read_table`: each row → a TextExample (or a counted reason to leave it out)."""
    t, p, y, g = columns
    needed = max(i for i in (t, p, y, g, 0) if i is not None) + 1
    separator = "tab" if delim == "\t" else repr(delim)
    end = rows.line_num                                      # the header (if any) is read
    for row in rows:
        n, end = end + 1, rows.line_num                      # a quoted cell may span several lines
        if not row or (len(row) == 1 and not row[0].strip()):
            report.skip("empty lines", n, one="empty line")
            continue
        if len(row) < needed:
            report.skip(f"rows with fewer than {needed} {separator}-separated columns", n,
                        one=f"row with fewer than {needed} {separator}-separated columns",
                        hint="a .csv file is split at commas, any other file at tabs")
            continue
        label = None
        if y is not None:
            label = _parse_label(row[y], label_type, report, n)
            if label is None:
                continue
        text = row[t].strip() if strip else row[t]
        pair = None if p is None else (row[p].strip() if strip else row[p])
        if not text.strip():
            report.note("rows with an empty text (kept)", n, one="row with an empty text (kept)")
        out.append(TextExample(text, pair, label, row[g] if g is not None else "", n))


# ------------------------------------------------------------------------ tag readers
def read_conll(path: str | Path, word_column: int = 0, tag_column: int | None = -1,
               delimiter: str | None = None) -> ExampleList:
    """Read the CoNLL column format: one word per line, blank line between sentences.

    `-DOCSTART-` lines are document separators, not words.  Columns are split on
    whitespace (or `delimiter`); `tag_column=None` reads unlabelled words (for predict).
    """
    path = Path(path)
    _check_file(path)
    report = ReadReport(source=str(path), file=str(path))
    out = ExampleList(report=report)
    words: list[str] = []
    tags: list[str] = []
    start_line = 1
    need = max(_columns_needed(word_column), _columns_needed(tag_column))
    if tag_column is not None:
        need = max(need, 2)          # a word and its tag are never the same column

    def flush():
        if words:
            out.append(TaggedExample(list(words), list(tags) if tag_column is not None else None,
                                     f"line {start_line}", line=start_line))
            words.clear()
            tags.clear()

    with open_text(path) as f:
        for n, line in enumerate(f, start=1):
            cols = line.split(delimiter) if delimiter else line.split()
            if not cols or not line.strip():
                flush()
                continue
            if cols[0] == "-DOCSTART-":
                flush()
                report.note("'-DOCSTART-' document separators (not words)", n,
                            one="'-DOCSTART-' document separator (not a word)")
                continue
            if len(cols) < need:
                report.skip(f"word lines with fewer than {need} columns", n,
                            one=f"word line with fewer than {need} columns", hint=_conll_hint(tag_column))
                continue
            if not words:
                start_line = n
            words.append(cols[word_column].strip())
            if tag_column is not None:
                tags.append(cols[tag_column].strip())
    flush()
    report.examples = len(out)
    return out


def _conll_hint(tag_column: int | None) -> str:
    return (f"the tag is read from column {tag_column} (0-based; -1 = the last), set with --tag-column"
            if tag_column is not None else "every word line needs a word")


def _columns_needed(column: int | None) -> int:
    """How many columns a row needs for `column` (0-based, or negative from the end) to exist."""
    if column is None:
        return 0
    return column + 1 if column >= 0 else -column


def kmou_tag_to_iob2(tag: str, open_type: str | None) -> tuple[str, str | None]:
    """KMOU tags (B_PS, I, O) → IOB2 (B-PS, I-PS, O); `I` takes the type of the open entity."""
    if tag.startswith("B_"):
        return "B-" + tag[2:], tag[2:]
    if tag == "I":
        return ("I-" + open_type, open_type) if open_type else ("O", None)
    return "O", None


def read_kmou(path: str | Path) -> ExampleList:
    """Read the KMOU Korean NER format (2016klp): one block per sentence.

    ``; raw sentence`` / ``$sentence with <entity:TYPE> marks`` / then one row per
    morpheme ``eojeol_index<TAB>morpheme<TAB>POS<TAB>tag``.  The words of the example
    are the morphemes; tags become IOB2 (the untyped ``I`` gets its entity's type).
    """
    path = Path(path)
    _check_file(path)
    report = ReadReport(source=str(path), file=str(path))
    out = ExampleList(report=report)
    words, tags, raw = [], [], ""
    open_type = None
    start_line = 1

    def flush():
        nonlocal words, tags, raw, open_type
        if words:
            out.append(TaggedExample(words, tags, f"line {start_line}", raw, start_line))
        elif raw:
            report.skip("sentences without morpheme rows", start_line, one="sentence without morpheme rows")
        words, tags, raw, open_type = [], [], "", None

    with open_text(path) as f:
        for n, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                flush()
                continue
            if line.startswith(";"):
                flush()
                raw, start_line = line[1:].strip(), n
                continue
            if line.startswith("$"):
                continue
            cols = line.split("\t")
            if len(cols) != 4:
                report.skip("morpheme rows without 4 tab-separated columns", n,
                            one="morpheme row without 4 tab-separated columns")
                continue
            if cols[3] == "I" and open_type is None:
                report.note("'I' tags with no open entity (read as O)", n, one="'I' tag with no open entity (read as O)")
            tag, open_type = kmou_tag_to_iob2(cols[3], open_type)
            words.append(cols[1])
            tags.append(tag)
    flush()
    report.examples = len(out)
    return out


# --------------------------------------------------------------------------- splitting
def train_valid_split(examples: Sequence, valid_fraction: float = 0.1, seed: int = 42,
                      group: Callable | None = None) -> tuple[ExampleList, ExampleList]:
    """Carve a validation set out of training data with a fixed seed.

    `group(example)` keeps examples of one group together (QA: the article, so that no
    paragraph is shared between train and validation).  Groups are shuffled with
    `random.Random(seed)` and the first ⌈fraction × groups⌉ go to validation.
    """
    if not 0 < valid_fraction < 1:
        raise InputError(f"valid_fraction must be between 0 and 1, got {valid_fraction}")
    keys = [group(ex) if group else i for i, ex in enumerate(examples)]
    unique = list(dict.fromkeys(keys))
    random.Random(seed).shuffle(unique)
    n_valid = max(1, round(valid_fraction * len(unique)))
    valid_keys = set(unique[:n_valid])
    train = _part(examples, [ex for ex, k in zip(examples, keys) if k not in valid_keys])
    valid = _part(examples, [ex for ex, k in zip(examples, keys) if k in valid_keys])
    return train, valid
