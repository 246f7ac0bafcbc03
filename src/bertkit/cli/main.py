"""`bertkit <verb>`: the command line.

Every verb has `--help` with an example and every default.  The verbs live in one
module per group: `text` (tokenize, vocab), `train` (quickstart, pretrain, finetune,
eval, predict), `use` (fill-mask, nsp, embed, similarity, classify, tag, answer) and
`apps` (search, attention, serve, bench, export-onnx, convert).

Errors: a `BertkitError` (something the user can fix: a wrong path, a bad value, a
missing optional package) prints one line, `bertkit: error: ...`, and exits with
status 2.  Anything else is a bug in bertkit: it says so in one line and exits with
status 1; `--debug` shows the traceback.  Ctrl-C exits with 130 (training saves a
checkpoint first).  `--json` prints machine-readable output where it applies.
"""
from __future__ import annotations

import argparse
import sys
import warnings

import bertkit.cli.apps as apps
import bertkit.cli.text as text
import bertkit.cli.train as train
import bertkit.cli.use as use
from bertkit.common.errors import BertkitError
from bertkit.modeling.checkpoint import NewHeadWarning


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' line breaks."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bertkit", description="BERT end to end, from scratch: tokenize → "
                                     "pretrain → fine-tune → use.  `bertkit <verb> --help` shows an example.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="verb", metavar="<verb>")

    def verb(name, func, help_text, epilog=None, parent=None):
        p = (parent or sub).add_parser(name, help=help_text, description=help_text, epilog=epilog,
                                       formatter_class=_Formatter)
        p.add_argument("--json", action="store_true", help="print JSON (for scripts)")
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show full tracebacks on errors")
        if func is not None:
            p.set_defaults(func=func)
        return p

    for group in (train, text, use, apps):
        group.register(verb)
    return parser


def _show_notes() -> None:
    """bertkit's own notices print as one plain line (no source line under them)."""
    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, NewHeadWarning) or filename.startswith(_PACKAGE_DIR):
            print(f"bertkit: note: {message}", file=file or sys.stderr)
        else:
            _default_show(message, category, filename, lineno, file, line)
    warnings.showwarning = show


_default_show = warnings.showwarning
_PACKAGE_DIR = __file__.rsplit("/cli/", 1)[0]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    _show_notes()
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("bertkit: interrupted", file=sys.stderr)
        return 130
    except BertkitError as exc:
        if args.debug:
            raise
        print(f"bertkit: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 — a bug: say so plainly, traceback on request
        if args.debug:
            raise
        print(f"bertkit: internal error (a bug in bertkit, please report it): {type(exc).__name__}: {exc} "
              "— run again with --debug for the traceback", file=sys.stderr)
        return 1
    finally:
        warnings.showwarning = _default_show
    return 0


if __name__ == "__main__":
    sys.exit(main())
