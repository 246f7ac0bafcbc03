"""BERT's hyper-parameters: one frozen dataclass that mirrors `config.json`.

A BERT checkpoint directory carries a `config.json` such as::

    {"vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12,
     "num_attention_heads": 12, "intermediate_size": 3072, "hidden_act": "gelu", ...}

`BertConfig` has one field per key of that file, with the same name and the same
default as the original BERT release.  Keys that bertkit does not use (for example
`architectures`, `transformers_version`, `gradient_checkpointing`) are kept in
`extra` and written back unchanged, so a config survives a load/save round trip.

The sizes of the BERT paper and of the "24 small BERTs" (Turc et al., 2019) are
available as presets::

    BertConfig.preset("base")            # L=12, H=768,  A=12, FFN=3072
    BertConfig.preset("L4-H256")         # L=4,  H=256,  A=4,  FFN=1024 (= "mini")

Legend used in shape comments across bertkit: L layers, H hidden size, A attention
heads, D = H / A head size, V vocabulary size, FFN intermediate size.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertkit.common.errors import InputError, NotFoundError
from bertkit.common.files import atomic_write_text

CONFIG_NAME = "config.json"

#: Activation names understood in `hidden_act`.  "gelu" is the exact erf form used by
#: the published checkpoints; the tanh approximation is used only when named.
ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu")

#: Above this many parameters a config is refused before any memory is allocated.
MAX_PARAMETERS = 10_000_000_000

#: (layers, hidden) of the named sizes; heads = hidden / 64 and FFN = 4 * hidden.
NAMED_SIZES = {
    "tiny": (2, 128),
    "mini": (4, 256),
    "small": (4, 512),
    "medium": (8, 512),
    "base": (12, 768),
    "large": (24, 1024),
}
GRID_LAYERS = (2, 4, 6, 8, 10, 12)
GRID_HIDDEN = (128, 256, 512, 768)


@dataclass(frozen=True)
class BertConfig:
    """The hyper-parameters of one BERT model (frozen: use `.replace(...)` to change)."""

    vocab_size: int = 30522                  # V: rows of the word-embedding table
    hidden_size: int = 768                   # H: width of every token vector
    num_hidden_layers: int = 12              # L: number of encoder layers
    num_attention_heads: int = 12            # A: heads per attention layer (D = H / A)
    intermediate_size: int = 3072            # FFN width, usually 4 * H
    hidden_act: str = "gelu"                 # activation in the FFN and the MLM transform
    hidden_dropout_prob: float = 0.1         # dropout after embeddings / sublayers
    attention_probs_dropout_prob: float = 0.1  # dropout on attention probabilities
    max_position_embeddings: int = 512       # longest sequence the position table covers
    type_vocab_size: int = 2                 # segments (sentence A / sentence B)
    initializer_range: float = 0.02          # std of the normal weight init
    layer_norm_eps: float = 1e-12            # epsilon inside every LayerNorm
    pad_token_id: int | None = 0             # id of [PAD]
    position_embedding_type: str = "absolute"  # only learned absolute positions exist here
    num_labels: int = 2                      # classes of a classification head
    id2label: dict[int, str] | None = None   # class id -> name (defaults to LABEL_i)
    label2id: dict[str, int] | None = None   # class name -> id
    problem_type: str | None = None          # "regression" | "single_label_classification" | "multi_label_classification"
    classifier_dropout: float | None = None  # dropout before a classifier (None: hidden_dropout_prob)
    extra: dict[str, Any] = field(default_factory=dict)  # unknown config.json keys, kept verbatim

    # ------------------------------------------------------------------ checks
    def __post_init__(self) -> None:
        self._settle_labels()
        self._validate()

    def _settle_labels(self) -> None:
        """Make num_labels, id2label and label2id agree (num_labels follows id2label)."""
        id2label = self.id2label
        if id2label is not None:
            id2label = {int(k): str(v) for k, v in id2label.items()}
            num_labels = len(id2label)
        else:
            num_labels = self.num_labels
            id2label = {i: f"LABEL_{i}" for i in range(num_labels)}
        label2id = self.label2id
        if label2id is None or len(label2id) != len(id2label):
            label2id = {name: i for i, name in id2label.items()}
        label2id = {str(k): int(v) for k, v in label2id.items()}
        object.__setattr__(self, "id2label", id2label)
        object.__setattr__(self, "label2id", label2id)
        object.__setattr__(self, "num_labels", num_labels)
        object.__setattr__(self, "extra", dict(self.extra))

    def _validate(self) -> None:
        positive = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                    "intermediate_size", "max_position_embeddings", "type_vocab_size", "num_labels")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise InputError(f"BertConfig.{name} must be a positive integer, got {value!r}; "
                                 f"fix it in config.json or pass {name}=<int > 0>.")
        if self.hidden_size % self.num_attention_heads:
            raise InputError(
                f"hidden_size ({self.hidden_size}) is not divisible by num_attention_heads "
                f"({self.num_attention_heads}): every head gets hidden_size / num_attention_heads "
                f"dimensions. Choose e.g. num_attention_heads={max(1, self.hidden_size // 64)} "
                f"(the BERT convention is one head per 64 dimensions).")
        if self.hidden_act not in ACTIVATIONS:
            raise InputError(f"hidden_act={self.hidden_act!r} is not supported; use one of {ACTIVATIONS} "
                             f"('gelu' is the exact form used by published BERT checkpoints).")
        if self.position_embedding_type != "absolute":
            raise InputError(f"position_embedding_type={self.position_embedding_type!r} is not supported; "
                             f"bertkit implements BERT's learned 'absolute' position embeddings only.")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            p = getattr(self, name)
            if not 0.0 <= p < 1.0:
                raise InputError(f"{name} must be in [0, 1), got {p!r}.")
        if self.classifier_dropout is not None and not 0.0 <= self.classifier_dropout < 1.0:
            raise InputError(f"classifier_dropout must be None or in [0, 1), got {self.classifier_dropout!r}.")
        if self.layer_norm_eps <= 0 or self.initializer_range <= 0:
            raise InputError("layer_norm_eps and initializer_range must be > 0 "
                             f"(got {self.layer_norm_eps!r}, {self.initializer_range!r}).")
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise InputError(f"pad_token_id={self.pad_token_id} is outside the vocabulary "
                             f"(vocab_size={self.vocab_size}); set it to the id of [PAD] in vocab.txt.")
        if self.problem_type not in (None, "regression", "single_label_classification",
                                     "multi_label_classification"):
            raise InputError(f"problem_type={self.problem_type!r} is not one of None, 'regression', "
                             "'single_label_classification', 'multi_label_classification'.")
        if self.extra.get("model_type", "bert") != "bert":
            raise InputError(f"this config is for model_type={self.extra['model_type']!r}, not 'bert'; "
                             f"bertkit loads BERT checkpoints only.")
        if self.extra.get("is_decoder") or self.extra.get("add_cross_attention"):
            raise InputError("This config asks for a decoder (is_decoder / add_cross_attention); "
                             "bertkit implements the BERT encoder only. Set both to false.")
        n = self.num_parameters()
        if n > MAX_PARAMETERS:
            raise InputError(
                f"This config would have about {n / 1e9:.1f} billion parameters "
                f"(vocab_size={self.vocab_size}, hidden_size={self.hidden_size}, "
                f"num_hidden_layers={self.num_hidden_layers}, intermediate_size={self.intermediate_size}), "
                f"more than the {MAX_PARAMETERS / 1e9:.0f} billion bertkit accepts; it was refused before "
                f"allocating memory. Check these fields for a typo (BERT-large has 0.34 billion).")

    # ------------------------------------------------------------ derived sizes
    @property
    def head_dim(self) -> int:
        """D: the width of one attention head (H / A)."""
        return self.hidden_size // self.num_attention_heads

    def num_parameters(self, with_heads: bool = False) -> int:
        """Parameter count of BertModel (encoder + pooler), from the sizes alone.

        with_heads=True adds the pretraining heads (MLM transform + bias, NSP).
        """
        H, F, L = self.hidden_size, self.intermediate_size, self.num_hidden_layers
        embeddings = (self.vocab_size + self.max_position_embeddings + self.type_vocab_size) * H + 2 * H
        attention = 4 * (H * H + H) + 2 * H        # Q, K, V, output dense + LayerNorm
        ffn = H * F + F + F * H + H + 2 * H        # two dense layers + LayerNorm
        pooler = H * H + H
        total = embeddings + L * (attention + ffn) + pooler
        if with_heads:
            total += H * H + H + 2 * H + self.vocab_size + 2 * H + 2
        return total

    # ---------------------------------------------------------------- presets
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "BertConfig":
        """A named size: "tiny", "mini", "small", "medium", "base", "large" or "L{l}-H{h}".

        The "L{l}-H{h}" grid is the 24 small BERTs: l in 2,4,...,12 and h in 128,256,512,768,
        with A = h / 64 heads and FFN = 4h.  Any field can be overridden: preset("tiny", vocab_size=8000).
        """
        layers_hidden = NAMED_SIZES.get(name) or _parse_grid_name(name)
        if layers_hidden is None:
            grid = ", ".join(f"L{l}-H{h}" for l in GRID_LAYERS for h in GRID_HIDDEN)
            raise InputError(f"unknown preset {name!r}; choose one of {', '.join(NAMED_SIZES)} or {grid}.")
        layers, hidden = layers_hidden
        sizes = dict(num_hidden_layers=layers, hidden_size=hidden,
                     num_attention_heads=hidden // 64, intermediate_size=4 * hidden)
        sizes.update(overrides)
        return cls(**sizes)

    @staticmethod
    def preset_names() -> list[str]:
        """Every name `preset` accepts."""
        return list(NAMED_SIZES) + [f"L{l}-H{h}" for l in GRID_LAYERS for h in GRID_HIDDEN]

    def replace(self, **changes: Any) -> "BertConfig":
        """A copy with some fields changed (the config itself is frozen)."""
        if "num_labels" in changes and "id2label" not in changes:
            changes.update(id2label=None, label2id=None)
        if "id2label" in changes and "label2id" not in changes:
            changes["label2id"] = None
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TypeError(f"BertConfig has no field(s) {sorted(unknown)}; "
                            f"valid fields: {[f.name for f in dataclasses.fields(self)]}.")
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------ dict / json
    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides: Any) -> "BertConfig":
        """Build from a config.json-style dict; unknown keys go to `extra`."""
        data = {**data, **overrides}
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        extra = dict(data.get("extra") or {})
        extra.update({k: v for k, v in data.items() if k not in names and k != "extra"})
        if extra.get("model_type") == "bert":
            del extra["model_type"]                # always "bert"; to_dict writes it back
        if "num_labels" in overrides and "id2label" not in overrides:
            known.pop("id2label", None)
            known.pop("label2id", None)
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """A config.json-style dict (id2label keys as strings, like the reference)."""
        out: dict[str, Any] = {"model_type": "bert"}
        out.update(self.extra)
        for f in dataclasses.fields(self):
            if f.name != "extra":
                out[f.name] = getattr(self, f.name)
        out["id2label"] = {str(k): v for k, v in self.id2label.items()}
        return dict(sorted(out.items()))

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json_file(cls, path: str | os.PathLike, **overrides: Any) -> "BertConfig":
        path = Path(path)
        if not path.is_file():
            raise NotFoundError(f"config file not found: {path}. A BERT checkpoint directory must "
                                f"contain {CONFIG_NAME} (plus vocab.txt and model.safetensors).")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise InputError(f"{path} is not valid JSON ({err}); restore it from the original checkpoint.") from None
        if not isinstance(data, dict):
            raise InputError(f"{path} must hold a JSON object of config fields, got {type(data).__name__}.")
        return cls.from_dict(data, **overrides)

    def to_json_file(self, path: str | os.PathLike) -> None:
        """Write config.json atomically (temp file + rename: an old file is never half-written)."""
        atomic_write_text(path, self.to_json_string())

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, **overrides: Any) -> "BertConfig":
        """Read `<directory>/config.json` (or a config.json path itself)."""
        path = Path(directory)
        return cls.from_json_file(path / CONFIG_NAME if path.is_dir() else path, **overrides)

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        self.to_json_file(Path(directory) / CONFIG_NAME)


def _parse_grid_name(name: str) -> tuple[int, int] | None:
    """"L4-H256" -> (4, 256) when it is one of the 24 grid sizes, else None."""
    try:
        layers_part, hidden_part = name.upper().split("-")
        layers, hidden = int(layers_part.removeprefix("L")), int(hidden_part.removeprefix("H"))
    except ValueError:
        return None
    if layers in GRID_LAYERS and hidden in GRID_HIDDEN:
        return layers, hidden
    return None
