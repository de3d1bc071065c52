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
GROUPS = (("search", ("run", "report", "verify", "proxy", "supernet")), ("genomes", ("decode", "export")),
          ("training", ("train", "validate", "data")), ("latency", ("profile", "lut", "latency", "mindir")))
ABOUT = """Hardware-aware MixNet architecture search on MindSpore and Optuna.

Without a command: the default search, 'run --prepare' on configs/search/supernet_demo.yaml (latency
table and supernet where missing, then the trials and their outputs; it prints its plan first)."""
# One example a command, shown at the end of its --help (the command with its action for nested ones).
EXAMPLES = {
    "run": "python search.py run --config configs/search/demo.yaml",
    "report": "python search.py report --storage sqlite:///runs/demo/study.db --study mixnet-demo --out runs/demo",
    "verify": "python search.py verify --config configs/search/supernet_demo.yaml",
    "proxy check": "python search.py proxy check --config configs/search/demo.yaml --genomes 12 --seeds 2",
    "supernet train": "python search.py supernet train --config configs/search/supernet_demo.yaml",
    "supernet check": "python search.py supernet check --config configs/search/supernet_demo.yaml --genomes 12",
    "supernet extract": "python search.py supernet extract runs/supernet_demo/best/trial_0900.yaml "
                        "--config configs/search/supernet_demo.yaml --out sub.ckpt",
    "decode": "python search.py decode mixnet_s --to timm",
    "export": "python search.py export runs/supernet_demo/best/trial_0900.yaml --format ONNX --out model.onnx",
    "train": "python search.py train --config configs/train/digits.yaml --genome runs/demo/best/trial_0007.yaml",
    "validate": "python search.py validate --config configs/train/digits.yaml --ckpt_path runs/digits/best.ckpt",
    "data digits": "python search.py data digits --out runs/data/digits",
    "data mnist5k": "python search.py data mnist5k --out runs/data/mnist5k",
    "data animals": "python search.py data animals --out runs/data/animals --size 28",
    "profile": "python search.py profile mixnet_s --backend onnxruntime --device CPU --resolution 224 --json",
    "lut build": "python search.py lut build --space configs/space/mixnet_s_wide.yaml --out lut_ort.csv",
    "lut check": "python search.py lut check --lut lut_ort.csv --space configs/space/mixnet_s_wide.yaml --genomes 50",
    "lut predict": "python search.py lut predict --lut lut_ort.csv mixnet_s",
    "latency serve": "python search.py latency serve --queue postgresql://user:pw@db/mixnas --backend mindspore "
                     "--device Ascend",
    "mindir export": "python search.py mindir export mixnet_s --space configs/space/mixnet_s.yaml --random 200 "
                     "--out npu_batch/",
    "mindir measure": "python search.py mindir measure npu_batch/manifest.json --device Ascend --out npu_results.csv",
    "mindir import": "python search.py mindir import npu_results.csv --cache runs/search/latency_cache.sqlite",
}
EXAMPLE = "example:"


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        """Print ``prog: error: message`` and exit 2."""
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


class ExampleFormatter(argparse.HelpFormatter):
    """argparse's help layout, with an epilog that starts with ``example:`` kept line for line (a command is
    not wrapped)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        """``text`` wrapped to ``width``, unless it is an example."""
        if text.startswith(EXAMPLE):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def subcommands(parser: argparse.ArgumentParser, path: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every command of ``parser`` and every action of a command, by its words (``lut build``)."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                words = f"{path} {name}".strip()
                found[words] = child
                found.update(subcommands(child, words))
    return found


def grouped_commands(sub: argparse._SubParsersAction) -> str:
    """The commands under the headings of ``GROUPS`` (any other under ``other``), each with its help line."""
    helps = {a.dest: a.help for a in sub._choices_actions}
    grouped = [name for _, names in GROUPS for name in names]
    groups = [*GROUPS, ("other", tuple(n for n in helps if n not in grouped))]
    width = max(map(len, helps))
    lines = []
    for title, names in groups:
        present = [n for n in names if n in helps]
        if present:
            lines += [f"{title}:", *(f"  {n:<{width}}  {helps[n]}" for n in present)]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every subcommand registered: the commands listed by job, and each command's help
    ending in an example (``EXAMPLES``; a command with actions shows its first action's)."""
    prog = "mixnas" if Path(sys.argv[0]).name == "mixnas" else "search.py"
    parser = OneLineParser(prog=prog, usage=f"{prog} [-h] [--debug] [COMMAND ...]",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser, prog=prog,
                                help=argparse.SUPPRESS)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    parser.description = f"{ABOUT}\n\n{grouped_commands(sub)}"
    parser.epilog = f"{EXAMPLE}\n  python search.py\n\n'{prog} COMMAND --help' shows a command's flags and an example."
    for words, child in subcommands(parser).items():
        shown = EXAMPLES.get(words) or next((v for k, v in EXAMPLES.items() if k.startswith(words + " ")), None)
        if shown is not None:
            child.epilog = f"{EXAMPLE}\n  {shown}"
            child.formatter_class = ExampleFormatter
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
