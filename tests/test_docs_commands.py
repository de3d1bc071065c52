"""Every ``search.py`` command shown in README.md and docs/*.md parses with the real command line."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from search.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
FENCE = re.compile(r"^```bash\n(.*?)^```", re.DOTALL | re.MULTILINE)
INLINE = re.compile(r"`((?:python search\.py|mixnas|msrun)\b[^`]*)`")
SEPARATORS = ("&&", "||", ";", "|")


def _arguments(tokens: list[str]) -> "list[str] | None":
    """The arguments after ``search.py`` (or the ``mixnas`` script) in one shell command, else None."""
    for i, token in enumerate(tokens):
        if token == "search.py" or token.endswith("/search.py") or (i == 0 and token == "mixnas"):
            return tokens[i + 1:]
    return None


def _commands_of(line: str) -> list[list[str]]:
    """The argument lists of every ``search.py`` command on one shell line (comments dropped)."""
    commands, segment = [], []
    for token in [*shlex.split(line, comments=True), "&&"]:
        if token in SEPARATORS:
            args = _arguments(segment)
            if args is not None:
                commands.append(args)
            segment = []
        else:
            segment.append(token)
    return commands


def doc_commands(path: Path) -> list[tuple[str, str, list[str]]]:
    """(where, shell text, arguments) of every ``search.py`` command in the ```bash fences of ``path`` and in
    its inline code that starts with ``python search.py``, ``mixnas`` or ``msrun``."""
    text = path.read_text(encoding="utf-8")
    found, fenced = [], []
    for block in FENCE.finditer(text):
        fenced.append(block.span())
        first = text.count("\n", 0, block.start(1)) + 1
        for offset, line in enumerate(block.group(1).replace("\\\n", " ").splitlines()):
            for args in _commands_of(line):
                found.append((f"{path.name}:{first + offset}", line.strip(), args))
    for span in INLINE.finditer(text):
        if any(start <= span.start() < end for start, end in fenced):
            continue
        command = " ".join(span.group(1).split())
        for args in _commands_of(command):
            found.append((f"{path.name}:{text.count(chr(10), 0, span.start()) + 1}", command, args))
    return found


COMMANDS = [command for page in PAGES for command in doc_commands(page)]


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    """The ``search.py`` parser with every subcommand."""
    return build_parser()


def parse_error(parser: argparse.ArgumentParser, args: list[str]) -> "str | None":
    """None when ``args`` parse (or ask for help), else argparse's message."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(args)
    except SystemExit as exc:
        return None if exc.code == 0 else stderr.getvalue().strip() or f"exit status {exc.code}"
    return None


@pytest.mark.parametrize("where, command, args", COMMANDS, ids=[f"{w} {c[:60]}" for w, c, _ in COMMANDS])
def test_documented_command_parses(parser: argparse.ArgumentParser, where: str, command: str, args: list[str]) -> None:
    """A command in the docs is one the command line accepts."""
    error = parse_error(parser, args)
    assert error is None, f"{where}: `{command}` does not parse: {error}"


def test_readme_shows_every_job() -> None:
    """The README's commands cover the five jobs (so an extraction that finds nothing cannot pass)."""
    readme = [args for _, _, args in doc_commands(ROOT / "README.md")]
    assert [] in readme, "the README shows the default search, `python search.py`"
    subcommands = {args[0] for args in readme if args}
    assert {"run", "decode", "train", "profile", "lut", "verify"} <= subcommands, subcommands


def test_a_misspelled_flag_is_reported(parser: argparse.ArgumentParser, tmp_path: Path) -> None:
    """The check rejects what the command line rejects: a misspelled flag, an unknown training key."""
    page = tmp_path / "page.md"
    page.write_text("```bash\npython search.py run --config configs/search/demo.yaml --trails 30\n"
                    "msrun --worker_num 2 python search.py train --config configs/train/digits.yaml --epoch_sise 2\n```\n")
    (bad_run, bad_train) = doc_commands(page)
    assert "--trails" in parse_error(parser, bad_run[2])
    assert "--epoch_sise" in parse_error(parser, bad_train[2])
