"""Errors a user can fix: the CLI prints them as one line and exits with status 2."""

from __future__ import annotations

import difflib


class UsageError(Exception):
    """Bad input from the user (a spec, a file, a flag); the message says what is allowed."""


class GenomeError(UsageError):
    """A genome text, file or value that does not describe a valid MixNet."""


def unknown_key_error(key: str, allowed: "tuple[str, ...]", where: str,
                      error: "type[UsageError]" = UsageError) -> UsageError:
    """An error for an unknown key, with close matches or the full list of allowed keys."""
    close = difflib.get_close_matches(key, allowed, n=3)
    hint = f"did you mean {', '.join(close)}?" if close else f"allowed: {', '.join(allowed)}"
    return error(f"{where}: unknown key '{key}' - {hint}")
