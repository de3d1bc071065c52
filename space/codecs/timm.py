"""timm ``arch_def`` strings: ``ir_r1_k3.5.7_p1.1_s2_e6_c80_se0.25_nsw`` and ``ds_...``."""

from __future__ import annotations

from ..basics.errors import GenomeError
from ..genome import BlockGene
from .tokens import BlockTokens, check_expansion, dotted, fmt_number, ones

TIMM_KEYS = {"r": "repeats", "k": "depthwise kernel sizes", "a": "expansion conv",
             "p": "projection conv", "s": "stride", "e": "expansion ratio",
             "c": "output channels", "se": "SE ratio"}
BLOCK_TYPES = ("ir", "ds")


def decode_timm_block(text: str, in_channels: int, n: int = 1) -> BlockGene:
    """One timm block string -> BlockGene; timm chains ``in_channels`` from the previous block."""
    if not isinstance(text, str) or "_" not in text:
        raise GenomeError(f"block {n}: '{text}' is not a timm block string (ir_... or ds_...)")
    kind, rest = text.split("_", 1)
    if kind not in BLOCK_TYPES:
        raise GenomeError(f"block {n}: block type '{kind}' - allowed: {', '.join(BLOCK_TYPES)}")
    t = BlockTokens(rest, f"block {n}", TIMM_KEYS, ("nre", "nsw", "noskip"))
    if "noskip" in t.flags:
        raise t.error("noskip", "blocks without a skip connection are not supported")
    if "nre" in t.flags and "nsw" in t.flags:
        raise t.error("nsw", "give one activation: nre or nsw")
    t.require("r", "k", "s", "c")
    ratio = t.expand_ratio() if "e" in t.values else 1
    if kind == "ds" and ratio != 1:
        raise t.error(t.values["e"][0], "a ds block has no expansion; use e1 or an ir block")
    if kind == "ir" and ratio == 1:
        raise GenomeError(f"block {n}: token 'ir' - an ir block with e1 has a 1x1 expansion conv "
                          "that MixNet blocks do not; use a ds block")
    act = "swish" if "nsw" in t.flags else "relu"
    gene = BlockGene(repeats=t.integer("r"), kernel_sizes=t.kernels(), expand_groups=t.groups("a"),
                     project_groups=t.groups("p"), stride=t.stride(1), expand_ratio=ratio,
                     in_channels=in_channels, out_channels=t.integer("c"), se_ratio=t.se_ratio(),
                     act=act, se_act=act)
    return check_expansion(t, gene)


def encode_timm_block(gene: BlockGene, n: int = 1) -> str:
    """BlockGene -> timm block string (raises when the SE act differs from the block act)."""
    if gene.se_ratio > 0 and gene.se_act != gene.act:
        raise GenomeError(f"block {n}: timm block strings cannot hold an SE activation "
                          f"({gene.se_act}) other than the block's ({gene.act}); use the canonical form")
    parts = ["ds" if gene.expand_ratio == 1 else "ir", f"r{gene.repeats}", f"k{dotted(gene.kernel_sizes)}"]
    if gene.expand_groups > 1:
        parts.append(f"a{ones(gene.expand_groups)}")
    if gene.project_groups > 1:
        parts.append(f"p{ones(gene.project_groups)}")
    parts += [f"s{gene.stride}", f"e{gene.expand_ratio}", f"c{gene.out_channels}"]
    if gene.se_ratio > 0:
        parts.append(f"se{fmt_number(gene.se_ratio)}")
    if gene.act == "swish":
        parts.append("nsw")
    return "_".join(parts)


def decode_arch_def(arch_def: list, stem_channels: int) -> list[BlockGene]:
    """A timm arch_def (a list of stages, each a list of strings; or a flat list) -> genes."""
    flat = [s for stage in arch_def for s in (stage if isinstance(stage, list) else [stage])]
    genes: list[BlockGene] = []
    cin = stem_channels
    for n, text in enumerate(flat, start=1):
        gene = decode_timm_block(text, cin, n)
        genes.append(gene)
        cin = gene.out_channels
    return genes


def encode_arch_def(genes: tuple[BlockGene, ...]) -> list[list[str]]:
    """Genes -> timm arch_def; a new stage starts wherever the output channels change."""
    stages: list[list[str]] = []
    prev_out = None
    for n, gene in enumerate(genes, start=1):
        if gene.out_channels != prev_out:
            stages.append([])
        stages[-1].append(encode_timm_block(gene, n))
        prev_out = gene.out_channels
    return stages


def looks_like_timm(text: str) -> bool:
    """True for a string that starts with a timm block type."""
    return isinstance(text, str) and text.split("_", 1)[0] in BLOCK_TYPES
