"""The canonical one-line genome: ``stem16_head1536_w1_d0.2_nc1000,<block>,<block>,...``.

A block is ``r1_k3.5.7_a1_p1.1_s2_e6_i40_o80_se0.25_sw_sesw``: every field explicit, a
one-digit stride, the block activation (``re`` or ``sw``) and, when there is SE, its activation
(``sere`` or ``sesw``). The genome is normalized first (repeats merged), so one network has one
string.
"""

from __future__ import annotations

from ..basics.errors import GenomeError
from ..genome import BlockGene, Genome
from .tokens import BlockTokens, check_expansion, dotted, fmt_number, ones

CANON_KEYS = {"r": "repeats", "k": "depthwise kernel sizes", "a": "expansion conv",
              "p": "projection conv", "s": "stride", "e": "expansion ratio",
              "i": "input channels", "o": "output channels", "se": "SE ratio"}
ACT_TOKENS = {"re": "relu", "sw": "swish"}
SE_ACT_TOKENS = {"sere": "relu", "sesw": "swish"}
HEADER_KEYS = {"stem": "stem channels", "head": "head channels", "w": "width multiplier",
               "d": "dropout", "nc": "number of classes"}


def encode_canonical_block(gene: BlockGene) -> str:
    """BlockGene -> canonical block string."""
    parts = [f"r{gene.repeats}", f"k{dotted(gene.kernel_sizes)}", f"a{ones(gene.expand_groups)}",
             f"p{ones(gene.project_groups)}", f"s{gene.stride}", f"e{gene.expand_ratio}",
             f"i{gene.in_channels}", f"o{gene.out_channels}"]
    if gene.se_ratio > 0:
        parts.append(f"se{fmt_number(gene.se_ratio)}")
    parts.append("sw" if gene.act == "swish" else "re")
    if gene.se_ratio > 0:
        parts.append("sesw" if gene.se_act == "swish" else "sere")
    return "_".join(parts)


def decode_canonical_block(text: str, n: int = 1) -> BlockGene:
    """Canonical block string -> BlockGene."""
    t = BlockTokens(text, f"block {n}", CANON_KEYS, tuple(ACT_TOKENS) + tuple(SE_ACT_TOKENS))
    t.require("r", "k", "s", "e", "i", "o")
    acts = [f for f in t.flags if f in ACT_TOKENS]
    if len(acts) != 1:
        raise GenomeError(f"block {n}: '{text}' needs exactly one activation token: re or sw")
    act = ACT_TOKENS[acts[0]]
    se_acts = [f for f in t.flags if f in SE_ACT_TOKENS]
    if len(se_acts) > 1:
        raise t.error(se_acts[1], "give one SE activation: sere or sesw")
    se_act = SE_ACT_TOKENS[se_acts[0]] if se_acts else act
    gene = BlockGene(repeats=t.integer("r"), kernel_sizes=t.kernels(), expand_groups=t.groups("a"),
                     project_groups=t.groups("p"), stride=t.stride(1), expand_ratio=t.expand_ratio(),
                     in_channels=t.integer("i"), out_channels=t.integer("o"), se_ratio=t.se_ratio(),
                     act=act, se_act=se_act)
    return check_expansion(t, gene)


def encode_header(genome: Genome) -> str:
    """The global settings as ``stem16_head1536_w1_d0.2_nc1000``."""
    return (f"stem{genome.stem_channels}_head{genome.head_channels}_w{fmt_number(genome.width)}"
            f"_d{fmt_number(genome.dropout)}_nc{genome.num_classes}")


def decode_header(text: str) -> dict:
    """``stem16_head1536_...`` -> keyword arguments for Genome (absent keys keep defaults)."""
    t = BlockTokens(text, "genome header", HEADER_KEYS, ())
    fields = {"stem_channels": t.integer("stem"), "head_channels": t.integer("head"),
              "width": t.number("w", None), "dropout": t.number("d", None),
              "num_classes": t.integer("nc")}
    return {k: v for k, v in fields.items() if v is not None}


def encode_canonical(genome: Genome) -> str:
    """Genome -> the canonical one-line form (normalized)."""
    norm = genome.normalized()
    return ",".join([encode_header(norm)] + [encode_canonical_block(g) for g in norm.blocks])


def is_header(text: str) -> bool:
    """True when ``text`` is a canonical header part (starts with ``stem``)."""
    return text.startswith("stem")
