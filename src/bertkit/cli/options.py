"""Command-line options built from settings dataclasses: every option is declared once.

A settings dataclass (`PretrainSettings`, `FinetuneSettings`, ...) is what the library
takes; its fields, with their types, defaults and help texts, are also the verb's
options.  `add_options(parser, PretrainSettings)` turns each field into a flag
(`max_seq_length` → `--max-seq-length`), and `settings_from_args(PretrainSettings, args)`
builds the dataclass back from the parsed arguments, so the two can never disagree.

A field says how it appears on the command line through its metadata
(`bertkit.common.settings.option`):

    steps: int = option(1000, "optimizer steps")                  # --steps N   (default: 1000)
    files: list[str] = option(list, "text files", positional=True)
    do_lower_case: bool = option(True, "lower-case the text", false_flag="--cased")
    out_dir: str = option(None, "output directory", flag="--out", required=True)

Booleans get both forms, `--nsp / --no-nsp`; `false_flag` adds a short spelling for
False (`--cased` = `--no-do-lower-case`).  `aliases` keeps an older flag name working.
Fields with `cli=False` are for library callers only.  A `nested(...)` field holds a whole
settings dataclass (the verbs' `train: TrainingSettings`): its fields are the verb's flags
too, and `settings_from_args` builds it back, so it reaches the Trainer whole.
"""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any



def _base_type(annotation: Any) -> tuple[type, bool]:
    """(element type, is a list) of `int`, `str | None`, `list[str]`, ..."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _base_type(args[0])
    if typing.get_origin(annotation) is list:
        return typing.get_args(annotation)[0], True
    return annotation, False


def _flag(field: dataclasses.Field) -> str:
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def _help(field: dataclasses.Field) -> str:
    """The field's help text, with its default."""
    text = field.metadata["help"]
    if field.metadata.get("required") or field.metadata.get("positional"):
        return text
    default = field.default if field.default is not dataclasses.MISSING else None
    return f"{text} (default: {default})" if default not in (None, "") else text


def add_options(parser: argparse.ArgumentParser, settings: type, skip: tuple[str, ...] = ()) -> None:
    """Add one option per field of the dataclass `settings` (fields with cli=False and `skip` excepted)."""
    hints = typing.get_type_hints(settings)
    for field in dataclasses.fields(settings):
        if field.name in skip or not field.metadata.get("cli", False):
            continue
        if field.metadata.get("nested"):
            add_options(parser, hints[field.name], skip)
            continue
        kind, many = _base_type(hints[field.name])
        meta = field.metadata
        common = dict(help=_help(field), choices=meta.get("choices"))
        if meta.get("positional"):
            parser.add_argument(field.name, nargs="*" if many else None, type=kind, metavar=meta.get("metavar"),
                                **common)
            continue
        names = [_flag(field), *meta.get("aliases", ())]
        metavar = meta.get("metavar") or _flag(field).lstrip("-").replace("-", "_").upper()
        if kind is bool:
            parser.add_argument(*names, dest=field.name, action=argparse.BooleanOptionalAction,
                                default=field.default, help=common["help"])
            if meta.get("false_flag"):
                parser.add_argument(meta["false_flag"], dest=field.name, action="store_false",
                                    help=f"same as --no-{field.name.replace('_', '-')}")
            continue
        default = [] if many else (None if field.default is dataclasses.MISSING else field.default)
        parser.add_argument(*names, dest=field.name, type=kind, nargs="*" if many else None, default=default,
                            required=meta.get("required", False), metavar=metavar, **common)


def settings_from_args(settings: type, args: argparse.Namespace, **values: Any) -> Any:
    """Build the dataclass `settings` from parsed arguments; `values` fill or override fields."""
    hints = typing.get_type_hints(settings)
    given = {f.name: settings_from_args(hints[f.name], args) if f.metadata.get("nested") else getattr(args, f.name)
             for f in dataclasses.fields(settings) if f.metadata.get("nested") or hasattr(args, f.name)}
    given.update(values)
    return settings(**given)
