"""The ``search.py`` command line: one parser, subcommands from each package, uniform errors."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Sequence

from mixnet.quiet import quiet_mindspore
from space.basics.errors import UsageError

COMMAND_MODULES = ("space.commands", "search.commands", "search.latency.commands", "search.latency.serve_command",
                   "search.supernet.commands", "trainer.commands")


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        """Print ``prog: error: message`` and exit 2."""
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every subcommand registered."""
    prog = "mixnas" if Path(sys.argv[0]).name == "mixnas" else "search.py"
    parser = OneLineParser(prog=prog, description="Hardware-aware MixNet architecture search on MindSpore and Optuna.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: "Sequence[str] | None" = None) -> int:
    """Run one subcommand; user errors exit 2 with one line, internal errors 1."""
    quiet_mindspore()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "run", "--prepare"])
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place that turns crashes into a message
        if args.debug:
            raise
        if isinstance(exc, OSError) and exc.filename is not None:
            print(f"error: cannot access '{exc.filename}': {exc.strerror}", file=sys.stderr)
            return 2
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"internal error: {type(exc).__name__}: {first} (run with --debug for the traceback)",
              file=sys.stderr)
        return 1
