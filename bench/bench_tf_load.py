"""Loading a Google TensorFlow BERT checkpoint vs the same weights from safetensors (BERT-Base size).

Writes a synthetic BERT-Base (L=12, H=768, V=30522, with both pre-training heads: ~440 MB)
twice -- as Google's TensorBundle (bert_model.ckpt.index + .data-00000-of-00001, with the
small numpy TensorBundle writer below) and as model.safetensors -- then times, each in a
fresh subprocess so that peak memory is the loader's own:

* tf            bertkit.modeling.tf_checkpoint.load_tf_bert: index, memory map, copy into
                torch tensors (dense kernels transposed), pages handed back as it goes
* tf_verify     the same with verify=True: CRC32C of every tensor's bytes (numpy)
* st_owned      safetensors.torch.load_file, then a copy of every tensor: the same end
                state as `tf` (torch tensors owning their memory, e.g. model parameters)
* st_lazy       load_file alone, for reference: safetensors returns tensors that view the
                memory-mapped file, so nothing is read until first use
* model_tf      BertForPreTraining.from_pretrained(Google's folder): what a user runs
* model_st      BertForPreTraining.from_pretrained(a safetensors folder): built on the meta
                device, each parameter becomes the loaded tensor (one copy of the weights)
* model_st_init the way bertkit loaded before: a randomly initialised model, then the file's
                tensors copied into it (two copies at the peak)

Peak memory is VmHWM (/proc/self/status) minus the RSS just before loading: getrusage's
ru_maxrss would carry the parent's peak across exec.  The page cache is warm (the files
were just written), so this measures the loader, not the disk.

    python bench/bench_tf_load.py [--repeats 3] [--threads 1] [--dir runs/bench_tf_load]

Prints a JSON line and a markdown table.  The writer here is also used by
tests/test_tf_checkpoint.py to make small checkpoints that TensorFlow never wrote.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fail_if_different, markdown_table, peak_rss_mb  # noqa: E402

from bertkit.modeling.tf_checkpoint import DTYPES, MAGIC, Entry, _mask, crc32c  # noqa: E402

BERT_BASE = {"vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
             "intermediate_size": 3072, "max_position_embeddings": 512, "type_vocab_size": 2,
             "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
             "initializer_range": 0.02}
METHODS = ("tf", "tf_verify", "st_owned", "st_lazy", "model_tf", "model_st", "model_st_init")


# ---------------------------------------------------------------- a small TensorBundle writer
def _varint(v: int) -> bytes:
    out = bytearray()
    while v > 0x7F:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    return bytes(out + bytes([v]))


def _field(number: int, value: int | bytes, fixed32: bool = False) -> bytes:
    """One protobuf field: bytes -> length-delimited, fixed32, or varint (proto3 leaves out 0)."""
    if isinstance(value, bytes):
        return _varint(number << 3 | 2) + _varint(len(value)) + value
    if fixed32:
        return _varint(number << 3 | 5) + value.to_bytes(4, "little")
    return _varint(number << 3) + _varint(value) if value else b""


def encode_entry(e: Entry) -> bytes:
    """BundleEntryProto bytes: dtype, shape {dim {size}}, shard_id, offset, size, crc32c."""
    shape = b"".join(_field(2, _field(1, d)) for d in e.shape)
    return (_field(1, e.dtype) + _field(2, shape) + _field(3, e.shard_id) + _field(4, e.offset)
            + _field(5, e.size) + _field(6, e.crc32c, fixed32=True))


def header_bytes(num_shards: int = 1) -> bytes:
    """BundleHeaderProto: num_shards, endianness LITTLE (0, left out), version {producer 1}."""
    return _field(1, num_shards) + _field(3, _field(1, 1))


def _block(items: list[tuple[bytes, bytes]], restart_interval: int) -> bytes:
    """Prefix-compressed entries, then the uint32 restart offsets and their count."""
    out, restarts, last = bytearray(), [], b""
    for i, (key, value) in enumerate(items):
        shared = 0
        if i % restart_interval:
            while shared < min(len(key), len(last)) and key[shared] == last[shared]:
                shared += 1
        else:
            restarts.append(len(out))
        out += _varint(shared) + _varint(len(key) - shared) + _varint(len(value)) + key[shared:] + value
        last = key
    restarts = restarts or [0]
    return bytes(out) + b"".join(r.to_bytes(4, "little") for r in restarts) + len(restarts).to_bytes(4, "little")


def encode_table(items: list[tuple[bytes, bytes]], block_size: int = 262144, restart_interval: int = 16,
                 compression: int = 0) -> bytes:
    """SSTable of sorted (key, value) pairs: data blocks, empty metaindex block, index block, footer."""
    out, index, pending = bytearray(), [], []

    def flush(entries: list[tuple[bytes, bytes]]) -> bytes:
        contents = _block(entries, restart_interval) + bytes([compression])
        handle = _varint(len(out)) + _varint(len(contents) - 1)
        out.extend(contents + _mask(crc32c(contents)).to_bytes(4, "little"))
        return handle
    for key, value in items:
        pending.append((key, value))
        if sum(len(k) + len(v) + 3 for k, v in pending) >= block_size:
            index.append((key, flush(pending)))
            pending = []
    if pending:
        index.append((pending[-1][0], flush(pending)))
    handles = flush([]) + flush(index)
    return bytes(out) + handles.ljust(40, b"\0") + MAGIC.to_bytes(8, "little")


def write_tf_checkpoint(prefix: str | os.PathLike, tensors: dict[str, np.ndarray], dtype_codes: dict | None = None,
                        **table_options: int) -> None:
    """Write tensors as a one-shard TensorBundle <prefix>.index + <prefix>.data-00000-of-00001.

    dtypes: those bertkit reads, plus uint8, bool and complex64 (codes 4, 10, 8) to test
    refusals; dtype_codes={name: code} overrides one (14 = bfloat16 for uint16 bit patterns).
    """
    codes = {np.dtype(t): c for c, t in DTYPES.items() if c != 14}
    codes.update({np.dtype(np.uint8): 4, np.dtype(np.bool_): 10, np.dtype(np.complex64): 8})
    items, offset = [], 0
    with open(f"{prefix}.data-00000-of-00001", "wb") as f:
        for name in sorted(tensors):
            raw = np.ascontiguousarray(tensors[name]).reshape(-1).view(np.uint8)
            f.write(memoryview(raw))
            code = (dtype_codes or {}).get(name) or codes[tensors[name].dtype]
            e = Entry(code, tensors[name].shape, 0, offset, raw.size, _mask(crc32c(raw)))
            items.append((name.encode(), encode_entry(e)))
            offset += raw.size
    Path(f"{prefix}.index").write_bytes(encode_table([(b"", header_bytes())] + items, **table_options))


# ---------------------------------------------------------------- the benchmark
def make_checkpoints(folder: Path, config: dict, seed: int = 0) -> None:
    """bert_model.ckpt (Google's names and shapes) and model.safetensors of the same weights."""
    import torch
    from safetensors.torch import save_file

    from bertkit.modeling.tf_checkpoint import expected_tf_shapes, load_tf_bert
    rng = np.random.default_rng(seed)
    tensors = {name: rng.standard_normal(shape, np.float32) * 0.02
               for name, shape in expected_tf_shapes(config).items()}
    tensors["global_step"] = np.array(1000000, np.int64)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bert_config.json").write_text(json.dumps(config, indent=2))
    write_tf_checkpoint(folder / "bert_model.ckpt", tensors)
    del tensors
    _, state = load_tf_bert(folder)
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))
    assert all(t.dtype == torch.float32 for t in state.values())
    for sub, names in (("tf_only", ("bert_config.json", "bert_model.ckpt.index",
                                    "bert_model.ckpt.data-00000-of-00001")), ("st_only", ("model.safetensors",))):
        (folder / sub).mkdir(exist_ok=True)
        for name in names:
            (folder / sub / name).symlink_to(folder / name)
    from bertkit.modeling.config import BertConfig
    BertConfig.from_dict(config).save_pretrained(folder / "st_only")


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(method: str, folder: Path, threads: int) -> dict:
    """Load once with `method` in this (fresh) process: seconds and peak memory above the start."""
    import torch
    from safetensors.torch import load_file

    from bertkit.modeling.tf_checkpoint import load_tf_bert
    torch.set_num_threads(threads)
    before = current_rss_mb()
    t0 = time.perf_counter()
    if method.startswith("model"):
        state = load_model(method, folder)
    elif method.startswith("tf"):
        _, state = load_tf_bert(folder, verify=method == "tf_verify")
    else:
        state = load_file(str(folder / "model.safetensors"))
        if method == "st_owned":
            state = {k: v.clone() for k, v in state.items()}
    seconds = time.perf_counter() - t0
    mb = sum(t.numel() * t.element_size() for t in state.values()) / 2**20
    digest = hashlib.sha256()
    for name in sorted(state):                     # after the clock: which weights each way loaded
        digest.update(name.encode() + state[name].contiguous().numpy().tobytes())
    return {"method": method, "seconds": seconds, "peak_mb": peak_rss_mb() - before, "weights_mb": mb,
            "digest": digest.hexdigest()}


def load_model(method: str, folder: Path) -> dict:
    """A whole BertForPreTraining, three ways; returns its state dict (for the weight count)."""
    import torch

    from bertkit.modeling import BertConfig, BertForPreTraining
    from bertkit.modeling.checkpoint import load_state_dict, load_weights_into, own_keys
    if method == "model_tf":
        return own_keys(BertForPreTraining.from_pretrained(folder / "tf_only"))
    if method == "model_st":
        return own_keys(BertForPreTraining.from_pretrained(folder / "st_only"))
    model = BertForPreTraining(BertConfig.from_pretrained(folder / "st_only"))     # random init: copy 1
    load_weights_into(model, load_state_dict(folder / "st_only"))                    # the file: copy 2
    assert not any(p.is_meta for p in model.parameters()) and torch.is_grad_enabled()
    return own_keys(model)


def run(folder: Path, repeats: int, threads: int) -> dict[str, dict]:
    """Each method `repeats` times, interleaved (A B C D A B C D ...), each in a fresh subprocess."""
    results: dict[str, list[dict]] = {m: [] for m in METHODS}
    for _ in range(repeats):
        for method in METHODS:
            out = subprocess.run([sys.executable, __file__, "--child", method, "--dir", str(folder),
                                  "--threads", str(threads)], check=True, capture_output=True, text=True)
            results[method].append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {m: {"seconds": statistics.median(r["seconds"] for r in rs), "min_seconds": min(r["seconds"] for r in rs),
                "peak_mb": statistics.median(r["peak_mb"] for r in rs), "weights_mb": rs[0]["weights_mb"],
                "digests": sorted({r["digest"] for r in rs})}
            for m, rs in results.items()}


def same_weights(r: dict[str, dict]) -> list[tuple[str, float, float]]:
    """The TF reader gives the safetensors file's tensors (raw and through from_pretrained), every time."""
    pairs = [("tf", "st_owned"), ("tf_verify", "st_owned"), ("st_lazy", "st_owned"), ("model_tf", "model_st"),
             ("model_st_init", "model_st")]
    return [(f"weights loaded by {a} vs {b} (0: the same bytes)", float(r[a]["digests"] != r[b]["digests"]
                                                                       or len(r[a]["digests"]) != 1), 0.0)
            for a, b in pairs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=None, help="where to write the checkpoints (default: a temp dir)")
    parser.add_argument("--child", choices=("make",) + METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "make":
        make_checkpoints(args.dir, BERT_BASE)
        return 0
    if args.child:
        print(json.dumps(child(args.child, args.dir, args.threads)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp) / "uncased_L-12_H-768_A-12"
        if not (folder / "model.safetensors").exists():  # in a subprocess too: this process stays small
            subprocess.run([sys.executable, __file__, "--child", "make", "--dir", str(folder)], check=True)
        r = run(folder, args.repeats, args.threads)
    base = r["st_owned"]["seconds"]
    summary = {"bench": "tf_load", "threads": args.threads, "repeats": args.repeats, **{m: r[m] for m in METHODS},
               "tf_over_st_owned": r["tf"]["seconds"] / base,
               "tf_verify_over_st_owned": r["tf_verify"]["seconds"] / base}
    summary.update({f"{m}_over_model_st": r[m]["seconds"] / r["model_st"]["seconds"] for m in ("model_tf",)})
    print(json.dumps(summary))
    print(markdown_table(
        ["weights MB", "tf s", "tf verify s", "st owned s", "st lazy s", "tf / st owned", "tf verify / st owned",
         "tf peak MB", "tf verify peak MB", "st owned peak MB"],
        [[r["tf"]["weights_mb"], r["tf"]["seconds"], r["tf_verify"]["seconds"], base, r["st_lazy"]["seconds"],
          f"{summary['tf_over_st_owned']:.2f}x", f"{summary['tf_verify_over_st_owned']:.2f}x",
          r["tf"]["peak_mb"], r["tf_verify"]["peak_mb"], r["st_owned"]["peak_mb"]]]))
    print(markdown_table(
        ["from_pretrained", "seconds", "peak MB above start", "weights MB"],
        [[name, r[m]["seconds"], r[m]["peak_mb"], r[m]["weights_mb"]] for name, m in (
            ("Google TF folder (BertForPreTraining)", "model_tf"), ("safetensors folder", "model_st"),
            ("safetensors, random init + copy (before)", "model_st_init"))]))
    fail_if_different(same_weights(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
