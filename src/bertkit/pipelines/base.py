"""What every pipeline shares: loading, batching, device placement."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import torch


def resolve_device(device) -> torch.device:
    """None → CUDA if available else CPU; ints mean CUDA ordinals; strings as torch takes them."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, int):
        return torch.device("cpu") if device < 0 else torch.device("cuda", device)
    return torch.device(device)


def chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class Pipeline:
    """Base class: holds `self.model` (eval mode, on `self.device`) and `self.tokenizer`.

    Subclasses set `model_class` (the bertkit class to load from a directory) and
    implement `__call__`.
    """

    model_class: str = "BertModel"

    def __init__(self, model, tokenizer=None, device=None, batch_size: int = 32, max_length: int | None = None,
                 quantize: str | None = None):
        import bertkit

        self.device = resolve_device(device)
        if isinstance(model, (str, Path)):
            path = Path(model)
            if not path.is_dir():
                raise FileNotFoundError(
                    f"model directory not found: {path} — pass a directory with config.json, vocab.txt "
                    "and model.safetensors (e.g. one written by `bertkit pretrain` or `save_pretrained`)")
            model = getattr(bertkit, self.model_class).from_pretrained(path)
            if tokenizer is None:
                tokenizer = bertkit.BertTokenizer.from_pretrained(path)
        if tokenizer is None:
            raise ValueError("pass tokenizer= when model is an already-loaded model object")
        self.model = self.quantized(model.to(self.device).eval(), quantize)
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        limit = self.model.config.max_position_embeddings
        self.max_length = min(max_length or limit, limit)

    def quantized(self, model, quantize: str | None):
        """`quantize="int8"`: int8 dynamic quantization for CPU (see bertkit.modeling.quantize)."""
        if quantize is None:
            return model
        if quantize != "int8":
            raise ValueError(f"quantize={quantize!r} is not supported; use quantize='int8' or leave it out.")
        if self.device.type != "cpu":
            raise ValueError("quantize='int8' is for CPU inference; pass device='cpu' (on a GPU use bf16 instead).")
        from bertkit.modeling.quantize import quantize_dynamic_int8
        return quantize_dynamic_int8(model)

    def encode(self, texts: list[str], pairs: list[str] | None = None, **extra) -> dict:
        """Tokenize a batch (padded, truncated to the model's limit) into tensors on the device."""
        enc = self.tokenizer(texts, text_pair=pairs, padding=True, truncation=True,
                             max_length=self.max_length, return_tensors="pt", **extra)
        return {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in enc.items()}

    @staticmethod
    def as_list(inputs) -> tuple[list, bool]:
        """Normalise a single input or a list of inputs; remember which it was."""
        if isinstance(inputs, (str, tuple, dict)):
            return [inputs], True
        if isinstance(inputs, Iterable):
            return list(inputs), False
        raise TypeError(f"expected a string or a list of strings, got {type(inputs).__name__}")

    @staticmethod
    def model_inputs(enc: dict) -> dict:
        return {k: enc[k] for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc}
