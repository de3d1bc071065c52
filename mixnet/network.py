"""The MixNet network built from a genome, with MindCV's parameter names."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from mindspore import Tensor, nn

from space.genome import Genome

from .blocks import MixNetBlock
from .layers import ConvBnAct, dense_init, spatial_mean
from .mixconv import implementation
from .mixconv.kernels import computed_impl

if TYPE_CHECKING:
    from .mixconv.base import Implementation

BN_MOMENTUM = 0.9  # MindSpore convention; equals PyTorch/timm momentum 0.1 and MindCV's default
BN_EPS = 1e-5
DEFAULT_IMPL = "auto"  # the fastest MixConv implementation measured on the device
HEAD_ACT = "relu"


class Classifier(nn.Cell):
    """Global average pool, dropout and dense layer of a MixNet, on its head feature map.

    It holds the network's own cells without renaming their parameters (``auto_prefix=False``).
    """

    def __init__(self, dropout: nn.Cell, dense: nn.Dense) -> None:
        super().__init__(auto_prefix=False)
        self.dropout = dropout
        self.dense = dense

    def construct(self, x: Tensor) -> Tensor:
        """Logits from the head feature map."""
        return self.dense(self.dropout(spatial_mean(x)))


class NetworkParts(NamedTuple):
    """A MixNet's cells in order: input -> stem -> blocks -> head -> classifier -> logits."""

    stem: nn.Cell
    blocks: tuple[nn.Cell, ...]
    head: nn.Cell
    classifier: nn.Cell


class MixNet(nn.Cell):
    """stem_conv -> layers (one MixNetBlock per built block) -> head_conv -> pool -> dropout -> classifier.

    ``mixconv_impl`` is how MixConv (and the rest) is computed, a name or an implementation from
    ``mixnet.mixconv.implementation``: ``auto`` (default: the fastest measured on this device),
    ``split`` (MindCV's own computation), ``padded`` or ``kernels`` (C++ kernels, CPU);
    ``fused`` and ``custom`` are accepted as ``padded`` and ``kernels``.
    """

    def __init__(self, genome: Genome, in_channels: int = 3, bn_momentum: float = BN_MOMENTUM,
                 bn_eps: float = BN_EPS, mixconv_impl: "str | Implementation" = DEFAULT_IMPL) -> None:
        super().__init__()
        impl = implementation(mixconv_impl)
        self.genome = genome
        self.impl = impl
        stem = genome.stem_out
        self.stem_conv = ConvBnAct(in_channels, stem, 3, 2, "relu", bn_momentum, bn_eps, impl)
        layers = genome.layers()
        self.layers = nn.SequentialCell([MixNetBlock(layer, bn_momentum, bn_eps, impl) for layer in layers])
        last, head = layers[-1].out_channels, genome.head_channels
        self.head_conv = ConvBnAct(last, head, 1, 1, HEAD_ACT, bn_momentum, bn_eps, impl)
        self.dropout = nn.Dropout(p=genome.dropout) if genome.dropout > 0 else nn.Identity()
        self.classifier = nn.Dense(head, genome.num_classes)
        dense_init(self.classifier, genome.num_classes)
        self.compute = impl.network(HEAD_ACT, bn_eps)

    @property
    def mixconv_impl(self) -> str:
        """The implementation the network computes with, e.g. ``kernels``, or ``kernels->split (float16)``
        under float16 mixed precision, where the kernels fall back to MindSpore's operators."""
        return computed_impl(self, self.impl.name)

    def parts(self) -> NetworkParts:
        """The stem, the blocks, the head conv and the classifier (pool, dropout, dense) as cells."""
        return NetworkParts(self.stem_conv, tuple(self.layers), self.head_conv,
                            Classifier(self.dropout, self.classifier))

    def forward_features(self, x: Tensor) -> Tensor:
        """Feature map before pooling: (N, head_channels, H/32, W/32)."""
        return self.head_conv(self.layers(self.stem_conv(x)))

    def forward_head(self, x: Tensor) -> Tensor:
        """Global average pool, dropout, classifier."""
        return self.classifier(self.dropout(spatial_mean(x)))

    def construct(self, x: Tensor) -> Tensor:
        """Logits (N, num_classes) for images (N, C, H, W)."""
        return self.compute(self, x)
