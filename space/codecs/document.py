"""Genomes as documents: one-line text, and YAML/JSON files (structured, or lists of block strings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..basics.documents import load_document
from ..basics.errors import GenomeError, unknown_key_error
from ..genome import BlockGene, Genome
from .canonical import decode_canonical_block, decode_header, is_header
from .tf import decode_tf_block, looks_like_tf
from .timm import decode_timm_block, looks_like_timm

GLOBAL_KEYS = ("stem_channels", "head_channels", "width", "dropout", "num_classes")
GENE_KEYS = ("repeats", "kernel_sizes", "expand_groups", "project_groups", "stride",
             "expand_ratio", "in_channels", "out_channels", "se_ratio", "act", "se_act")
GENE_REQUIRED = ("kernel_sizes", "stride", "expand_ratio", "out_channels")


def gene_to_dict(gene: BlockGene) -> dict[str, Any]:
    """BlockGene -> a plain dict (YAML/JSON friendly)."""
    d = {k: getattr(gene, k) for k in GENE_KEYS}
    d["kernel_sizes"] = list(gene.kernel_sizes)
    return d


def genome_to_dict(genome: Genome) -> dict[str, Any]:
    """Genome -> a plain dict with every field explicit (the YAML codec)."""
    d: dict[str, Any] = {k: getattr(genome, k) for k in GLOBAL_KEYS}
    d["blocks"] = [gene_to_dict(g) for g in genome.blocks]
    return d


def genome_to_yaml(genome: Genome) -> str:
    """Genome -> YAML text, with the canonical one-line form as a comment."""
    return f"# {genome.to_string()}\n" + yaml.safe_dump(genome_to_dict(genome), sort_keys=False)


def _gene_from_dict(item: dict, n: int, in_channels: int) -> BlockGene:
    """A structured block (a mapping of GENE_KEYS) -> BlockGene."""
    for key in item:
        if key not in GENE_KEYS:
            raise unknown_key_error(str(key), GENE_KEYS, f"block {n}", GenomeError)
    for key in GENE_REQUIRED:
        if key not in item:
            raise GenomeError(f"block {n}: missing key '{key}'")
    kernels = item["kernel_sizes"]
    if isinstance(kernels, int):
        kernels = [kernels]
    if not isinstance(kernels, list):
        raise GenomeError(f"block {n}: kernel_sizes {kernels!r} - must be a list of odd integers >= 3")
    act = item.get("act", "relu")
    return BlockGene(repeats=item.get("repeats", 1), kernel_sizes=tuple(kernels),
                     expand_groups=item.get("expand_groups", 1),
                     project_groups=item.get("project_groups", 1), stride=item["stride"],
                     expand_ratio=item["expand_ratio"], in_channels=item.get("in_channels", in_channels),
                     out_channels=item["out_channels"], se_ratio=item.get("se_ratio", 0.0),
                     act=act, se_act=item.get("se_act", act))


def decode_block(item: Any, n: int, in_channels: int) -> BlockGene:
    """One block in any form: a mapping, or a TF, timm or canonical block string."""
    if isinstance(item, dict):
        return _gene_from_dict(item, n, in_channels)
    if not isinstance(item, str):
        raise GenomeError(f"block {n}: {item!r} is not a block string or mapping")
    if looks_like_timm(item):
        return decode_timm_block(item, in_channels, n)
    if looks_like_tf(item):
        return decode_tf_block(item, n)
    return decode_canonical_block(item, n)


def _stem_from_first_block(item: Any, n: int) -> int:
    """The stem width implied by the first block when the document gives none."""
    if isinstance(item, dict) and "in_channels" in item:
        return item["in_channels"]
    if isinstance(item, dict) and "out_channels" in item:
        return item["out_channels"]
    if isinstance(item, str) and not looks_like_timm(item):
        return decode_block(item, n, 0).in_channels
    if isinstance(item, str):
        return decode_timm_block(item, 1, n).out_channels
    raise GenomeError(f"block {n}: {item!r} is not a block string or mapping")


def genome_from_blocks(items: list, **globals_: Any) -> Genome:
    """A list of blocks (any form; nested lists are timm stages) plus global settings -> Genome.

    Without ``stem_channels`` the stem width is the first block's input channels (or, for a
    timm string, which has none, its output channels, as in every MixNet).
    """
    flat = [b for entry in items for b in (entry if isinstance(entry, list) else [entry])]
    if not flat:
        raise GenomeError("genome has no blocks")
    stem = globals_.pop("stem_channels", None)
    if stem is None:
        stem = _stem_from_first_block(flat[0], 1)
    genes: list[BlockGene] = []
    cin = stem
    for n, item in enumerate(flat, start=1):
        gene = decode_block(item, n, cin)
        genes.append(gene)
        cin = gene.out_channels
    return Genome(blocks=tuple(genes), stem_channels=stem, **globals_)


def genome_from_line(text: str) -> Genome:
    """A one-line genome: an optional canonical header, then comma-separated blocks."""
    parts = [p.strip() for p in text.strip().split(",") if p.strip()]
    header = decode_header(parts.pop(0)) if parts and is_header(parts[0]) else {}
    return genome_from_blocks(parts, **header)


def genome_from_document(doc: Any, source: str) -> Genome:
    """A loaded YAML/JSON document -> Genome.

    Accepted: a list of block strings (TF, timm or canonical; a list of lists is a timm
    arch_def), a one-line genome string, or a mapping with ``blocks`` and global keys.
    """
    if isinstance(doc, str):
        return genome_from_line(doc)
    if isinstance(doc, list):
        return genome_from_blocks(doc)
    if not isinstance(doc, dict):
        raise GenomeError(f"{source}: expected a list of blocks or a mapping with 'blocks'")
    allowed = GLOBAL_KEYS + ("blocks", "genome")
    for key in doc:
        if key not in allowed:
            raise unknown_key_error(str(key), allowed, source, GenomeError)
    globals_ = {k: doc[k] for k in GLOBAL_KEYS if k in doc}
    if "genome" in doc:
        base = genome_from_line(str(doc["genome"]))
        return base.with_changes(**globals_)
    if "blocks" not in doc or not isinstance(doc["blocks"], list):
        raise GenomeError(f"{source}: no 'blocks' list")
    return genome_from_blocks(doc["blocks"], **globals_)


def load_genome_file(path: Path) -> Genome:
    """Read a YAML or JSON genome file."""
    return genome_from_document(load_document(path, "genome file", GenomeError), str(path))
