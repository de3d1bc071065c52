"""Lossless text forms of a genome: TF block strings, timm arch_def, canonical line, YAML."""

from .canonical import decode_canonical_block, encode_canonical, encode_canonical_block
from .document import (genome_from_blocks, genome_from_document, genome_from_line, genome_to_dict,
                       genome_to_yaml, load_genome_file)
from .tf import decode_tf_block, encode_tf_block
from .timm import decode_arch_def, decode_timm_block, encode_arch_def, encode_timm_block

__all__ = [
    "decode_arch_def", "decode_canonical_block", "decode_tf_block", "decode_timm_block",
    "encode_arch_def", "encode_canonical", "encode_canonical_block", "encode_tf_block",
    "encode_timm_block", "genome_from_blocks", "genome_from_document", "genome_from_line",
    "genome_to_dict", "genome_to_yaml", "load_genome_file", "to_tf_strings",
]


def to_tf_strings(genome) -> list[str]:
    """Genome -> its list of TF block strings."""
    return [encode_tf_block(g, n) for n, g in enumerate(genome.blocks, start=1)]
