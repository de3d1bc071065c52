"""The network to train: a MixNet from the ``model`` preset or a genome, with the config's overrides."""

from __future__ import annotations

from typing import Any, Protocol

import mindspore as ms
from mindspore import nn

from mixnet import MixNet, apply_overrides, create_model
from space import PRESETS, Genome, parse_genome
from space.basics.errors import UsageError

MINDCV_DROPOUT = 0.2


def resolve_genome(cfg: Any, genome: "Genome | str | None", num_classes: int) -> Genome:
    """The genome to build: ``genome`` (argument) or ``cfg.genome`` or the ``cfg.model`` preset.

    A preset is built as MindCV builds it (ReLU inside SE, dropout 0.2 unless ``drop_rate`` says
    otherwise); a genome keeps its own SE activation and dropout. ``width``, ``drop_rate``,
    ``se_act`` and ``num_classes`` then override.
    """
    spec = genome if genome is not None else cfg.genome
    if spec is None:
        if cfg.model not in PRESETS:
            raise UsageError(f"model '{cfg.model}' - this trainer builds MixNets: {', '.join(PRESETS)}; "
                             "or give a genome with --genome SPEC")
        base = PRESETS[cfg.model]
        se_act = cfg.se_act or "relu"
        dropout = MINDCV_DROPOUT if cfg.drop_rate is None else cfg.drop_rate
    else:
        base = parse_genome(spec)
        se_act = cfg.se_act
        dropout = cfg.drop_rate
    return apply_overrides(base, width=cfg.width, dropout=dropout, se_act=se_act, num_classes=num_classes)


def build_network(genome: Genome, in_channels: int, mixconv_impl: str) -> MixNet:
    """A freshly initialized MixNet of ``genome`` with the MixConv implementation ``mixconv_impl``."""
    return create_model(genome, in_channels=in_channels, mixconv_impl=mixconv_impl)


class Networks(Protocol):
    """What a run trains: how its networks are built, what changes in them before a step or a validation,
    and whether the run is validated (``validates``; True when not given: False leaves validation out, and
    ``best.ckpt`` then holds the last epoch's weights)."""

    validates: bool

    def build(self, genome: Genome, cfg: Any) -> nn.Cell:
        """A freshly initialized network for ``genome`` (with ``forward_features`` and ``classifier``)."""

    def before_step(self, net: nn.Cell, step: int) -> None:
        """Called before training step ``step`` (counted over the whole run)."""

    def before_validation(self, net: nn.Cell) -> None:
        """Called on the evaluation network before each validation."""


class StandAlone:
    """One network of one genome, the same at every step (the default), validated."""

    validates = True

    def build(self, genome: Genome, cfg: Any) -> nn.Cell:
        """The genome's MixNet with the recipe's input channels and MixConv implementation."""
        return build_network(genome, cfg.in_channels, cfg.mixconv_impl)

    def before_step(self, net: nn.Cell, step: int) -> None:
        """Nothing changes between steps."""

    def before_validation(self, net: nn.Cell) -> None:
        """Nothing changes before a validation."""


def apply_amp(cell: nn.Cell, level: str) -> nn.Cell:
    """``cell`` under automatic mixed precision ``level``, its parameter names left unchanged."""
    if level == "O0":
        return cell
    names = {id(p): p.name for p in cell.get_parameters()}
    wrapped = ms.amp.auto_mixed_precision(cell, level)
    for p in wrapped.get_parameters():
        if id(p) in names:
            p.name = names[id(p)]
    return wrapped
