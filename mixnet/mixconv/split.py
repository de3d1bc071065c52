"""``split``: MindCV's own computation with MindSpore's operators, bit for bit.

MixConv and grouped 1x1 convs run one conv per channel group on its slice and concatenate; every
other layer runs its cells in order.
"""

from __future__ import annotations

from mindspore import Tensor, nn, ops

from space.genome import LayerSpec

from ..layers import activation, spatial_mean
from .base import Compute, Implementation


def each_group(convs: nn.Cell, bounds: "list[tuple[int, int]]", x: Tensor) -> Tensor:
    """Each group's conv on its channel slice ``x[:, start:end]``, concatenated; one conv takes all of ``x``."""
    if len(bounds) == 1:
        return convs(x)
    return ops.concat([conv(x[:, start:end]) for conv, (start, end) in zip(convs, bounds)], axis=1)


class GroupedConv(Compute):
    """A grouped 1x1 conv as one conv per group."""

    def __call__(self, layer: nn.Cell, x: Tensor) -> Tensor:
        """The groups' convs of ``x``, concatenated."""
        return each_group(layer.grouped_conv, layer.bounds, x)


class MixConv(Compute):
    """MixConv as one depthwise conv per kernel group."""

    def __call__(self, layer: nn.Cell, x: Tensor) -> Tensor:
        """The kernel groups' depthwise convs of ``x``, concatenated."""
        return each_group(layer.mixed_depthwise_conv, layer.bounds, x)


class ConvBnAct(Compute):
    """Conv, BatchNorm and activation cell by cell."""

    def __call__(self, layer: nn.Cell, x: Tensor) -> Tensor:
        """act(bn(conv(x)))."""
        cells = layer.cell_list
        return cells[2](cells[1](cells[0](x)))


class SqueezeExcite(Compute):
    """Squeeze-and-excitation cell by cell."""

    def __call__(self, layer: nn.Cell, x: Tensor) -> Tensor:
        """``x`` times its gate."""
        s = spatial_mean(x, keep_dims=True)
        return x * layer.gate(layer.conv_expand(layer.act(layer.conv_reduce(s))))


class Block(Compute):
    """A block's ``convs`` in order, plus the input when the block is residual."""

    def __call__(self, block: nn.Cell, x: Tensor) -> Tensor:
        """The block's output."""
        out = block.convs(x)
        if block.residual:
            return x + out
        return out


class Network(Compute):
    """Features (stem, blocks, head), then global average pool, dropout and classifier."""

    def __call__(self, net: nn.Cell, x: Tensor) -> Tensor:
        """Logits."""
        return net.forward_head(net.forward_features(x))


class Split(Implementation):
    """MindCV's computation with MindSpore's operators."""

    name = "split"

    def activation(self, name: str) -> nn.Cell:
        """MindSpore's ReLU or SiLU."""
        return activation(name)

    def grouped_conv(self, cin: int, cout: int, groups: int) -> Compute:
        """One conv per group."""
        return GroupedConv()

    def conv_bn_act(self, kernel: int, stride: int, act: str, eps: float) -> Compute:
        """The three cells in order."""
        return ConvBnAct()

    def mixconv(self, splits: "list[int]", kernel_sizes: tuple[int, ...], stride: int) -> Compute:
        """One depthwise conv per kernel group."""
        return MixConv()

    def squeeze_excite(self, act: str) -> Compute:
        """Pool, reduce, activation, expand, sigmoid gate."""
        return SqueezeExcite()

    def block(self, layer: LayerSpec, eps: float) -> Compute:
        """The block's cells in order (+ skip)."""
        return Block()

    def network(self, head_act: str, eps: float) -> Compute:
        """Features, then the classifier head."""
        return Network()
