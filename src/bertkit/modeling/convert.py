"""`bertkit convert SRC OUT`: any BERT bertkit can open → the standard checkpoint layout.

    convert_checkpoint("uncased_L-12_H-768_A-12", "bert-base-uncased")   # Google's TF release
    convert_checkpoint("klue/bert-base", "klue-bf16", dtype="bf16")       # a Hub model, half the size

The output folder holds config.json, model.safetensors, vocab.txt, tokenizer_config.json
(and special_tokens_map.json, tokenizer.json): what bertkit, Hugging Face transformers and
most BERT tools load.  The conversion is checked by reloading the written folder and
running both models on the same sentences; the largest difference is reported (0 for a
float32 conversion; bf16/fp16 round every weight to 8/11 significant bits).
"""
from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from typing import Any

import torch

from bertkit.common.errors import InputError
from bertkit.modeling.heads import HEAD_CLASSES
from bertkit.modeling.pretrained import open_checkpoint

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
CHECK_TEXTS = ["The quick brown fox jumps over the lazy dog.", "BERT reads both directions at once."]


@torch.no_grad()
def max_output_difference(a: torch.nn.Module, b: torch.nn.Module, tokenizer) -> float:
    """Largest |a - b| over the outputs of both models on CHECK_TEXTS (every tensor output)."""
    enc = tokenizer(CHECK_TEXTS, padding=True, return_tensors="pt")
    inputs = {k: enc[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
    out_a, out_b = a.eval()(**inputs), b.eval()(**inputs)
    diffs = [(x.float() - y.float()).abs().max().item() for x, y in zip(vars(out_a).values(), vars(out_b).values())
             if torch.is_tensor(x) and torch.is_tensor(y)]
    return max(diffs, default=0.0)


def convert_checkpoint(src: str | os.PathLike, out: str | os.PathLike, dtype: str = "fp32",
                       do_lower_case: bool | None = None, **hub_options: Any) -> dict:
    """Write `src` (folder, "minilm", Hub name, Google TF release) to `out` in the standard layout; verify it."""
    if dtype not in DTYPES:
        raise InputError(f"dtype={dtype!r}: choose one of {', '.join(DTYPES)}")
    t0 = time.perf_counter()
    ckpt = open_checkpoint(src, **hub_options)
    tokenizer = ckpt.tokenizer(**({} if do_lower_case is None else {"do_lower_case": do_lower_case}))
    model = ckpt.model()
    stored = model if dtype == "fp32" else copy.deepcopy(model).to(DTYPES[dtype])   # keep the original to compare
    if dtype != "fp32":
        stored.config = stored.config.replace(extra={**stored.config.extra, "torch_dtype": str(DTYPES[dtype])[6:]})
    stored.save_pretrained(out, tokenizer=tokenizer)
    again = HEAD_CLASSES[ckpt.architecture].from_pretrained(out)    # the check: what others will load
    diff = max_output_difference(model, again, tokenizer)
    if dtype == "fp32" and diff != 0.0:
        raise InputError(f"conversion check failed: {out} gives outputs that differ from {src} by {diff:.3g}")
    size = sum(p.stat().st_size for p in Path(out).iterdir() if p.suffix == ".safetensors")
    return {"source": str(src), "format": ckpt.format, "architecture": ckpt.architecture, "out": str(out),
            "dtype": dtype, "megabytes": round(size / 2**20, 1), "max_abs_diff": diff,
            "do_lower_case": tokenizer.do_lower_case, "seconds": round(time.perf_counter() - t0, 2)}
