"""Load and save BERT checkpoints in the standard layout.

A checkpoint directory holds::

    config.json              the hyper-parameters (BertConfig)
    vocab.txt                the WordPiece vocabulary, one token per line
    tokenizer_config.json    the tokenizer's settings (lowercasing, ...)
    model.safetensors        the weights (or the older pytorch_model.bin)

Weight names are those of the published checkpoints ("bert.encoder.layer.0.attention.
self.query.weight", ...).  Older files differ in small ways that are fixed on load:

* a head model's keys start with "bert."; a bare encoder's keys do not -> the prefix
  is added or removed to fit the model being loaded;
* TensorFlow-era LayerNorm names "gamma"/"beta" -> "weight"/"bias";
* "cls.predictions.decoder.weight/bias" duplicate the word embeddings and
  "cls.predictions.bias" (tied weights) -> dropped;
* buffers such as "embeddings.position_ids" are not weights -> dropped.

`pytorch_model.bin` is read with `torch.load(weights_only=True)`: a pickle that would
run code is refused.  Saving writes safetensors into a temporary directory and renames
the files into place, so an interrupted save never destroys the previous checkpoint.
"""
from __future__ import annotations

import json
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from bertkit.common.errors import InputError, NotFoundError
from bertkit.common.files import atomic_directory
from bertkit.common.bundled import find_minilm  # noqa: F401  (re-exported: bertkit.modeling.checkpoint.find_minilm)
from bertkit.common.hub import HubError, resolve_model_dir
from bertkit.modeling.config import CONFIG_NAME, BertConfig
from bertkit.modeling.quantize import is_quantized
from bertkit.modeling.tf_checkpoint import (is_tf_checkpoint_dir, read_bert_config_json, read_tf_checkpoint,
                                           tf_to_bert_state)

SAFETENSORS_NAME = "model.safetensors"
PYTORCH_NAME = "pytorch_model.bin"
INDEX_SUFFIX = ".index.json"                      # sharded checkpoints: model.safetensors.index.json
TIED_KEYS = ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")
HEAD_PREFIXES = ("cls.", "classifier.", "qa_outputs.")
ENCODER_PARTS = ("embeddings.", "encoder.", "pooler.")
LAYOUT_HELP = (f"A BERT checkpoint directory must contain {CONFIG_NAME}, vocab.txt, tokenizer_config.json "
               f"and {SAFETENSORS_NAME} (or {PYTORCH_NAME}).")


class CheckpointError(InputError):
    """A checkpoint that cannot be loaded as it is (the message says why and what to do)."""


# ------------------------------------------------------------------- reading
def weight_files(directory: Path) -> list[Path]:
    """The weight file(s) of a checkpoint directory, safetensors preferred."""
    for name in (SAFETENSORS_NAME, PYTORCH_NAME):
        if (directory / name).is_file():
            return [directory / name]
        index = directory / (name + INDEX_SUFFIX)
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            missing = [s for s in shards if not (directory / s).is_file()]
            if missing:
                raise NotFoundError(f"{index} lists shard(s) {missing} that are not in {directory}; "
                                    f"copy the complete checkpoint.")
            return [directory / s for s in shards]
    raise NotFoundError(f"no weights in {directory}: expected {SAFETENSORS_NAME} or {PYTORCH_NAME}. "
                        + LAYOUT_HELP)


def read_weight_file(path: Path) -> dict[str, Tensor]:
    """Tensors of one .safetensors or .bin file (on CPU), with clear errors for bad files."""
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as err:
            raise CheckpointError(f"{path} is corrupt or truncated ({err}). Copy or download it again, "
                                  f"or re-save the model that produced it.") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"refused to load {path}: it is a pickle that contains more than plain tensors, and loading "
            f"it could run arbitrary code ({str(err).splitlines()[0]}). Convert it to {SAFETENSORS_NAME} "
            f"with a tool you trust, or ask its author for a safetensors file.") from None
    except (RuntimeError, EOFError) as err:
        raise CheckpointError(f"{path} is corrupt or truncated ({str(err).splitlines()[0]}). "
                              f"Copy or download it again.") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path} does not hold a plain name -> tensor dict (a state_dict); "
                              f"save weights with model.state_dict(), not the whole model.")
    return state


def rename_legacy_keys(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """gamma/beta -> weight/bias; drop non-weight buffers (position_ids, token_type_ids)."""
    out = {}
    for key, value in state.items():
        if key.endswith((".position_ids", ".token_type_ids")):
            continue
        if key.endswith(".gamma"):
            key = key[: -len("gamma")] + "weight"
        elif key.endswith(".beta"):
            key = key[: -len("beta")] + "bias"
        out[key] = value
    return out


def load_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """All tensors of a checkpoint directory or weight file, legacy names modernized."""
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"checkpoint not found: {path}. " + LAYOUT_HELP)
    files = weight_files(path) if path.is_dir() else [path]
    state: dict[str, Tensor] = {}
    for file in files:
        state.update(read_weight_file(file))
    return rename_legacy_keys(state)


def fit_prefix(state: dict[str, Tensor], model_keys: set[str]) -> dict[str, Tensor]:
    """Add or strip the "bert." prefix so the checkpoint's names match the model's."""
    model_prefixed = any(k.startswith("bert.") for k in model_keys)
    state_prefixed = any(k.startswith("bert.") for k in state)
    if model_prefixed and not state_prefixed:
        return {("bert." + k if k.startswith(ENCODER_PARTS) else k): v for k, v in state.items()}
    if state_prefixed and not model_prefixed:
        return {k.removeprefix("bert."): v for k, v in state.items()}
    return state


def drop_tied_duplicates(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The MLM decoder weight IS the word-embedding table and its bias IS cls.predictions.bias."""
    state = dict(state)
    if "cls.predictions.bias" not in state and "cls.predictions.decoder.bias" in state:
        state["cls.predictions.bias"] = state["cls.predictions.decoder.bias"]
    for key in TIED_KEYS:
        state.pop(key, None)
    return state


# --------------------------------------------------------------- into a model
def config_field_for(key: str) -> str:
    """Which config field decides the shape of a weight (for error messages)."""
    rules = (("word_embeddings", "vocab_size"), ("position_embeddings", "max_position_embeddings"),
             ("token_type_embeddings", "type_vocab_size"), ("intermediate.dense", "intermediate_size"),
             ("output.dense.weight", "intermediate_size / hidden_size"), ("predictions.bias", "vocab_size"),
             ("classifier", "num_labels"), ("qa_outputs", "num_labels"))
    for part, field in rules:
        if part in key:
            return field
    return "hidden_size"


def own_keys(model: nn.Module) -> dict[str, Tensor]:
    """The model's state_dict without the tied aliases (they are loaded through their owners)."""
    return {k: v for k, v in model.state_dict().items() if k not in TIED_KEYS}


def load_weights_into(model: nn.Module, state: dict[str, Tensor], source: str = "the checkpoint") -> dict:
    """Copy checkpoint tensors into `model`, checking names, dtypes and shapes.

    Returns {"missing_keys": [...newly initialized...], "unexpected_keys": [...unused...]}.
    Raises CheckpointError when encoder weights are missing, a tensor has a wrong
    dtype or shape, or the checkpoint has encoder weights the model lacks.
    """
    expected = own_keys(model)
    state = drop_tied_duplicates(fit_prefix(state, set(expected)))
    for key, value in sorted(state.items()):
        if key in expected:
            _check_tensor(key, value, expected[key], source)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    _refuse_encoder_mismatch(missing, unexpected, source)
    present = set(expected) & set(state)
    if any(t.is_meta for t in expected.values()):
        _assign(model, {k: state[k].to(expected[k].dtype) for k in present})
    else:
        with torch.no_grad():
            for key in present:
                expected[key].copy_(state[key])
    return {"missing_keys": missing, "unexpected_keys": unexpected, "mismatched_keys": []}


def _assign(model: nn.Module, state: dict[str, Tensor]) -> None:
    """Make the checkpoint's tensors the parameters of a model built on "meta"; initialise the rest."""
    model.load_state_dict(state, strict=False, assign=True)
    std = model.config.initializer_range
    for module in model.modules():
        for name, tensor in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
            if tensor.is_meta:
                fresh = torch.empty(tensor.shape, dtype=tensor.dtype)
                _init_fresh(module, name, fresh, std)
                if isinstance(tensor, nn.Parameter):
                    setattr(module, name, nn.Parameter(fresh, requires_grad=tensor.requires_grad))
                else:
                    module.register_buffer(name, fresh)
    model.tie_weights()


@torch.no_grad()
def _init_fresh(module: nn.Module, name: str, tensor: Tensor, std: float) -> None:
    """BERT's init for one tensor the checkpoint lacked: N(0, std) weights, LayerNorm 1, everything else 0."""
    if name == "weight" and isinstance(module, (nn.Linear, nn.Embedding)):
        tensor.normal_(0.0, std)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            tensor[module.padding_idx].zero_()
    elif name == "weight" and isinstance(module, nn.LayerNorm):
        tensor.fill_(1.0)
    else:
        tensor.zero_()


def _is_encoder_key(key: str) -> bool:
    bare = key.removeprefix("bert.")
    return bare.startswith(("embeddings.", "encoder."))


def _refuse_encoder_mismatch(missing: list[str], unexpected: list[str], source: str) -> None:
    bad_missing = [k for k in missing if _is_encoder_key(k)]
    if bad_missing:
        raise CheckpointError(
            f"{source} lacks {len(bad_missing)} encoder weight(s) the model needs, e.g. {bad_missing[:4]}. "
            f"The config does not match the weights (check num_hidden_layers and the other sizes in "
            f"{CONFIG_NAME}), or the file is not a BERT checkpoint.")
    unknown = [k for k in unexpected if not k.startswith(HEAD_PREFIXES) and "pooler." not in k]
    if unknown:
        raise CheckpointError(
            f"{source} has {len(unknown)} weight(s) this model does not have, e.g. {unknown[:4]}. "
            f"The config does not match the weights (e.g. num_hidden_layers too small), or the checkpoint "
            f"is not a standard BERT; fix {CONFIG_NAME} to describe the weights.")


def _check_tensor(key: str, value: Tensor, target: Tensor, source: str) -> None:
    if not value.is_floating_point():
        raise CheckpointError(f"{source}: weight {key!r} has dtype {value.dtype}, expected a floating-point "
                              f"tensor like the model's {target.dtype}; the file is damaged or not BERT weights.")
    if value.shape != target.shape and key.startswith(("classifier.", "qa_outputs.")):
        raise CheckpointError(
            f"{source}: the task head {key!r} has shape {tuple(value.shape)} but the model expects "
            f"{tuple(target.shape)}: the checkpoint was fine-tuned for {value.shape[0]} labels and the "
            f"model is built for {target.shape[0]}. To use the head as trained, leave num_labels out "
            f"(or pass num_labels={value.shape[0]}); to train a fresh head for another label set, start "
            f"from the pretrained (not fine-tuned) checkpoint.")
    if value.shape != target.shape:
        raise CheckpointError(
            f"{source}: weight {key!r} has shape {tuple(value.shape)} but the model expects "
            f"{tuple(target.shape)}; set `{config_field_for(key)}` in {CONFIG_NAME} to match the weights "
            f"(or pass it to from_pretrained).")


class NewHeadWarning(UserWarning):
    """A model was loaded with task-head weights that the checkpoint does not have (initialised randomly)."""


def resolve_checkpoint(name_or_path: str | os.PathLike, *, revision: str | None = None,
                       cache_dir: str | os.PathLike | None = None, local_files_only: bool | None = None,
                       token: str | bool | None = None, need_weights: bool = True) -> Path:
    """The local directory of a model named by path, by short name ("minilm") or by Hub name.

    A path on disk always wins; "minilm" is the bundled MiniLM; anything else that looks
    like "name" or "namespace/name" is fetched from the Hugging Face Hub (see bertkit.common.hub).
    """
    try:
        return resolve_model_dir(name_or_path, revision=revision, cache_dir=cache_dir,
                                 local_files_only=local_files_only, token=token, need_weights=need_weights)
    except HubError as err:
        if err.reason == "path_not_found":
            raise NotFoundError(f"{err}. {LAYOUT_HELP}") from None
        raise


def read_config(directory: Path, **overrides: Any) -> BertConfig:
    """config.json of a checkpoint directory, or bert_config.json of a Google TensorFlow release."""
    if (directory / CONFIG_NAME).is_file() or not is_tf_checkpoint_dir(directory):
        if not (directory / CONFIG_NAME).is_file():
            raise NotFoundError(f"{directory} has no {CONFIG_NAME}. " + LAYOUT_HELP)
        return BertConfig.from_pretrained(directory, **overrides)
    return BertConfig.from_dict(read_bert_config_json(directory), **overrides)


def read_weights(directory: Path, config: BertConfig) -> dict[str, Tensor]:
    """The weights of a checkpoint directory (safetensors, .bin, or a Google TF checkpoint), standard names."""
    if is_tf_checkpoint_dir(directory) and not any((directory / n).is_file() for n in (SAFETENSORS_NAME, PYTORCH_NAME)):
        return tf_to_bert_state(read_tf_checkpoint(directory, slots=False), config.to_dict())
    return load_state_dict(directory)


def load_pretrained(cls, name_or_path: str | os.PathLike, output_loading_info: bool = False, *,
                    revision: str | None = None, cache_dir: str | os.PathLike | None = None,
                    local_files_only: bool | None = None, token: str | bool | None = None,
                    new_head_warning: bool = True, **overrides: Any):
    """`cls.from_pretrained(name_or_path, **config_overrides)`: build from the config, load the weights.

    The model is built on the "meta" device (shapes only, no memory), then each parameter
    *becomes* the tensor read from the file, so the weights are held once, not twice.
    Parameters the checkpoint lacks (a new task head) are then allocated and initialised.
    """
    directory = resolve_checkpoint(name_or_path, revision=revision, cache_dir=cache_dir,
                                   local_files_only=local_files_only, token=token)
    if not directory.is_dir():
        raise NotFoundError(f"checkpoint directory not found: {directory}. " + LAYOUT_HELP)
    config = read_config(directory, **overrides)
    with torch.device("meta"):
        model = cls(config)
    info = load_weights_into(model, read_weights(directory, config), source=str(name_or_path))
    if info["missing_keys"] and new_head_warning:
        warnings.warn(f"{cls.__name__}: weights not in {name_or_path} were newly initialized at random "
                      f"({', '.join(info['missing_keys'])}); train this head (e.g. `bertkit finetune`) "
                      f"before using its predictions.",
                      NewHeadWarning, stacklevel=3)
    model.eval()
    model.loading_info = info
    return (model, info) if output_loading_info else model


# ------------------------------------------------------------------- writing
def state_for_saving(model: nn.Module) -> dict[str, Tensor]:
    """The model's tensors as safetensors wants them: no tied aliases, contiguous, unshared."""
    if is_quantized(model):
        raise InputError("this model is int8-quantized (bertkit.modeling.quantize), which is not a checkpoint format "
                         "other tools can load; save the fp32 model and quantize again after loading.")
    out, seen = {}, set()
    for key, value in own_keys(model).items():
        value = value.detach().cpu().contiguous()
        if value.untyped_storage().data_ptr() in seen:
            value = value.clone()
        seen.add(value.untyped_storage().data_ptr())
        out[key] = value
    return out


def save_checkpoint_dir(model: nn.Module, directory: str | os.PathLike, tokenizer: Any = None,
                        config: BertConfig | None = None) -> Path:
    """Write config.json + model.safetensors (+ tokenizer files) to `directory`, atomically.

    Everything is written into a temporary sibling directory first and then renamed
    into place (`bertkit.common.files.atomic_directory(merge=True)`): each new file
    replaces its namesake, other files already in `directory` (a README, a vocab) are
    kept, and if anything fails before the renames, `directory` is left untouched.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise InputError(f"cannot save a checkpoint to {directory}: it is a file, not a directory; "
                         f"choose another path.")
    with atomic_directory(directory, merge=True) as tmp:
        write_model_files(tmp, saved_config(model, config), state_for_saving(model))
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
    return directory


def saved_config(model: nn.Module, config: BertConfig | None = None) -> BertConfig:
    """The config written beside `model`'s weights: with its architecture named, as transformers reads it."""
    config = config or model.config
    return config.replace(extra={**config.extra, "architectures": [type(model).__name__]})


def write_model_files(directory: Path, config: BertConfig, weights: dict[str, Tensor]) -> None:
    """config.json + model.safetensors into `directory` (`weights` as `state_for_saving` gives them)."""
    config.save_pretrained(directory)
    save_file(weights, str(Path(directory) / SAFETENSORS_NAME), metadata={"format": "pt"})
