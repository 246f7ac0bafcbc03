"""Compressed files read as if they were plain: `.gz`, `.bz2`, `.xz`, `.zst`.

Corpora and data sets are often shipped compressed (`wiki.txt.gz`, `train.jsonl.zst`).
`open_binary(path)` / `open_text(path)` pick the decompressor from the file name's last
suffix and return a file object that streams the decompressed bytes, so nothing is held
whole.  gzip, bz2 and xz come with Python; zstd needs the `zstandard` package
(`pip install zstandard`, or the `[data]` extra), and its absence is a one-line error.

A compressed file cannot be cut into byte ranges and read from the middle (the stream
has to be decompressed from its start), so readers that split files (`data/shards.py`)
read a compressed file whole, in one piece: `is_compressed(path)` tells them.
`data_suffix(path)` is the suffix that says what the decompressed data is
(`train.jsonl.gz` → `.jsonl`).
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
from pathlib import Path
from typing import IO

from bertkit.common.errors import InputError, missing_dependency

COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")
FORMAT_NAMES = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz", ".zst": "zstd"}


def compression_of(path: str | os.PathLike) -> str | None:
    """'.gz', '.bz2', '.xz', '.zst' for a compressed file name, else None."""
    suffix = Path(path).suffix.lower()
    return suffix if suffix in COMPRESSED_SUFFIXES else None


def is_compressed(path: str | os.PathLike) -> bool:
    return compression_of(path) is not None


def data_suffix(path: str | os.PathLike) -> str:
    """The suffix of the data inside: 'train.jsonl.gz' → '.jsonl', 'a.tsv' → '.tsv' (lower case)."""
    path = Path(path)
    if is_compressed(path):
        path = path.with_suffix("")
    return path.suffix.lower()


def _zstd_reader(path: Path) -> IO[bytes]:
    try:
        import zstandard  # optional: only .zst files need it
    except ImportError:
        raise missing_dependency("zstandard", "data", f"{path} is zstd-compressed: reading it") from None
    return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)


class _Guarded(io.RawIOBase):
    """A decompressing stream whose failures (truncated file, not really gzip ...) are one-line InputErrors."""

    def __init__(self, stream: IO[bytes], path: Path):
        self.stream, self.path, self.done = stream, path, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self.stream.read(len(buffer))
        except decompression_errors() as err:
            where = f" after {self.done:,} decompressed bytes" if self.done else ""
            raise corrupt_error(self.path, err, where) from None
        buffer[:len(data)] = data
        self.done += len(data)
        return len(data)

    def close(self) -> None:
        self.stream.close()
        super().close()


def open_binary(path: str | os.PathLike) -> IO[bytes]:
    """The file's bytes, decompressed when its name ends in .gz/.bz2/.xz/.zst (streamed)."""
    path = Path(path)
    kind = compression_of(path)
    if kind is None:
        return open(path, "rb")
    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open, ".zst": _zstd_reader}[kind]
    return io.BufferedReader(_Guarded(opener(path) if kind == ".zst" else opener(path, "rb"), path), 1 << 16)


def open_text(path: str | os.PathLike, encoding: str = "utf-8-sig", newline: str | None = None) -> IO[str]:
    """The file as text (UTF-8, a byte-order mark ignored), decompressed when its name says so."""
    return io.TextIOWrapper(open_binary(path), encoding=encoding, newline=newline)


class CompressedFileError(InputError):
    """A compressed file whose stream cannot be read to its end."""


def corrupt_error(path: str | os.PathLike, error: Exception, where: str = "") -> InputError:
    """The one-line error for a compressed file whose stream is broken (truncated download, wrong suffix)."""
    kind = FORMAT_NAMES.get(compression_of(path) or "", "compressed")
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    return CompressedFileError(f"{path}: not a readable {kind} file{where} ({detail}). The file may be truncated or "
                               f"not {kind}-compressed: download it again, or rename it to its real format.")


def decompression_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a broken compressed stream raises while it is read."""
    errors: list[type[BaseException]] = [EOFError, lzma.LZMAError, OSError]     # gzip.BadGzipFile is an OSError
    try:
        import zstandard  # optional, as above
        errors.append(zstandard.ZstdError)
    except ImportError:
        pass
    return tuple(errors)
