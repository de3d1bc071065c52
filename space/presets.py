"""MixNet-S, -M and -L as genomes, from the TensorFlow reference block strings."""

from __future__ import annotations

from .codecs.document import genome_from_blocks
from .basics.errors import GenomeError
from .genome import Genome

MIXNET_S_TF = [
    "r1_k3_a1_p1_s11_e1_i16_o16",
    "r1_k3_a1.1_p1.1_s22_e6_i16_o24",
    "r1_k3_a1.1_p1.1_s11_e3_i24_o24",
    "r1_k3.5.7_a1_p1_s22_e6_i24_o40_se0.5_sw",
    "r3_k3.5_a1.1_p1.1_s11_e6_i40_o40_se0.5_sw",
    "r1_k3.5.7_a1_p1.1_s22_e6_i40_o80_se0.25_sw",
    "r2_k3.5_a1_p1.1_s11_e6_i80_o80_se0.25_sw",
    "r1_k3.5.7_a1.1_p1.1_s11_e6_i80_o120_se0.5_sw",
    "r2_k3.5.7.9_a1.1_p1.1_s11_e3_i120_o120_se0.5_sw",
    "r1_k3.5.7.9.11_a1_p1_s22_e6_i120_o200_se0.5_sw",
    "r2_k3.5.7.9_a1_p1.1_s11_e6_i200_o200_se0.5_sw",
]

MIXNET_M_TF = [
    "r1_k3_a1_p1_s11_e1_i24_o24",
    "r1_k3.5.7_a1.1_p1.1_s22_e6_i24_o32",
    "r1_k3_a1.1_p1.1_s11_e3_i32_o32",
    "r1_k3.5.7.9_a1_p1_s22_e6_i32_o40_se0.5_sw",
    "r3_k3.5_a1.1_p1.1_s11_e6_i40_o40_se0.5_sw",
    "r1_k3.5.7_a1_p1_s22_e6_i40_o80_se0.25_sw",
    "r3_k3.5.7.9_a1.1_p1.1_s11_e6_i80_o80_se0.25_sw",
    "r1_k3_a1_p1_s11_e6_i80_o120_se0.5_sw",
    "r3_k3.5.7.9_a1.1_p1.1_s11_e3_i120_o120_se0.5_sw",
    "r1_k3.5.7.9_a1_p1_s22_e6_i120_o200_se0.5_sw",
    "r3_k3.5.7.9_a1_p1.1_s11_e6_i200_o200_se0.5_sw",
]


def _presets() -> dict[str, Genome]:
    """Build the preset table (TF global params: dropout 0.2 for S, 0.25 for M and L)."""
    s = genome_from_blocks(MIXNET_S_TF, dropout=0.2)
    m = genome_from_blocks(MIXNET_M_TF, dropout=0.25)
    return {"mixnet_s": s, "mixnet_m": m, "mixnet_l": m.with_changes(width=1.3)}


PRESETS: dict[str, Genome] = _presets()


def preset(name: str) -> Genome:
    """The preset genome ``name``; an unknown name lists the presets."""
    if name not in PRESETS:
        raise GenomeError(f"unknown preset '{name}' - presets: {', '.join(PRESETS)}")
    return PRESETS[name]
