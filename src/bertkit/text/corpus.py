"""Raw text files → documents → sentences, streamed line by line.

BERT's pretraining data (google-research/bert, create_pretraining_data.py) is a
plain text file with **one sentence per line** and **a blank line between
documents**. Next-sentence prediction needs both: "the next sentence" only makes
sense inside a document. Many corpora come as **one document per line** instead
(a review, a Wikipedia paragraph); `one_doc_per_line=True` reads those and cuts
each line into sentences with a small rule-based splitter.

Nothing here holds a whole file: files are read line by line, and a file can be
cut into byte ranges that start and end on document boundaries, so several
processes can read one big file at the same time (see `shards.py`).

Compressed files (`.gz`, `.bz2`, `.xz`, `.zst`: `common/compression.py`) are read
through their decompressor, as a stream.  They cannot be cut into byte ranges (a
stream is decompressed from its start), so a compressed file is one range, read
whole by one process: give a big corpus as several compressed files to use several.

Errors a user can cause (an empty file, bytes that are not UTF-8) are reported
with the file, the line number and the byte offset, and what to do about it.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator

from bertkit.common.compression import CompressedFileError, is_compressed, open_binary
from bertkit.common.errors import InputError

# A sentence ends at . ! ? (or their CJK forms, or an ellipsis) followed by
# whitespace. Deliberately simple: it is only used for one-document-per-line
# input, where a wrong cut costs little (the two halves stay in one document).
_SENTENCE_END = re.compile(r"(?<=[.!?。！？…])\s+")


class CorpusError(InputError):
    """A problem with an input text file that the user can fix (an InputError, so a ValueError)."""


def split_sentences(text: str) -> list[str]:
    """Cut one line of running text into sentences (punctuation + whitespace rule).

    >>> split_sentences("It rained. We stayed in! Did you?")
    ['It rained.', 'We stayed in!', 'Did you?']
    """
    return [s for s in (p.strip() for p in _SENTENCE_END.split(text)) if s]


def check_file(path: str | os.PathLike) -> Path:
    """Return `path` as a Path, or raise CorpusError if it is missing or empty."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: no such file. Pass paths to existing UTF-8 text files.")
    if path.stat().st_size == 0:
        raise CorpusError(f"{path}: the file is empty. Remove it from the input list or fill it with text "
                          "(one sentence per line, a blank line between documents).")
    return path


def _line_number(path: Path, byte_offset: int) -> int:
    """1-based line number of the line that contains `byte_offset` (only used for error messages)."""
    count = 1
    with open_binary(path) as f:          # offsets of a compressed file count decompressed bytes
        remaining = byte_offset
        while remaining > 0:
            block = f.read(min(remaining, 1 << 20))
            if not block:
                break
            count += block.count(b"\n")
            remaining -= len(block)
    return count


def decode_line(raw: bytes, path: Path, byte_offset: int) -> str:
    """Decode one line as UTF-8, or raise CorpusError naming the file, line and byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        bad = byte_offset + err.start
        line = _line_number(path, byte_offset)
        inside = " of the decompressed text" if is_compressed(path) else ""
        raise CorpusError(
            f"{path}: line {line} (byte {bad}{inside}) is not valid UTF-8 ({raw[err.start:err.start + 4]!r}...). "
            "Convert the file to UTF-8 first, e.g. `iconv -f cp949 -t utf-8 in.txt > out.txt`.") from None


def iter_lines(path: Path, start: int = 0, end: int | None = None) -> Iterator[tuple[int, str]]:
    """Yield (byte offset, decoded line without newline) for the lines starting in [start, end).

    A compressed file is read whole from its start (`end` None); its offsets count decompressed bytes."""
    if is_compressed(path):
        if start or end is not None:
            raise ValueError(f"{path} is compressed: it is read whole (start=0, end=None), not by byte ranges")
        yield from _compressed_lines(path)
        return
    end = path.stat().st_size if end is None else end
    with open(path, "rb") as f:
        f.seek(start)
        offset = start
        while offset < end:
            raw = f.readline()
            if not raw:
                break
            line = decode_line(raw, path, offset)
            if offset == 0 and line.startswith("\ufeff"):     # a UTF-8 byte-order mark is not text
                line = line[1:]
            yield offset, line.rstrip("\r\n")
            offset += len(raw)


def _compressed_lines(path: Path) -> Iterator[tuple[int, str]]:
    """`iter_lines` of a compressed file: decompressed as a stream; a broken stream is a CorpusError."""
    offset, lines = 0, 0
    with open_binary(path) as f:
        while True:
            try:
                raw = f.readline()
            except CompressedFileError as err:          # say which line was the last one read
                raise CorpusError(f"{err}" + (f" (lines 1-{lines:,} were read)" if lines else "")) from None
            if not raw:
                return
            line = decode_line(raw, path, offset)
            if offset == 0 and line.startswith("\ufeff"):
                line = line[1:]
            yield offset, line.rstrip("\r\n")
            offset += len(raw)
            lines += 1


def iter_documents(path: str | os.PathLike, one_doc_per_line: bool = False,
                   start: int = 0, end: int | None = None) -> Iterator[list[str]]:
    """Yield documents, each a list of sentences (non-empty, stripped strings).

    Default format (as the original BERT): one sentence per line, documents
    separated by blank lines. With `one_doc_per_line=True` every non-blank line
    is a document, cut into sentences by `split_sentences`.

    `start`/`end` restrict reading to the lines that start in that byte range;
    `document_ranges` produces ranges that cut only on document boundaries.
    """
    path = check_file(path)
    document: list[str] = []
    for _, line in iter_lines(path, start, end):
        text = line.strip()
        if one_doc_per_line:
            sentences = split_sentences(text) if text else []
            if sentences:
                yield sentences
        elif text:
            document.append(text)
        elif document:
            yield document
            document = []
    if document:
        yield document


def document_ranges(path: str | os.PathLike, chunk_bytes: int,
                    one_doc_per_line: bool = False) -> list[tuple[int, int | None]]:
    """Cut a file into byte ranges of about `chunk_bytes` that start on a document boundary.

    A range boundary is moved forward to the next line start (one document per
    line) or to the next blank line (blank-line separated documents), so no
    document is cut in two. Only a few bytes around each boundary are read.
    A compressed file is one range, (0, None): read whole, from its start.
    """
    path = check_file(path)
    if is_compressed(path):
        return [(0, None)]
    size = path.stat().st_size
    cuts = [0]
    with open(path, "rb") as f:
        target = chunk_bytes
        while target < size:
            f.seek(target)
            f.readline()                      # finish the line we landed in
            pos = f.tell()
            if not one_doc_per_line:          # walk to just after the next blank line
                while pos < size:
                    raw = f.readline()
                    pos += len(raw)
                    if not raw.strip():
                        break
            if pos >= size:
                break
            if pos > cuts[-1]:
                cuts.append(pos)
            target = max(pos, target) + chunk_bytes
    cuts.append(size)
    return list(zip(cuts[:-1], cuts[1:]))
