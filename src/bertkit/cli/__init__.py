"""Floor 8 — the command line, `bertkit <verb>`; nothing imports it."""
from bertkit.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
