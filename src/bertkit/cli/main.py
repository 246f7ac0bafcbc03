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

Under `torchrun` (several processes) only rank 0 speaks: the other ranks' output,
warnings and logs are dropped.  An error is shown once: by the rank it happened on,
named "(rank r of N)"; an error every rank meets alike (a bad argument, a missing file)
by rank 0 alone; and a rank that stops because another one failed says nothing.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings

import torch.distributed as dist

import bertkit.cli.apps as apps
import bertkit.cli.text as text
import bertkit.cli.train as train
import bertkit.cli.use as use
from bertkit.common.errors import BertkitError
from bertkit.modeling.checkpoint import NewHeadWarning
from bertkit.training.distributed import PeerFailed, gather_errors, process_info


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


class _Voice:
    """Where messages go: stderr for rank 0 (or a single process); nowhere for the other torchrun ranks,
    except an error that is theirs alone."""

    def __init__(self):
        self.info = process_info()
        self.stderr, self.saved = sys.stderr, None
        if not self.info.is_main:
            self.saved = (sys.stdout, sys.stderr, logging.root.manager.disable)
            sys.stdout = sys.stderr = open(os.devnull, "w")
            logging.disable(logging.CRITICAL)

    def error(self, text: str, exc: BaseException) -> None:
        """Print `text` once for the whole job."""
        if not (self.info.world > 1 and dist.is_available() and dist.is_initialized()):
            if self.info.is_main:               # before the processes met, every rank has the same error
                print(text, file=self.stderr, flush=True)
            return
        own = None if isinstance(exc, PeerFailed) or _collective_failure(exc) else text
        everyone = gather_errors(own)
        if everyone is None:                    # only some ranks failed: each says its own error
            if own is not None:
                print(_with_ranks(own, [self.info.rank], self.info.world), file=self.stderr, flush=True)
            elif self.info.is_main and not isinstance(exc, PeerFailed):
                print("bertkit: error: another process of this torchrun job stopped (its message, if it left "
                      "one, is above)", file=self.stderr, flush=True)
            return
        if self.info.is_main:                   # every rank failed: rank 0 shows each distinct error once
            for message in dict.fromkeys(m for m in everyone if m):
                ranks = [r for r, m in enumerate(everyone) if m == message]
                print(_with_ranks(message, ranks, self.info.world), file=self.stderr, flush=True)

    def close(self) -> None:
        if self.saved is not None:
            sys.stdout.close()
            sys.stdout, sys.stderr, level = self.saved
            logging.disable(level)


def _with_ranks(text: str, ranks: list[int], world: int) -> str:
    """'bertkit: error: ...' → 'bertkit (rank 1 of 4): error: ...' (or 'ranks 0-3 of 4')."""
    where = f"rank {ranks[0]}" if len(ranks) == 1 else (
        f"ranks {ranks[0]}-{ranks[-1]}" if ranks == list(range(ranks[0], ranks[-1] + 1)) else
        "ranks " + ",".join(map(str, ranks)))
    return text.replace("bertkit: ", f"bertkit ({where} of {world}): ", 1)


def _collective_failure(exc: BaseException) -> bool:
    """Whether `exc` only says that another process of the job went away (gloo / NCCL errors)."""
    if isinstance(exc, getattr(dist, "DistError", ())):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(
        k in text for k in ("Connection closed by peer", "Connection reset by peer", "NCCL error", "[gloo/",
                            "Gloo connectFullMesh", "Socket Timeout"))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    _show_notes()
    voice = _Voice()
    try:
        args.func(args)
    except KeyboardInterrupt:
        if voice.info.is_main:
            print("bertkit: interrupted", file=voice.stderr)
        return 130
    except BertkitError as exc:
        if args.debug:
            raise
        voice.error(f"bertkit: error: {exc}", exc)
        return 1 if isinstance(exc, PeerFailed) else 2
    except Exception as exc:  # noqa: BLE001 — a bug: say so plainly, traceback on request
        if args.debug:
            raise
        voice.error(f"bertkit: internal error (a bug in bertkit, please report it): {type(exc).__name__}: {exc} "
                    "— run again with --debug for the traceback", exc)
        return 1
    finally:
        warnings.showwarning = _default_show
        voice.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
