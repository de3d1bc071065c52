"""``parse_genome``: one entry point for every way a user can name a genome."""

from __future__ import annotations

import re
from pathlib import Path

from .codecs.document import genome_from_line, load_genome_file
from .basics.errors import GenomeError
from .genome import Genome
from .presets import PRESETS

GENOME_FILE_SUFFIXES = (".yaml", ".yml", ".json")


def parse_genome(spec: "str | Path | Genome") -> Genome:
    """A Genome from a preset name, a one-line genome, or a YAML/JSON genome file."""
    if isinstance(spec, Genome):
        return spec
    if isinstance(spec, Path):
        return _from_path(spec)
    if not isinstance(spec, str) or not spec.strip():
        raise GenomeError(f"empty genome spec - give a preset ({', '.join(PRESETS)}), "
                          "a one-line genome or a genome file")
    text = spec.strip()
    if text in PRESETS:
        return PRESETS[text]
    if text.lower().endswith(GENOME_FILE_SUFFIXES) or _exists(text):
        return _from_path(Path(text))
    if not re.match(r"(stem\d|r\d|ir_|ds_)", text):
        raise GenomeError(f"unknown preset '{text}' - presets: {', '.join(PRESETS)}; "
                          "or give a one-line genome (stem16_...,r1_k3_...) or a genome file (.yaml, .json)")
    return genome_from_line(text)


def _from_path(path: Path) -> Genome:
    """Load a genome file, with a clear error when it is missing or a folder."""
    if path.is_dir():
        raise GenomeError(f"genome file '{path}' is a directory - give a .yaml or .json genome file")
    if not path.is_file():
        raise GenomeError(f"genome file '{path}' not found")
    return load_genome_file(path)


def _exists(text: str) -> bool:
    """True when ``text`` names an existing file or folder (False for text no path can be)."""
    try:
        return Path(text).exists()
    except (OSError, ValueError):
        return False
