"""Reading YAML and JSON documents (JSON is read as YAML), with one-line errors naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import UsageError


def load_document(path: "str | Path", what: str, error: "type[UsageError]" = UsageError) -> Any:
    """The document in the YAML or JSON file ``path``; ``what`` names the file in errors
    (``"space file"``), raised as ``error``: missing, unreadable, or not valid YAML/JSON."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} '{path}' not found")
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read {what} '{path}': {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise error(f"{what} '{path}' is not valid YAML/JSON{where}") from None


def load_mapping(path: "str | Path", what: str, error: "type[UsageError]" = UsageError) -> dict[str, Any]:
    """The mapping of keys in the YAML or JSON file ``path`` (an empty file is an empty mapping)."""
    doc = load_document(path, what, error)
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise error(f"{what} '{path}' must hold a mapping of keys to values")
    return doc
