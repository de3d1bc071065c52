"""The MixNet network built from a genome, with MindCV's parameter names."""

from __future__ import annotations

from mindspore import Tensor, nn

from space.genome import Genome

from .blocks import MixNetBlock
from .impl_select import resolve_impl
from .layers import ConvBnAct, dense_init, kernels_apply, spatial_mean

BN_MOMENTUM = 0.9  # MindSpore convention; equals PyTorch/timm momentum 0.1 and MindCV's default
BN_EPS = 1e-5
DEFAULT_IMPL = "auto"  # the fastest MixConv implementation measured on the device


class MixNet(nn.Cell):
    """stem_conv -> layers (one MixNetBlock per built block) -> head_conv -> pool -> dropout -> classifier.

    ``mixconv_impl`` selects how MixConv is computed: ``auto`` (default: the fastest measured on
    this device), ``split`` (MindCV's own computation), ``fused`` or ``custom`` (the stem and
    MixConv on C++ kernels, and fused kernels throughout at inference).
    """

    def __init__(self, genome: Genome, in_channels: int = 3, bn_momentum: float = BN_MOMENTUM,
                 bn_eps: float = BN_EPS, mixconv_impl: str = DEFAULT_IMPL) -> None:
        super().__init__()
        mixconv_impl = resolve_impl(mixconv_impl)
        self.genome = genome
        self.mixconv_impl = mixconv_impl
        stem = genome.stem_out
        self.stem_conv = ConvBnAct(in_channels, stem, 3, 2, "relu", bn_momentum, bn_eps, mixconv_impl)
        layers = genome.layers()
        self.layers = nn.SequentialCell([MixNetBlock(layer, bn_momentum, bn_eps, mixconv_impl) for layer in layers])
        last, head = layers[-1].out_channels, genome.head_channels
        self.head_conv = ConvBnAct(last, head, 1, 1, "relu", bn_momentum, bn_eps, mixconv_impl)
        self.dropout = nn.Dropout(p=genome.dropout) if genome.dropout > 0 else nn.Identity()
        self.classifier = nn.Dense(head, genome.num_classes)
        dense_init(self.classifier, genome.num_classes)
        self.fused_head = mixconv_impl == "custom"

    def forward_features(self, x: Tensor) -> Tensor:
        """Feature map before pooling: (N, head_channels, H/32, W/32)."""
        return self.head_conv(self.layers(self.stem_conv(x)))

    def forward_head(self, x: Tensor) -> Tensor:
        """Global average pool, dropout, classifier."""
        return self.classifier(self.dropout(spatial_mean(x)))

    def construct(self, x: Tensor) -> Tensor:
        """Logits (N, num_classes) for images (N, C, H, W)."""
        if self.fused_head and not self.training and kernels_apply(x):
            return self.classifier(self.head_conv.pooled(self.layers(self.stem_conv(x))))
        return self.forward_head(self.forward_features(x))
