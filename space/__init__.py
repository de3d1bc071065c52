"""The MixNet genome language: genes, codecs, presets, search spaces and the cost model."""

from .basics.errors import GenomeError, UsageError
from .genome import BlockGene, Genome, LayerSpec
from .parse import parse_genome
from .presets import PRESETS, preset

__all__ = ["BlockGene", "Genome", "GenomeError", "LayerSpec", "PRESETS", "UsageError",
           "parse_genome", "preset"]
