"""Untrusted checkpoints: break a real checkpoint in each way we know, print what bertkit says.

Each row: the fault, the exception type, and the message a user sees. A pickle
that would run code must be refused *without running it* (the marker file must
not appear); absurd configs must be refused before any memory is allocated.

    python bench/checkpoint_faults.py
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table  # noqa: E402

from bertkit import BertConfig, BertModel  # noqa: E402

MARKER = Path(tempfile.gettempdir()) / "bertkit-pickle-ran"


class RunsCode:
    """Unpickling this calls os.system: what a malicious .bin would do."""

    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def good_checkpoint(root: Path) -> Path:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=37, max_position_embeddings=64)
    path = root / "good"
    BertModel(config).save_pretrained(path)
    return path


def faults(good: Path):
    """(name, function that breaks a copy of the checkpoint in `d`)."""
    weights = good / "model.safetensors"

    def rewrite(d, change):
        tensors = load_file(d / "model.safetensors")
        change(tensors)
        save_file(tensors, d / "model.safetensors")

    def config_change(**fields):
        def apply(d):
            cfg = json.loads((d / "config.json").read_text())
            cfg.update(fields)
            (d / "config.json").write_text(json.dumps(cfg))
        return apply

    def pickle_bin(d):
        (d / "model.safetensors").unlink()
        with open(d / "pytorch_model.bin", "wb") as fh:
            pickle.dump({"x": RunsCode()}, fh)

    first_key = "embeddings.word_embeddings.weight"
    return [
        ("no weights file", lambda d: (d / "model.safetensors").unlink()),
        ("no config.json", lambda d: (d / "config.json").unlink()),
        ("malformed config.json", lambda d: (d / "config.json").write_text("{not json")),
        ("truncated safetensors", lambda d: (d / "model.safetensors").write_bytes(weights.read_bytes()[:5000])),
        ("random bytes as safetensors", lambda d: (d / "model.safetensors").write_bytes(os.urandom(4096))),
        ("pickle that runs code (.bin)", pickle_bin),
        ("wrong dtype (int64 weight)", lambda d: rewrite(d, lambda t: t.__setitem__(first_key, t[first_key].long()))),
        ("wrong shape", lambda d: rewrite(d, lambda t: t.__setitem__(first_key, t[first_key][:50]))),
        ("missing key", lambda d: rewrite(d, lambda t: t.pop("encoder.layer.1.output.dense.weight"))),
        ("extra (unexpected) key", lambda d: rewrite(d, lambda t: t.__setitem__("encoder.layer.9.foo", torch.zeros(2)))),
        ("config shape ≠ weights (hidden_size)", config_change(hidden_size=64, num_attention_heads=2)),
        ("absurd config (hidden 10^6, 10^4 layers)", config_change(hidden_size=1_000_000, num_hidden_layers=10_000,
                                                                   num_attention_heads=1000)),
        ("heads do not divide hidden", config_change(num_attention_heads=5)),
    ]


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        good = good_checkpoint(Path(tmp))
        for name, breaker in faults(good):
            case = Path(tmp) / "case"
            shutil.rmtree(case, ignore_errors=True)
            shutil.copytree(good, case)
            breaker(case)
            MARKER.unlink(missing_ok=True)
            try:
                BertModel.from_pretrained(case)
                outcome, message = "loaded (!)", ""
            except Exception as err:  # noqa: BLE001 — we report whatever the user would see
                outcome, message = type(err).__name__, str(err).replace("\n", " ").replace("|", "/")
            ran = " — CODE RAN" if MARKER.exists() else ""
            rows.append([name, outcome + ran, message[:220] + ("…" if len(message) > 220 else "")])
    print(markdown_table(["fault", "error", "message (first 220 chars)"], rows))


if __name__ == "__main__":
    main()
