"""The MixNet genome: block genes, global settings, validation and expansion into layers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from .basics.errors import GenomeError
from .rounding import round_channels, split_channels

ACTIVATIONS = ("relu", "swish")


@dataclass(frozen=True)
class BlockGene:
    """One row of a MixNet block table: ``repeats`` copies of an inverted-residual block.

    Channels are the unscaled ones; the genome's width multiplier rounds them. The first copy
    takes ``in_channels`` and ``stride``, the others ``out_channels`` and stride 1.
    ``expand_ratio == 1`` means no expansion conv (a depthwise-separable block).
    """

    repeats: int
    kernel_sizes: tuple[int, ...]
    expand_groups: int
    project_groups: int
    stride: int
    expand_ratio: int
    in_channels: int
    out_channels: int
    se_ratio: float = 0.0
    act: str = "relu"
    se_act: str = "relu"

    def with_changes(self, **changes) -> "BlockGene":
        """A copy of this gene with some fields replaced."""
        return replace(self, **changes)


@dataclass(frozen=True)
class LayerSpec:
    """One built block: a block gene copy with channels after width rounding."""

    index: int
    gene_index: int
    kernel_sizes: tuple[int, ...]
    expand_groups: int
    project_groups: int
    stride: int
    expand_ratio: int
    in_channels: int
    out_channels: int
    mid_channels: int
    se_channels: int
    act: str
    se_act: str

    @property
    def residual(self) -> bool:
        """True when the block adds its input to its output."""
        return self.stride == 1 and self.in_channels == self.out_channels


@dataclass(frozen=True)
class Genome:
    """A whole MixNet: block genes plus stem, head, width multiplier, dropout and classes."""

    blocks: tuple[BlockGene, ...]
    stem_channels: int = 16
    head_channels: int = 1536
    width: float = 1.0
    dropout: float = 0.2
    num_classes: int = 1000

    def __post_init__(self) -> None:
        validate(self)

    def with_changes(self, **changes) -> "Genome":
        """A copy of this genome with some global fields replaced (validated again)."""
        return replace(self, **changes)

    def layers(self) -> list[LayerSpec]:
        """Expand repeats and apply the width multiplier: one entry per built block."""
        out: list[LayerSpec] = []
        for gi, gene in enumerate(self.blocks):
            cin = round_channels(gene.in_channels, self.width)
            cout = round_channels(gene.out_channels, self.width)
            for r in range(gene.repeats):
                lin = cin if r == 0 else cout
                se_ch = max(1, int(lin * gene.se_ratio)) if gene.se_ratio > 0 else 0
                out.append(LayerSpec(
                    index=len(out), gene_index=gi, kernel_sizes=gene.kernel_sizes,
                    expand_groups=gene.expand_groups, project_groups=gene.project_groups,
                    stride=gene.stride if r == 0 else 1, expand_ratio=gene.expand_ratio,
                    in_channels=lin, out_channels=cout, mid_channels=lin * gene.expand_ratio,
                    se_channels=se_ch, act=gene.act, se_act=gene.se_act))
        return out

    @property
    def stem_out(self) -> int:
        """Stem output channels after width rounding."""
        return round_channels(self.stem_channels, self.width)

    def normalized(self) -> "Genome":
        """The same network with every block gene at repeats 1, then equal neighbours merged.

        Two genomes that build the same network normalize to the same genome.
        """
        merged: list[BlockGene] = []
        for gene in self.single_genes():
            prev = merged[-1] if merged else None
            if prev is not None and _continues(prev, gene):
                merged[-1] = prev.with_changes(repeats=prev.repeats + 1)
            else:
                merged.append(gene)
        return replace(self, blocks=tuple(merged))

    def single_genes(self) -> list[BlockGene]:
        """One gene per built block (repeats 1), channels unscaled."""
        singles: list[BlockGene] = []
        for gene in self.blocks:
            singles.append(gene.with_changes(repeats=1))
            for _ in range(gene.repeats - 1):
                singles.append(gene.with_changes(repeats=1, stride=1, in_channels=gene.out_channels))
        return singles

    def to_string(self) -> str:
        """The canonical one-line form (see ``space.codecs.canonical``)."""
        from .codecs.canonical import encode_canonical
        return encode_canonical(self)

    def key(self) -> str:
        """A stable 16-hex-digit hash of the canonical form, for de-duplication."""
        return hashlib.sha256(self.to_string().encode()).hexdigest()[:16]


def _continues(prev: BlockGene, gene: BlockGene) -> bool:
    """True when ``gene`` is one more repeat of ``prev``."""
    return (gene.stride == 1 and gene.in_channels == prev.out_channels
            and gene.out_channels == prev.out_channels
            and gene.with_changes(repeats=prev.repeats, stride=prev.stride,
                                  in_channels=prev.in_channels) == prev)


def _check_gene(n: int, gene: BlockGene) -> None:
    """Raise GenomeError naming block ``n`` (1-based) when a field is out of range."""
    def bad(what: str) -> GenomeError:
        return GenomeError(f"block {n}: {what}")

    if not isinstance(gene.repeats, int) or gene.repeats < 1:
        raise bad(f"repeats {gene.repeats!r} - must be an integer >= 1")
    if not gene.kernel_sizes:
        raise bad("no kernel sizes - give at least one, e.g. k3 or k3.5.7")
    for k in gene.kernel_sizes:
        if not isinstance(k, int) or k < 3 or k % 2 == 0:
            raise bad(f"kernel size {k!r} - kernel sizes must be odd integers >= 3")
    if len(set(gene.kernel_sizes)) != len(gene.kernel_sizes):
        raise bad(f"kernel sizes {gene.kernel_sizes} - each kernel size may appear once")
    for name in ("expand_groups", "project_groups"):
        v = getattr(gene, name)
        if not isinstance(v, int) or v < 1:
            raise bad(f"{name} {v!r} - must be an integer >= 1")
    if gene.stride not in (1, 2):
        raise bad(f"stride {gene.stride!r} - stride must be 1 or 2")
    if not isinstance(gene.expand_ratio, int) or gene.expand_ratio < 1:
        raise bad(f"expand ratio {gene.expand_ratio!r} - must be an integer >= 1")
    if gene.expand_ratio == 1 and gene.expand_groups != 1:
        raise bad(f"expand_groups {gene.expand_groups} - a block with expand ratio 1 has no "
                  "expansion conv; use 1")
    for name in ("in_channels", "out_channels"):
        v = getattr(gene, name)
        if not isinstance(v, int) or v < 1:
            raise bad(f"{name} {v!r} - must be an integer >= 1")
    if not isinstance(gene.se_ratio, (int, float)) or not 0 <= gene.se_ratio <= 1:
        raise bad(f"SE ratio {gene.se_ratio!r} - must be a number in [0, 1]")
    for name in ("act", "se_act"):
        if getattr(gene, name) not in ACTIVATIONS:
            raise bad(f"{name} {getattr(gene, name)!r} - allowed: {', '.join(ACTIVATIONS)}")


def _check_layer(layer: LayerSpec) -> None:
    """Raise GenomeError when a layer's channels cannot be split into its groups."""
    n = layer.gene_index + 1
    checks = (("kernel groups", layer.mid_channels, len(layer.kernel_sizes)),
              ("expansion groups", layer.in_channels, layer.expand_groups if layer.expand_ratio > 1 else 1),
              ("expansion groups", layer.mid_channels, layer.expand_groups if layer.expand_ratio > 1 else 1),
              ("projection groups", layer.mid_channels, layer.project_groups),
              ("projection groups", layer.out_channels, layer.project_groups))
    for what, channels, groups in checks:
        if min(split_channels(channels, groups)) < 1:
            raise GenomeError(f"block {n}: {channels} channels cannot be split into {groups} {what}")


def validate(genome: Genome) -> None:
    """Raise GenomeError for the first field of ``genome`` that is out of range."""
    if not genome.blocks:
        raise GenomeError("genome has no blocks")
    for name in ("stem_channels", "head_channels", "num_classes"):
        v = getattr(genome, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise GenomeError(f"{name} {v!r} - must be an integer >= 1")
    if not isinstance(genome.width, (int, float)) or not 0 < genome.width <= 8:
        raise GenomeError(f"width {genome.width!r} - must be a number in (0, 8]")
    if not isinstance(genome.dropout, (int, float)) or not 0 <= genome.dropout < 1:
        raise GenomeError(f"dropout {genome.dropout!r} - must be a number in [0, 1)")
    for n, gene in enumerate(genome.blocks, start=1):
        _check_gene(n, gene)
    prev_out, prev_name = genome.stem_channels, "the stem"
    for n, gene in enumerate(genome.blocks, start=1):
        if gene.in_channels != prev_out:
            raise GenomeError(f"block {n}: input channels {gene.in_channels} do not match "
                              f"{prev_out} output channels of {prev_name}")
        prev_out, prev_name = gene.out_channels, f"block {n}"
    for layer in genome.layers():
        _check_layer(layer)
