"""Pretraining data: raw text → sentences → token-id shards → NSP pairs → masked batches.

    manifest = build_shards(["corpus.txt"], tokenizer, "shards/", num_workers=4)
    dataset = PretrainingDataset("shards/", max_seq_length=128, nsp=True, seed=0)
    collate = MlmCollator(tokenizer, mlm_probability=0.15, whole_word_mask=True, seed=0)
    loader = torch.utils.data.DataLoader(dataset, batch_size=32, shuffle=True, collate_fn=collate)
    for epoch in range(epochs):
        dataset.set_epoch(epoch)            # new sentence pairs every epoch
        for batch in loader: ...            # input_ids, token_type_ids, attention_mask, labels, next_sentence_label

Modules (reading raw text into documents and sentences is `bertkit.text.corpus`, a floor below): `shards` (token ids in
memmaps, several processes), `nsp` (the original create_instances_from_document,
as a deterministic map-style Dataset), `masking` (dynamic MLM / whole-word masking).
Names are imported lazily, so building shards (`from bertkit.data import build_shards`) does not import torch.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "build_shards": "shards", "ShardedCorpus": "shards",
    "PretrainingDataset": "nsp", "truncate_seq_pair": "nsp",
    "MlmCollator": "masking", "PackedDataset": "packing", "PackedCollator": "packing",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
