"""Settings fields that also describe their command-line option.

The library's settings dataclasses (`PretrainSettings`, `FinetuneSettings`, ...) declare
each field with `option(default, help, ...)`.  The metadata costs nothing to a library
caller and lets `bertkit.cli.options` build the verb's flags from the very same
declaration, so a setting is declared once (name, type, default, help).
"""
from __future__ import annotations

import dataclasses
from typing import Any


def option(default: Any, help: str, *, flag: str | None = None, aliases: tuple[str, ...] = (),
           false_flag: str | None = None, positional: bool = False, required: bool = False,
           choices: tuple | None = None, cli: bool = True, metavar: str | None = None) -> Any:
    """A dataclass field that is also a command-line option (`default=list` for an empty list)."""
    meta = dict(help=help, flag=flag, aliases=aliases, false_flag=false_flag, positional=positional,
                required=required, choices=choices, cli=cli, metavar=metavar)
    if default is list or default is dict:
        return dataclasses.field(default_factory=default, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)
