"""Read Google's original TensorFlow BERT checkpoints without TensorFlow.

A release such as ``uncased_L-12_H-768_A-12/`` holds::

    bert_config.json                        the hyper-parameters (same keys as config.json)
    vocab.txt                               the WordPiece vocabulary
    bert_model.ckpt.index                   which tensor lives where (a small table)
    bert_model.ckpt.data-00000-of-00001     the raw tensor bytes, one after another

"bert_model.ckpt" is the checkpoint *prefix*; TensorFlow calls the files a TensorBundle.
Big ones spread their bytes over several data files (shards): ``.data-00000-of-00003``, ...

The index file is an SSTable (LevelDB's table format), read back to front:

* the last 48 bytes are the footer: the BlockHandles (offset, size: two varints each) of
  the metaindex block (empty here) and of the index block, zero padding up to byte 40,
  then the 8-byte magic number 0xdb4775248b80fb57;
* the index block lists one (key, BlockHandle) per data block; every block is followed
  by a 5-byte trailer: a compression byte (TensorFlow writes 0 = none) and the masked
  CRC32C of the block plus that byte;
* in a block, keys are prefix-compressed -- each entry is ``varint shared, varint
  unshared, varint value_len, key[shared:], value`` -- and the block ends with the uint32
  offsets of its "restart" entries (full keys) and their uint32 count.

The table maps each tensor name ("bert/encoder/layer_0/attention/self/query/kernel") to
a BundleEntryProto -- dtype, shape, shard_id, offset, size, crc32c -- and the empty key
"" to a BundleHeaderProto (num_shards, endianness, version).  Both are protocol buffers,
decoded here by hand from the wire format (each field: varint tag = number << 3 | type).
A tensor is bytes [offset, offset + size) of data file shard_id: little-endian and
row-major, i.e. exactly a numpy array, so it is read as a view of the memory-mapped file.

Names map to the standard (Hugging Face) ones by rule ("layer_3" -> "layer.3", gamma -> weight, ...);
a dense "kernel" [in, out] (TensorFlow computes x @ kernel) becomes a *transposed* Linear weight [out, in].

Checksums.  Each index block's CRC32C is always checked (the index is tiny); the tensor
bytes only with verify=True, a measured choice (bench/bench_tf_load.py: BERT-Base, 440 MB,
1 thread, a busy 2-core machine): loading takes 0.32-0.43 s, safetensors' load_file plus
the copy into owned tensors 0.23-0.53 s, but the numpy CRC32C below (thousands of lanes
advanced together, then combined; ~0.4 GB/s) adds 0.9-1.3 s: 2.8-5.4x safetensors, over
a 2x budget.  Memory peaks at one copy of the weights (430 MiB; safetensors + copy: 843
MiB): each tensor's file pages go back to the OS (madvise) once it is copied into torch.
"""
from __future__ import annotations

import json
import mmap
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import torch

from bertkit.common.errors import InputError
from bertkit.text.tokenizer_files import casing_from_release_name  # noqa: F401  (re-exported)

MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48                                   # 2 handles padded to 40 bytes + 8-byte magic
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64, 14: np.uint16, 19: np.float16}
DTYPE_NAMES = {1: "float", 2: "double", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string", 8: "complex64",
               9: "int64", 10: "bool", 14: "bfloat16", 18: "complex128", 19: "half", 20: "resource", 21: "variant"}
_SLOT = re.compile(r"/(adam_[mv]|lamb_[mv]|Adam(_\d+)?|Momentum|Adagrad|RMSProp(_\d+)?|ExponentialMovingAverage)$")


class TFCheckpointError(InputError):
    """A TensorFlow checkpoint that cannot be read, or that does not fit its config."""


# ---------------------------------------------------------------- CRC32C (Castagnoli)
_T0 = np.arange(256, dtype=np.uint32)              # _T0[b]: zero register after byte b
for _ in range(8):
    _T0 = np.where(_T0 & 1, (_T0 >> 1) ^ np.uint32(0x82F63B78), _T0 >> 1).astype(np.uint32)
_U_LO, _U_HI = np.arange(65536, dtype=np.uint32), np.arange(65536, dtype=np.uint32) << 16
for _ in range(4):                                 # register x after 4 zero bytes: _U_LO[x & 0xFFFF] ^ _U_HI[x >> 16]
    _U_LO, _U_HI = (_T0[t & 0xFF] ^ (t >> 8) for t in (_U_LO, _U_HI))
_T0_LIST = _T0.tolist()
LANE = 1024                                        # bytes per lane of the vectorised CRC
_S = np.arange(256, dtype=np.uint32)[None, :] << (8 * np.arange(4, dtype=np.uint32))[:, None]   # [4, 256]
for _ in range(LANE):                              # _S[j][b]: register b << 8j after LANE zero bytes
    _S = _T0[_S & 0xFF] ^ (_S >> 8)
_S_LIST = _S.tolist()


def _lane_crcs(words: np.ndarray, first: int) -> np.ndarray:
    """[K, W] uint32 words -> [K] CRC registers of the rows ("lanes"; lane 0 starts at first, the others at 0)."""
    crc = np.zeros(words.shape[0], np.uint32)
    crc[0] = first
    x, lo, tmp = np.empty_like(crc), np.empty_like(crc), np.empty_like(crc)
    for j in range(words.shape[1]):                # crc = f(crc ^ word); f linear -> two 16-bit look-ups
        np.bitwise_xor(crc, words[:, j], out=x)
        np.bitwise_and(x, 0xFFFF, out=lo)
        np.right_shift(x, 16, out=x)
        np.take(_U_LO, lo, out=crc)
        np.take(_U_HI, x, out=tmp)
        crc ^= tmp
    return crc


def crc32c(data: bytes | np.ndarray) -> int:
    """CRC-32C of bytes or of an array's bytes: crc32c(b"123456789") == 0xE3069283.

    The register is linear in the data, so numpy computes K lanes of 1 KiB side by side and
    Horner's rule joins them: register(A + B) = shift_1KiB(register(A)) ^ register_from_0(B).
    """
    buf = data.reshape(-1).view(np.uint8) if isinstance(data, np.ndarray) else np.frombuffer(data, np.uint8)
    k, crc = (buf.size // LANE if buf.size >= 8 * LANE else 0), 0xFFFFFFFF
    if k:
        s0, s1, s2, s3 = _S_LIST
        words, first, crc = buf[:k * LANE].view("<u4").reshape(k, LANE // 4), crc, 0
        for g in range(0, k, 8192):                # 8192 lanes' cache lines stay in cache
            for v in _lane_crcs(words[g:g + 8192], first if g == 0 else 0).tolist():
                crc = s0[crc & 0xFF] ^ s1[crc >> 8 & 0xFF] ^ s2[crc >> 16 & 0xFF] ^ s3[crc >> 24] ^ v
    for b in buf[k * LANE:].tobytes():             # the tail, byte by byte
        crc = _T0_LIST[(crc ^ b) & 0xFF] ^ crc >> 8
    return crc ^ 0xFFFFFFFF


def _mask(crc: int) -> int:
    """TensorFlow (like LevelDB) stores CRCs 'masked', rotated and offset."""
    return ((crc >> 15 | crc << 17) + 0xA282EAD8) & 0xFFFFFFFF


# ---------------------------------------------------------------- protobuf wire format
def _corrupt(path: Any, what: str) -> TFCheckpointError:
    return TFCheckpointError(f"{path}: {what}: the index file is corrupt; download the checkpoint again")


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while pos < len(buf) and shift < 64:
        b, pos = buf[pos], pos + 1
        result, shift = result | (b & 0x7F) << shift, shift + 7
        if not b & 0x80:
            return result, pos
    raise _corrupt("checkpoint index", "truncated varint")


def _fields(buf: bytes) -> Iterator[tuple[int, Any]]:
    """(field number, value) of a protobuf message: ints for varint/fixed fields, bytes for the others."""
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        if tag & 7 == 0:
            value, pos = _varint(buf, pos)
        elif tag & 7 == 2:                         # length-delimited: bytes, strings, sub-messages
            n, pos = _varint(buf, pos)
            value, pos = bytes(buf[pos:pos + n]), pos + n
        else:                                      # 1 fixed64, 5 fixed32 (3, 4: old groups, never here)
            n = {1: 8, 5: 4}.get(tag & 7, len(buf) + 1)
            value, pos = int.from_bytes(buf[pos:pos + n], "little"), pos + n
        if pos > len(buf):
            raise _corrupt("checkpoint index", "truncated protobuf")
        yield tag >> 3, value


@dataclass
class Entry:
    """A BundleEntryProto: where a tensor's bytes are and what they hold."""
    dtype: int = 0                 # field 1: tensorflow.DataType (1 float, 9 int64, 14 bfloat16, 19 half, ...)
    shape: tuple[int, ...] = ()    # field 2: TensorShapeProto { repeated Dim dim = 2 { int64 size = 1 } }
    shard_id: int = 0              # field 3: which data file
    offset: int = 0                # field 4: first byte in that file
    size: int = 0                  # field 5: number of bytes
    crc32c: int = 0                # field 6 (fixed32): masked CRC32C of those bytes
    slices: int = 0                # field 7: slices of a partitioned variable (only counted)
    num_shards: int = 1            # from the header, for the data file's name

    def data_file(self, prefix: Path) -> Path:
        return Path(f"{prefix}.data-{self.shard_id:05d}-of-{self.num_shards:05d}")

    def unreadable(self) -> str | None:
        """Why bertkit cannot read this tensor, or None."""
        if self.slices:
            return f"a partitioned variable ({self.slices} slices), which bertkit does not reassemble"
        if self.dtype not in DTYPES:
            return (f"of dtype code {self.dtype} (DT_{DTYPE_NAMES.get(self.dtype, 'unknown').upper()}), which bertkit"
                    " cannot load (float, half, bfloat16, double, int32 and int64 only)")
        return None


def _parse_entry(buf: bytes) -> Entry:
    e, dims = Entry(), []
    for field, value in _fields(buf):
        if field == 2:
            dims = [dict(_fields(dim)).get(1, 0) for f, dim in _fields(value) if f == 2]
        elif field == 7:
            e.slices += 1
        elif field in (1, 3, 4, 5, 6):
            setattr(e, {1: "dtype", 3: "shard_id", 4: "offset", 5: "size", 6: "crc32c"}[field], value)
    e.shape = tuple(dims)
    return e


# ---------------------------------------------------------------- SSTable
def _read_block(raw: bytes, handle: bytes, path: Path) -> bytes:
    """The block a BlockHandle points to, its CRC checked; only uncompressed blocks."""
    offset, pos = _varint(handle, 0)
    size, _ = _varint(handle, pos)
    if offset + size + 5 > len(raw):
        raise _corrupt(path, f"the table block at byte {offset} runs past the end of the file")
    kind, stored = raw[offset + size], int.from_bytes(raw[offset + size + 1:offset + size + 5], "little")
    if _mask(crc32c(raw[offset:offset + size + 1])) != stored:
        raise _corrupt(path, f"the table block at byte {offset} fails its CRC32C check")
    if kind != 0:
        what = "snappy-compressed" if kind == 1 else f"of unknown compression type {kind}"
        raise TFCheckpointError(f"{path}: the table block at byte {offset} is {what}; bertkit reads the uncompressed "
                                "tables TensorFlow writes: re-save the checkpoint with TensorFlow's Saver")
    return raw[offset:offset + size]


def _block_entries(block: bytes, path: Path) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) pairs of a block, keys rebuilt from their shared prefixes."""
    end, pos, key = len(block) - 4 - 4 * int.from_bytes(block[-4:], "little"), 0, b""
    if end < 0 or len(block) < 4:
        raise _corrupt(path, "a table block is shorter than its restart array")
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        vlen, pos = _varint(block, pos)
        if shared > len(key) or pos + unshared + vlen > end:
            raise _corrupt(path, "a table entry runs past its block")
        key, pos = key[:shared] + block[pos:pos + unshared], pos + unshared
        yield key, block[pos:pos + vlen]
        pos += vlen


def _read_table(path: Path) -> Iterator[tuple[bytes, bytes]]:
    """All (key, value) pairs of an SSTable file, in key order: footer -> index block -> data blocks."""
    raw = path.read_bytes()
    if len(raw) < FOOTER_SIZE:
        raise TFCheckpointError(f"{path} has only {len(raw)} bytes, too few for a checkpoint index: is it complete?")
    footer = raw[-FOOTER_SIZE:]
    if int.from_bytes(footer[-8:], "little") != MAGIC:
        raise TFCheckpointError(f"{path} is not a TensorFlow checkpoint index (bad magic number): pass a .index file")
    _, pos = _varint(footer, 0)                    # skip the metaindex handle (no filters in TF's tables)
    _, pos = _varint(footer, pos)
    for _, handle in _block_entries(_read_block(raw, footer[pos:], path), path):
        yield from _block_entries(_read_block(raw, handle, path), path)


# ---------------------------------------------------------------- the bundle
def _resolve_prefix(path: str | os.PathLike) -> Path:
    """The checkpoint prefix (.../bert_model.ckpt) of a directory, a prefix, or an .index/.data-* file."""
    p = Path(path)
    if p.is_dir():
        found = [p / "bert_model.ckpt"] if (p / "bert_model.ckpt.index").is_file() else \
            sorted(q.with_suffix("") for q in p.glob("*.index"))
        if not found:
            raise TFCheckpointError(f"no TensorFlow checkpoint in {p}: expected bert_model.ckpt.index and "
                                    "bert_model.ckpt.data-00000-of-00001 (the layout of Google's releases)")
        if len(found) > 1:
            raise TFCheckpointError(f"{p} holds several checkpoints ({', '.join(q.name for q in found)}): pass one")
        return found[0]
    p = Path(re.sub(r"\.(index|data-\d{5}-of-\d{5})$", "", str(p)))
    if not Path(f"{p}.index").is_file():
        raise TFCheckpointError(f"index file {p}.index is missing: a TensorFlow checkpoint needs its .index file "
                                "next to its .data-* files; copy the whole checkpoint")
    return p


def read_tf_index(prefix_or_dir: str | os.PathLike) -> tuple[Path, dict[str, Entry]]:
    """(prefix, {tensor name: Entry}) of a checkpoint's index file, its header checked."""
    prefix = _resolve_prefix(prefix_or_dir)
    path, header, entries = Path(f"{prefix}.index"), None, {}
    for key, value in _read_table(path):
        if key == b"":                             # BundleHeaderProto: 1 num_shards, 2 endianness, 3 version
            header = dict(_fields(value))
        else:
            entries[key.decode("utf-8", "replace")] = _parse_entry(value)
    if header is None:
        raise _corrupt(path, "no bundle header (key '')")
    if header.get(2, 0) != 0:
        raise TFCheckpointError(f"{path} was written on a big-endian machine; re-save it on a little-endian one")
    version = dict(_fields(header.get(3, b"")))    # VersionDef: 1 producer, 2 min_consumer
    if version.get(2, 0) > 1:
        raise TFCheckpointError(f"{path} needs a reader of bundle version {version[2]}; bertkit reads version 1")
    for e in entries.values():
        e.num_shards = header.get(1, 1)
    return prefix, entries


def _map_shards(prefix: Path, entries: Iterable[Entry]) -> dict[int, np.ndarray]:
    """{shard: uint8 array over the mapped data file}: np.memmap's mechanism, with the mmap at hand for madvise."""
    shards: dict[int, np.ndarray] = {}
    for e in entries:
        path = e.data_file(prefix)
        if e.shard_id in shards:
            continue
        if not path.is_file():
            raise TFCheckpointError(f"data file {path} is missing (the checkpoint has {e.num_shards} data file(s)): "
                                    f"copy every {prefix.name}.data-* file next to {prefix.name}.index")
        with open(path, "rb") as f:
            empty = os.fstat(f.fileno()).st_size == 0
            shards[e.shard_id] = np.zeros(0, np.uint8) if empty else \
                np.frombuffer(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY), np.uint8)
    return shards


def _view(name: str, e: Entry, data: np.ndarray, prefix: Path, verify: bool) -> np.ndarray:
    """A tensor as a view of its mapped data file; size, bounds (and with verify, CRC) checked."""
    dtype = np.dtype(DTYPES[e.dtype])
    need = int(np.prod(e.shape, dtype=np.int64)) * dtype.itemsize
    if e.size != need:
        raise TFCheckpointError(f"{name}: the index says {e.size} bytes, but {DTYPE_NAMES[e.dtype]} {list(e.shape)} "
                                f"takes {need}: the index does not match its data (corrupt index)")
    if e.offset + e.size > data.size:
        raise TFCheckpointError(f"{name} needs bytes [{e.offset}, {e.offset + e.size}) of {e.data_file(prefix).name}"
                                f", which has {data.size}: the data file is truncated; download it again")
    raw = data[e.offset:e.offset + e.size]
    if verify and _mask(crc32c(raw)) != e.crc32c:
        raise TFCheckpointError(f"{name}: its bytes in {e.data_file(prefix).name} fail their CRC32C check: the data "
                                "file is corrupt; download it again")
    if verify:
        release_pages(raw)                     # the CRC touched every page: hand them back
    arr = raw.view(dtype).reshape(e.shape)
    return (arr.astype(np.uint32) << 16).view(np.float32) if e.dtype == 14 else arr   # bf16: exact widening


class TFTensors(dict):
    """{name: array} read from a checkpoint; `.skipped` = {name: why} for the tensors left out."""
    skipped: dict[str, str]


def read_tf_checkpoint(prefix_or_dir: str | os.PathLike, names: Iterable[str] | None = None, verify: bool = False,
                       slots: bool = True) -> TFTensors:
    """{tensor name: numpy array} of a TensorFlow checkpoint: copy-on-write views of the mapped data files.

    names=None reads every tensor it can and lists the others (strings, partitioned
    variables, other dtypes) in `.skipped` with the reason; named tensors must all be
    readable.  slots=False leaves optimizer slots (.../adam_m, ...) out as well.
    verify=True checks each tensor's CRC32C (~1 s more for BERT-Base, see the module doc).
    """
    prefix, entries = read_tf_index(prefix_or_dir)
    out = TFTensors()
    out.skipped = {}
    for name in entries if names is None else names:
        if name not in entries:
            raise TFCheckpointError(f"{name} is not in the checkpoint {prefix}")
        why = entries[name].unreadable() or (None if slots or not _SLOT.search(name) else "an optimizer slot")
        if why and names is not None:
            raise TFCheckpointError(f"{name} in {prefix} is {why}")
        (out.skipped if why else out)[name] = why or entries[name]     # the Entry for now, the array below
    shards = _map_shards(prefix, out.values())
    for name, e in out.items():
        out[name] = _view(name, e, shards[e.shard_id], prefix, verify)
    return out


def release_pages(arr: np.ndarray) -> None:
    """Hand arr's pages back to the OS if arr views a mapped file (they are re-read if used again)."""
    base = arr
    while base is not None and not isinstance(base, mmap.mmap):
        base = base.obj if isinstance(base, memoryview) else getattr(base, "base", None)
    if base is None or base.closed or arr.nbytes == 0 or not hasattr(mmap, "MADV_DONTNEED"):   # e.g. Windows
        return
    start = arr.ctypes.data - np.frombuffer(base, np.uint8).ctypes.data
    base.madvise(mmap.MADV_DONTNEED, start - start % mmap.PAGESIZE, start % mmap.PAGESIZE + arr.nbytes)


# ---------------------------------------------------------------- Google's BERT names -> standard names
def _size(config: Any, key: str) -> int:
    value = config.get(key) if isinstance(config, dict) else getattr(config, key, None)
    if not isinstance(value, int) or value <= 0:
        raise TFCheckpointError(f"the config's {key!r} is {value!r}, not a positive integer: check bert_config.json")
    return value


def expected_tf_shapes(config: Any) -> dict[str, tuple[int, ...]]:
    """{Google's variable name: TensorFlow shape} for a config (a dict or an object with the same fields).

    Encoder and pooler first, then the pre-training heads (cls/...).  TensorFlow's shapes:
    dense kernels [in, out], embedding tables [rows, H].
    """
    V, H, L, F, P, T = (_size(config, k) for k in ("vocab_size", "hidden_size", "num_hidden_layers",
                                                   "intermediate_size", "max_position_embeddings", "type_vocab_size"))
    out = {"bert/embeddings/word_embeddings": (V, H), "bert/embeddings/token_type_embeddings": (T, H),
           "bert/embeddings/position_embeddings": (P, H)}
    dense = [(f"bert/encoder/layer_{i}/{scope}", n_in, n_out) for i in range(L) for scope, n_in, n_out in (
        ("attention/self/query", H, H), ("attention/self/key", H, H), ("attention/self/value", H, H),
        ("attention/output/dense", H, H), ("intermediate/dense", H, F), ("output/dense", F, H))]
    dense += [("bert/pooler/dense", H, H), ("cls/predictions/transform/dense", H, H)]   # pooler: tanh; MLM: gelu
    norms = ["bert/embeddings"] + [f"bert/encoder/layer_{i}/{s}" for i in range(L)
                                   for s in ("attention/output", "output")]
    for scope, n_in, n_out in dense:
        out.update({f"{scope}/kernel": (n_in, n_out), f"{scope}/bias": (n_out,)})
    for scope in norms + ["cls/predictions/transform"]:
        out.update({f"{scope}/LayerNorm/gamma": (H,), f"{scope}/LayerNorm/beta": (H,)})
    out["cls/predictions/output_bias"] = (V,)                # MLM logits = h @ word_embeddings^T + output_bias
    out["cls/seq_relationship/output_weights"] = (2, H)      # NSP logits = pooled @ output_weights^T + output_bias
    out["cls/seq_relationship/output_bias"] = (2,)
    return out


def hf_name(tf_name: str) -> str:
    """Standard name of a Google variable, e.g. bert/encoder/layer_0/output/dense/kernel ->
    bert.encoder.layer.0.output.dense.weight, cls/predictions/output_bias -> cls.predictions.bias."""
    name = re.sub(r"/(output_bias|beta)$", "/bias", re.sub(r"/layer_(\d+)/", r"/layer/\1/", tf_name))
    name = re.sub(r"/(output_weights|kernel|gamma)$", "/weight", name)
    return (name + "/weight" if name.endswith("_embeddings") else name).replace("/", ".")


def _required(tf_tensors: dict[str, np.ndarray], expected: dict[str, tuple[int, ...]], L: int) -> list[str]:
    """The expected names this checkpoint must have (a head only if present); specific errors otherwise."""
    skipped = getattr(tf_tensors, "skipped", {})
    every = [*tf_tensors, *skipped]
    layers = {int(m.group(1)) for n in every if (m := re.match(r"bert/encoder/layer_(\d+)/", n))}
    if layers and layers != set(range(L)):
        first = min(set(range(L)) - layers, default=None)
        what = f"bert/encoder/layer_{first}/... missing" if first is not None else "extra layers"
        raise TFCheckpointError(f"{what}: the config says {L} layers but the checkpoint has {len(layers)}: "
                                "use the bert_config.json that came with this checkpoint")
    unknown = sorted(n for n in every if n.startswith("bert/") and n not in expected and not _SLOT.search(n))
    if unknown:
        raise TFCheckpointError(f"unknown BERT variable {unknown[0]} ({len(unknown)} in all): it is not part of "
                                "Google's BERT, so bertkit does not know where it goes; is this a modified model?")
    heads = tuple(h for h in ("cls/predictions/", "cls/seq_relationship/") if any(n.startswith(h) for n in every))
    required = [n for n in expected if n.startswith(("bert/",) + heads)]
    missing = [n for n in required if n not in tf_tensors]
    if missing and missing[0] in skipped:
        raise TFCheckpointError(f"{missing[0]} is {skipped[missing[0]]}")
    if missing and not any(n.startswith("bert/") for n in every):
        raise TFCheckpointError("the checkpoint has no bert/... variables, so it is not a Google BERT checkpoint "
                                f"(a TF2/Keras one?); its first names: {', '.join(sorted(every)[:3])}")
    if missing:
        raise TFCheckpointError(f"{missing[0]} missing from the checkpoint ({len(missing)} missing in all): "
                                "the checkpoint is incomplete or belongs to another config")
    return required


def _to_torch(arr: np.ndarray, transpose: bool) -> torch.Tensor:
    """A torch tensor owning a copy of arr (transposed for a dense kernel); arr's file pages are handed back."""
    src = torch.from_numpy(arr if arr.flags.writeable else np.array(arr))
    out = src.t().contiguous() if transpose else src.clone()
    release_pages(arr)
    return out


def tf_to_bert_state(tf_tensors: dict[str, np.ndarray], config: Any) -> dict[str, torch.Tensor]:
    """Standard (Hugging Face) BERT state dict from Google's variables.

    Kernels [in, out] become Linear weights [out, in]; cls/seq_relationship/output_weights is
    already [2, H].  Optimizer slots, global_step and task heads (not bert/, cls/...) are skipped.
    """
    expected = expected_tf_shapes(config)
    state = {}
    for name in _required(tf_tensors, expected, _size(config, "num_hidden_layers")):
        arr = tf_tensors[name]
        if tuple(arr.shape) != expected[name]:
            raise TFCheckpointError(f"{name} has shape {list(arr.shape)} but the config implies "
                                    f"{list(expected[name])}: use the bert_config.json that came with this checkpoint")
        state[hf_name(name)] = _to_torch(arr, transpose=name.endswith("/kernel"))
    return state


def is_tf_checkpoint_dir(path: str | os.PathLike) -> bool:
    """True if path is a directory holding a TensorFlow checkpoint index (bert_model.ckpt.index, ...)."""
    return Path(path).is_dir() and any(Path(path).glob("*.index"))


def read_bert_config_json(path: str | os.PathLike) -> dict[str, Any]:
    """Google's bert_config.json (the file, or the directory holding it) as a dict, its sizes checked.

    The keys are those of a Hugging Face config.json (vocab_size, hidden_size, ...) without
    model_type; Google's LayerNorm epsilon is always 1e-12, and its "gelu" is the exact erf GELU.
    """
    p = Path(path) / "bert_config.json" if Path(path).is_dir() else Path(path)
    try:
        config = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TFCheckpointError(f"{p} is missing; without it the model's size is unknown") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise TFCheckpointError(f"{p} is not valid JSON ({e}); download it again") from None
    if not isinstance(config, dict):
        raise TFCheckpointError(f"{p} must hold a JSON object of hyper-parameters, not a {type(config).__name__}")
    if expected_tf_shapes(config) and config["hidden_size"] % _size(config, "num_attention_heads"):  # sizes checked
        raise TFCheckpointError(f"{p}: hidden_size is not a multiple of num_attention_heads")
    return config


def load_tf_bert(path: str | os.PathLike, verify: bool = False) -> tuple[dict, dict[str, torch.Tensor]]:
    """(bert_config.json as a dict, standard state dict) of a Google release directory."""
    config = read_bert_config_json(path)
    return config, tf_to_bert_state(read_tf_checkpoint(path, verify=verify, slots=False), config)
