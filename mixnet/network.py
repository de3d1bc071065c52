"""The MixNet network built from a genome, with MindCV's parameter names."""

from __future__ import annotations

from mindspore import Tensor, nn, ops

from space.genome import Genome

from .blocks import MixNetBlock
from .layers import batch_norm, conv2d, dense_init

BN_MOMENTUM = 0.9  # MindSpore convention; equals PyTorch/timm momentum 0.1 and MindCV's default
BN_EPS = 1e-5


class MixNet(nn.Cell):
    """stem_conv -> layers (one MixNetBlock per built block) -> head_conv -> pool -> dropout -> classifier."""

    def __init__(self, genome: Genome, in_channels: int = 3, bn_momentum: float = BN_MOMENTUM,
                 bn_eps: float = BN_EPS) -> None:
        super().__init__()
        self.genome = genome
        stem = genome.stem_out
        self.stem_conv = nn.SequentialCell([conv2d(in_channels, stem, 3, stride=2),
                                            batch_norm(stem, bn_momentum, bn_eps), nn.ReLU()])
        layers = genome.layers()
        self.layers = nn.SequentialCell([MixNetBlock(layer, bn_momentum, bn_eps) for layer in layers])
        last, head = layers[-1].out_channels, genome.head_channels
        self.head_conv = nn.SequentialCell([conv2d(last, head, 1), batch_norm(head, bn_momentum, bn_eps),
                                            nn.ReLU()])
        self.dropout = nn.Dropout(p=genome.dropout) if genome.dropout > 0 else nn.Identity()
        self.classifier = nn.Dense(head, genome.num_classes)
        dense_init(self.classifier, genome.num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        """Feature map before pooling: (N, head_channels, H/32, W/32)."""
        return self.head_conv(self.layers(self.stem_conv(x)))

    def forward_head(self, x: Tensor) -> Tensor:
        """Global average pool, dropout, classifier."""
        return self.classifier(self.dropout(ops.mean(x, axis=(2, 3))))

    def construct(self, x: Tensor) -> Tensor:
        """Logits (N, num_classes) for images (N, C, H, W)."""
        return self.forward_head(self.forward_features(x))
