"""TensorFlow MixNet block strings: ``r1_k3.5.7_a1_p1.1_s22_e6_i40_o80_se0.25_sw``."""

from __future__ import annotations

from ..basics.errors import GenomeError
from ..genome import BlockGene
from .tokens import BlockTokens, check_expansion, dotted, fmt_number, ones

TF_KEYS = {"r": "repeats", "k": "depthwise kernel sizes", "a": "expansion conv",
           "p": "projection conv", "s": "stride", "e": "expansion ratio",
           "i": "input channels", "o": "output channels", "se": "SE ratio"}


def decode_tf_block(text: str, n: int = 1) -> BlockGene:
    """One TF block string -> BlockGene (``sw`` = swish, else relu; SE uses the block act)."""
    t = BlockTokens(text, f"block {n}", TF_KEYS, ("sw", "noskip"))
    if "noskip" in t.flags:
        raise t.error("noskip", "blocks without a skip connection are not supported")
    t.require("r", "k", "s", "e", "i", "o")
    act = "swish" if "sw" in t.flags else "relu"
    gene = BlockGene(repeats=t.integer("r"), kernel_sizes=t.kernels(), expand_groups=t.groups("a"),
                     project_groups=t.groups("p"), stride=t.stride(2), expand_ratio=t.expand_ratio(),
                     in_channels=t.integer("i"), out_channels=t.integer("o"), se_ratio=t.se_ratio(),
                     act=act, se_act=act)
    return check_expansion(t, gene)


def encode_tf_block(gene: BlockGene, n: int = 1) -> str:
    """BlockGene -> TF block string (raises when the SE act differs from the block act)."""
    if gene.se_ratio > 0 and gene.se_act != gene.act:
        raise GenomeError(f"block {n}: TF block strings cannot hold an SE activation "
                          f"({gene.se_act}) other than the block's ({gene.act}); use the canonical form")
    parts = [f"r{gene.repeats}", f"k{dotted(gene.kernel_sizes)}", f"a{ones(gene.expand_groups)}",
             f"p{ones(gene.project_groups)}", f"s{gene.stride}{gene.stride}", f"e{gene.expand_ratio}",
             f"i{gene.in_channels}", f"o{gene.out_channels}"]
    if gene.se_ratio > 0:
        parts.append(f"se{fmt_number(gene.se_ratio)}")
    if gene.act == "swish":
        parts.append("sw")
    return "_".join(parts)


def looks_like_tf(text: str) -> bool:
    """True for a block string with TF's two-digit stride token."""
    return any(len(tok) == 3 and tok[0] == "s" and tok[1:].isdigit() for tok in text.split("_"))
