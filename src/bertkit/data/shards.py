"""Tokenize a raw-text corpus once, into sharded numpy memmaps.

Pretraining reads the same corpus for many epochs; tokenizing it every time
would waste most of the run. So we tokenize once and store token ids:

    out_dir/
      manifest.json                     what is here: vocab hash, tokenizer settings, counts
      tokenizer/                        the tokenizer used (vocab.txt + tokenizer_config.json)
      shard_00000.tokens.bin            all token ids of the shard, one after another
      shard_00000.sentences.bin         int64 [S+1]: sentence k = tokens[s[k]:s[k+1]]
      shard_00000.documents.bin         int64 [D+1]: document d = sentences d[d]..d[d+1]-1

Token ids are uint16 when the vocab has fewer than 65,536 entries (half the
disk and page cache of int32), int32 otherwise. Sentences never span shards
and documents never span shards, so a shard can be read on its own.

The corpus is cut into byte ranges on document boundaries (`corpus.document_ranges`;
a compressed file, .gz/.bz2/.xz/.zst, is one range read whole as a stream) and each
range becomes one shard, tokenized by a pool of worker processes. Each
worker streams its range line by line and flushes ids to disk in bounded
buffers, so memory stays flat however large the corpus is.
"""
from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from bertkit.common.errors import InputError, NotFoundError, OutputExistsError
from bertkit.common.files import atomic_write_text
from bertkit.text.corpus import CorpusError, check_file, document_ranges, iter_documents

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = "bertkit-shards"
VERSION = 1
_FLUSH_TOKENS = 1 << 18          # flush the write buffers after this many tokens (~1 MB of int32)


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits in 16 bits, else int32."""
    return np.dtype(np.uint16 if vocab_size <= 65536 else np.int32)


def vocab_tokens(tokenizer) -> list[str]:
    """The vocabulary as a list in id order."""
    ids_to_tokens = tokenizer.ids_to_tokens
    return [ids_to_tokens[i] for i in range(len(ids_to_tokens))]


def vocab_hash(tokenizer) -> str:
    """sha256 of the vocabulary (tokens in id order, one per line): shards are only valid with it."""
    return hashlib.sha256("\n".join(vocab_tokens(tokenizer)).encode("utf-8")).hexdigest()


def tokenizer_settings(tokenizer) -> dict:
    """The pre-tokenization settings that change which ids a text gets."""
    names = ("do_lower_case", "strip_accents", "tokenize_chinese_chars", "morpheme_splitter")
    values = {name: getattr(tokenizer, name, None) for name in names}
    return {k: v if isinstance(v, (str, bool, int, type(None))) else repr(v) for k, v in values.items()}


# ---------------------------------------------------------------- one shard (runs in a worker)

@dataclass
class ShardTask:
    path: str
    start: int
    end: int | None           # None: to the end (a compressed file is one task, read whole)
    name: str
    out_dir: str
    one_doc_per_line: bool
    dtype: str


class _ShardWriter:
    """Appends documents to the three files of one shard through bounded buffers."""

    def __init__(self, prefix: Path, dtype: np.dtype):
        self.dtype = dtype
        self.files = {kind: open(f"{prefix}.{kind}.bin", "wb") for kind in ("tokens", "sentences", "documents")}
        self.tokens: list[int] = []
        self.sentence_ends: list[int] = []
        self.document_ends: list[int] = []
        self.n_tokens = self.n_sentences = self.n_documents = self.n_single = 0
        np.zeros(1, np.int64).tofile(self.files["sentences"])      # leading 0 of the offsets
        np.zeros(1, np.int64).tofile(self.files["documents"])

    def add_document(self, sentences: Sequence[Sequence[int]]) -> None:
        sentences = [s for s in sentences if len(s)]
        if not sentences:
            return
        for ids in sentences:
            self.tokens.extend(ids)
            self.n_tokens += len(ids)
            self.sentence_ends.append(self.n_tokens)
        self.n_sentences += len(sentences)
        self.n_documents += 1
        self.n_single += len(sentences) == 1
        self.document_ends.append(self.n_sentences)
        if len(self.tokens) >= _FLUSH_TOKENS:
            self.flush()

    def flush(self) -> None:
        np.asarray(self.tokens, dtype=self.dtype).tofile(self.files["tokens"])
        np.asarray(self.sentence_ends, dtype=np.int64).tofile(self.files["sentences"])
        np.asarray(self.document_ends, dtype=np.int64).tofile(self.files["documents"])
        self.tokens, self.sentence_ends, self.document_ends = [], [], []

    def close(self) -> dict:
        self.flush()
        for f in self.files.values():
            f.close()
        return {"tokens": self.n_tokens, "sentences": self.n_sentences,
                "documents": self.n_documents, "single_sentence_documents": self.n_single}


_worker_tokenizer = None


def _init_worker(tokenizer) -> None:
    global _worker_tokenizer
    _worker_tokenizer = tokenizer


_BATCH_SENTENCES = 2048        # sentences encoded per tokenizer call (bounded memory, amortized call cost)


def encode_sentences(tokenizer, sentences: list[str]) -> list[list[int]]:
    """Token ids of each sentence, without [CLS]/[SEP], in one batched tokenizer call."""
    if callable(tokenizer):
        with warnings.catch_warnings():          # long sentences are fine here: NSP cuts them later
            warnings.simplefilter("ignore")
            return tokenizer(sentences, add_special_tokens=False)["input_ids"]
    return [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(s)) for s in sentences]


def build_one_shard(task: ShardTask) -> dict:
    """Tokenize the documents in one byte range of one file into one shard."""
    tok = _worker_tokenizer
    writer = _ShardWriter(Path(task.out_dir) / task.name, np.dtype(task.dtype))
    pending: list[list[str]] = []
    n_pending = 0

    def encode_pending() -> None:
        ids = iter(encode_sentences(tok, [s for doc in pending for s in doc]))
        for doc in pending:
            writer.add_document([next(ids) for _ in doc])
        pending.clear()

    try:
        for document in iter_documents(task.path, task.one_doc_per_line, task.start, task.end):
            pending.append(document)
            n_pending += len(document)
            if n_pending >= _BATCH_SENTENCES:
                encode_pending()
                n_pending = 0
        if pending:
            encode_pending()
    finally:
        stats = writer.close()
    return {"name": task.name, "source": task.path, "byte_range": [task.start, task.end], **stats}


# ---------------------------------------------------------------- the whole corpus

def _plan_tasks(files: Sequence[Path], out_dir: Path, one_doc_per_line: bool, dtype: np.dtype,
                chunk_bytes: int) -> Iterable[ShardTask]:
    n = 0
    for path in files:
        for start, end in document_ranges(path, chunk_bytes, one_doc_per_line):
            yield ShardTask(str(path), start, end, f"shard_{n:05d}", str(out_dir), one_doc_per_line, dtype.str)
            n += 1


def _default_chunk_bytes(total_bytes: int, num_workers: int) -> int:
    """About 4 shards per worker for small corpora, 64 MB shards for big ones."""
    return int(min(64 << 20, max(256 << 10, total_bytes // (4 * num_workers) + 1)))


def build_shards(files: Sequence[str | os.PathLike] | str | os.PathLike, tokenizer, out_dir: str | os.PathLike,
                 num_workers: int | None = None, one_doc_per_line: bool = False,
                 chunk_bytes: int | None = None, overwrite: bool = False) -> Path:
    """Tokenize raw text files into sharded memmaps under `out_dir`; return the manifest path.

    Args:
        files: text files (UTF-8). Default format: one sentence per line, a blank
            line between documents (as google-research/bert). With
            `one_doc_per_line=True`, each line is a document and is cut into sentences.
        tokenizer: a `bertkit.BertTokenizer` (anything with tokenize,
            convert_tokens_to_ids and ids_to_tokens works). It is saved to
            `out_dir/tokenizer` when it has `save_pretrained`.
        out_dir: directory for the shards and `manifest.json`.
        num_workers: processes that tokenize in parallel (default: all CPU cores);
            1 tokenizes in this process.
        chunk_bytes: size of the byte range behind one shard (default: about four
            shards per worker, at most 64 MB).
        overwrite: replace an existing manifest in `out_dir` (else an error).

    Memory stays bounded: no process holds more than ~2,000 sentences of text
    plus a ~1 MB write buffer, whatever the corpus size.
    """
    files, manifest_path = _check_inputs(files, Path(out_dir), overwrite)
    num_workers = max(1, num_workers or os.cpu_count() or 1)
    total_bytes = sum(f.stat().st_size for f in files)
    chunk_bytes = chunk_bytes or _default_chunk_bytes(total_bytes, num_workers)
    vocab_size = len(tokenizer.ids_to_tokens)
    dtype = token_dtype(vocab_size)
    tasks = _plan_tasks(files, manifest_path.parent, one_doc_per_line, dtype, chunk_bytes)
    shards = _run_tasks(tasks, tokenizer, num_workers)
    totals = {k: sum(s[k] for s in shards) for k in ("tokens", "sentences", "documents",
                                                         "single_sentence_documents")}
    if totals["tokens"] == 0:
        raise CorpusError(f"no tokens in {[str(f) for f in files]}: the files hold only blank lines.")
    if hasattr(tokenizer, "save_pretrained"):
        tokenizer.save_pretrained(manifest_path.parent / "tokenizer")
    manifest = {
        "format": FORMAT, "version": VERSION,
        "dtype": dtype.name, "vocab_size": vocab_size, "vocab_sha256": vocab_hash(tokenizer),
        "special_ids": {name: getattr(tokenizer, f"{name}_token_id", None)
                        for name in ("pad", "unk", "cls", "sep", "mask")},
        "tokenizer": tokenizer_settings(tokenizer),
        "one_doc_per_line": one_doc_per_line,
        "files": [{"path": str(f), "bytes": f.stat().st_size} for f in files],
        "bytes": total_bytes, **totals, "shards": shards,
    }
    atomic_write_text(manifest_path, json.dumps(manifest, indent=1, ensure_ascii=False))
    log.info("built %d shards: %d documents, %d sentences, %d tokens", len(shards),
             totals["documents"], totals["sentences"], totals["tokens"])
    return manifest_path


def _check_inputs(files: Sequence[str | os.PathLike] | str | os.PathLike, out_dir: Path,
                  overwrite: bool) -> tuple[list[Path], Path]:
    """The readable input files and the manifest path, before any work is done."""
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    files = [check_file(f) for f in files]
    if not files:
        raise CorpusError("no input files given. Pass one or more UTF-8 text files.")
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / MANIFEST
    if manifest_path.exists() and not overwrite:
        raise OutputExistsError(f"{manifest_path} already exists. Choose another out_dir or pass overwrite=True.")
    return files, manifest_path


def _run_tasks(tasks: Iterable[ShardTask], tokenizer, num_workers: int) -> list[dict]:
    """Build every shard, in this process (num_workers=1) or in a pool of forked workers."""
    if num_workers == 1:
        _init_worker(tokenizer)
        return [build_one_shard(t) for t in tasks]
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    with ctx.Pool(num_workers, initializer=_init_worker, initargs=(tokenizer,)) as pool:
        return list(pool.imap(build_one_shard, tasks))


# ---------------------------------------------------------------- reading back

class ShardedCorpus:
    """Read-only view of a shards directory: sentences and documents by global index.

    Sentence and document indices run over all shards in manifest order. Token
    arrays are numpy memmaps, so opening a corpus reads only the offsets.
    """

    def __init__(self, shards_dir: str | os.PathLike):
        self.dir = Path(shards_dir)
        path = self.dir / MANIFEST
        if not path.exists():
            raise NotFoundError(f"{path} not found. Build the shards first with "
                                "bertkit.data.build_shards(files, tokenizer, out_dir).")
        self.manifest = json.loads(path.read_text(encoding="utf-8"))
        if self.manifest.get("format") != FORMAT:
            raise InputError(f"{path} is not a bertkit shards manifest.")
        dtype = np.dtype(self.manifest["dtype"])
        self.tokens, self.sentence_starts, doc_ends = [], [], []
        sent_base = [0]
        for shard in self.manifest["shards"]:
            prefix = self.dir / shard["name"]
            n_tok = shard["tokens"]
            tokens = (np.memmap(f"{prefix}.tokens.bin", dtype=dtype, mode="r", shape=(n_tok,))
                      if n_tok else np.zeros(0, dtype))
            sents = np.fromfile(f"{prefix}.sentences.bin", dtype=np.int64)
            docs = np.fromfile(f"{prefix}.documents.bin", dtype=np.int64)
            if len(sents) != shard["sentences"] + 1 or len(docs) != shard["documents"] + 1:
                raise InputError(f"{prefix}.*.bin do not match {path} (interrupted build?). Rebuild the shards.")
            self.tokens.append(tokens)
            self.sentence_starts.append(sents)
            doc_ends.append(docs[1:] + sent_base[-1])
            sent_base.append(sent_base[-1] + shard["sentences"])
        self.shard_sentence_base = np.asarray(sent_base, dtype=np.int64)        # [n_shards+1]
        # document d = global sentences doc_starts[d] .. doc_starts[d+1]-1
        self.doc_starts = np.concatenate([[0]] + doc_ends).astype(np.int64)
        self.sentence_lengths = np.concatenate(
            [np.diff(s) for s in self.sentence_starts] or [np.zeros(0, np.int64)]).astype(np.int32)

    def __getstate__(self) -> dict:
        # DataLoader workers started with "spawn" get a pickled copy: reopen the memmaps
        # there instead of pickling them (which would copy every token).
        return {"dir": self.dir}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["dir"])

    @property
    def num_documents(self) -> int:
        return len(self.doc_starts) - 1

    def span(self, first: int, last: int) -> np.ndarray:
        """Token ids of global sentences first..last-1 (which must lie in one document), as int64."""
        if last <= first:
            return np.zeros(0, np.int64)
        k = int(np.searchsorted(self.shard_sentence_base, first, side="right")) - 1
        base = self.shard_sentence_base[k]
        starts = self.sentence_starts[k]
        return np.asarray(self.tokens[k][starts[first - base]:starts[last - base]], dtype=np.int64)

    def document(self, d: int) -> list[np.ndarray]:
        """Document d as a list of sentences (arrays of token ids)."""
        return [self.span(s, s + 1) for s in range(self.doc_starts[d], self.doc_starts[d + 1])]
