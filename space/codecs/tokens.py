"""Reading and writing the ``_``-separated tokens shared by every block-string dialect."""

from __future__ import annotations

import re

from ..basics.errors import GenomeError
from ..genome import BlockGene

_TOKEN = re.compile(r"([a-z]+)(\d[\d.]*)")


def fmt_number(value: float) -> str:
    """Shortest text for a number: ``6``, ``0.25``, ``1.3``."""
    return f"{value:g}"


def dotted(values: tuple[int, ...]) -> str:
    """``(3, 5, 7)`` -> ``'3.5.7'``."""
    return ".".join(str(v) for v in values)


def ones(groups: int) -> str:
    """A 1x1 group list: 2 groups -> ``'1.1'``."""
    return ".".join("1" * groups)


class BlockTokens:
    """The tokens of one block string, read with messages that name the block and token."""

    def __init__(self, text: str, where: str, allowed: dict[str, str], flags: tuple[str, ...]) -> None:
        self.text, self.where = text, where
        self.values: dict[str, tuple[str, str]] = {}
        self.flags: list[str] = []
        if not isinstance(text, str) or not text.strip():
            raise GenomeError(f"{where}: empty string")
        for tok in text.strip().split("_"):
            if tok in flags:
                if tok in self.flags:
                    raise self.error(tok, "given twice")
                self.flags.append(tok)
                continue
            m = _TOKEN.fullmatch(tok)
            if not m or m.group(1) not in allowed:
                names = ", ".join(list(allowed) + list(flags))
                raise self.error(tok, f"unknown token; allowed: {names}")
            if m.group(1) in self.values:
                raise self.error(tok, "given twice")
            self.values[m.group(1)] = (tok, m.group(2))
        self.allowed = allowed

    def error(self, tok: str, what: str) -> GenomeError:
        """A GenomeError naming this block and ``tok``."""
        return GenomeError(f"{self.where}: token '{tok}' - {what}")

    def require(self, *keys: str) -> None:
        """Raise when one of ``keys`` is missing."""
        for key in keys:
            if key not in self.values:
                raise GenomeError(f"{self.where}: '{self.text}' has no '{key}' token "
                                  f"({self.allowed[key]})")

    def integer(self, key: str, default: int | None = None, minimum: int = 1) -> int:
        """The integer value of ``key`` (``default`` when absent)."""
        if key not in self.values:
            return default  # type: ignore[return-value]
        tok, val = self.values[key]
        if not val.isdigit() or int(val) < minimum:
            raise self.error(tok, f"{self.allowed[key]} must be an integer >= {minimum}")
        return int(val)

    def number(self, key: str, default: float = 0.0) -> float:
        """The float value of ``key`` (``default`` when absent)."""
        if key not in self.values:
            return default
        tok, val = self.values[key]
        try:
            return float(val)
        except ValueError:
            raise self.error(tok, f"{self.allowed[key]} must be a number") from None

    def kernels(self, key: str = "k") -> tuple[int, ...]:
        """A dotted list of depthwise kernel sizes, each odd and >= 3."""
        tok, val = self.values[key]
        parts = val.split(".")
        if not all(p.isdigit() and int(p) >= 3 and int(p) % 2 == 1 for p in parts):
            raise self.error(tok, "kernel sizes must be odd integers >= 3")
        if len(set(parts)) != len(parts):
            raise self.error(tok, "each kernel size may appear once")
        return tuple(int(p) for p in parts)

    def groups(self, key: str) -> int:
        """A dotted list of 1x1 kernels (``1.1``): its length is the number of groups."""
        if key not in self.values:
            return 1
        tok, val = self.values[key]
        parts = val.split(".")
        if any(p != "1" for p in parts):
            raise self.error(tok, f"{self.allowed[key]} kernels must be 1 ({key}1, {key}1.1, ...)")
        return len(parts)

    def expand_ratio(self) -> int:
        """The expansion ratio: an integer >= 1 (``e6``; timm's ``e6.0`` is accepted too)."""
        tok, val = self.values["e"]
        try:
            ratio = float(val)
        except ValueError:
            ratio = -1.0
        if ratio < 1 or ratio != int(ratio):
            raise self.error(tok, "expansion ratio must be an integer >= 1")
        return int(ratio)

    def se_ratio(self) -> float:
        """The SE ratio in [0, 1] (0 when absent)."""
        ratio = self.number("se")
        if not 0 <= ratio <= 1:
            raise self.error(self.values["se"][0], "SE ratio must be in [0, 1]")
        return ratio

    def stride(self, digits: int) -> int:
        """The stride: ``s2`` (one digit) or ``s22`` (TF's pair of equal digits)."""
        tok, val = self.values["s"]
        allowed = ("1", "2") if digits == 1 else ("11", "22")
        if val not in allowed:
            raise self.error(tok, f"stride must be one of {', '.join('s' + a for a in allowed)}")
        return int(val[0])


def check_expansion(tokens: BlockTokens, gene: BlockGene) -> BlockGene:
    """Reject expansion groups on a block that has no expansion conv."""
    if gene.expand_ratio == 1 and gene.expand_groups != 1:
        tok = tokens.values["a"][0]
        raise tokens.error(tok, "a block with e1 has no expansion conv; use a1")
    return gene
