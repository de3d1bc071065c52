"""``create_model``: a MixNet from anything ``parse_genome`` accepts, with overrides."""

from __future__ import annotations

from typing import Any

from space import Genome, parse_genome
from space.basics.errors import UsageError

from .network import BN_EPS, BN_MOMENTUM, DEFAULT_IMPL, MixNet

GENOME_OVERRIDES = ("stem_channels", "head_channels", "width", "dropout", "num_classes")
BUILD_OVERRIDES = ("se_act", "act", "bn_momentum", "bn_eps", "in_channels", "mixconv_impl")


def apply_overrides(genome: Genome, **overrides: Any) -> Genome:
    """The genome with global fields replaced and, for ``se_act``/``act``, every block changed."""
    for key in overrides:
        if key not in GENOME_OVERRIDES + ("se_act", "act"):
            raise UsageError(f"unknown override '{key}' - allowed: "
                             f"{', '.join(GENOME_OVERRIDES + BUILD_OVERRIDES)}")
    blocks = genome.blocks
    for key in ("act", "se_act"):
        if overrides.get(key) is not None:
            blocks = tuple(g.with_changes(**{key: overrides[key]}) for g in blocks)
    fields = {k: v for k, v in overrides.items() if k in GENOME_OVERRIDES and v is not None}
    return genome.with_changes(blocks=blocks, **fields)


def create_model(spec: "str | Genome", num_classes: int | None = None, **overrides: Any) -> MixNet:
    """Build a MixNet.

    ``spec`` is a preset (``mixnet_s``), a one-line genome, a genome file or a Genome.
    ``num_classes`` defaults to the genome's. Overrides: ``stem_channels``, ``head_channels``,
    ``width``, ``dropout``, ``se_act`` (``relu`` as in MindCV, ``swish`` as in TF/timm), ``act``,
    ``bn_momentum`` (MindSpore convention, default 0.9), ``bn_eps`` (default 1e-5), ``in_channels``,
    ``mixconv_impl``: ``auto`` (the default: the fastest measured on this device), ``split``
    (MindCV's computation, bit for bit), ``padded`` (MixConv as one depthwise conv) or ``kernels``
    (C++ kernels, CPU), ``fused`` and ``custom`` being accepted as ``padded`` and ``kernels``, or an
    implementation from ``mixnet.mixconv.implementation``. It changes speed, never parameters, and
    outputs only within float rounding (which a deep random network can amplify, so exact
    comparisons with MindCV name ``split``).
    """
    build = {k: overrides.pop(k) for k in ("bn_momentum", "bn_eps", "in_channels", "mixconv_impl")
             if k in overrides}
    genome = apply_overrides(parse_genome(spec), num_classes=num_classes, **overrides)
    return MixNet(genome, in_channels=build.get("in_channels", 3),
                  bn_momentum=build.get("bn_momentum", BN_MOMENTUM), bn_eps=build.get("bn_eps", BN_EPS),
                  mixconv_impl=build.get("mixconv_impl") or DEFAULT_IMPL)
