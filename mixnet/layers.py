"""MixNet building layers in MindSpore: grouped 1x1 conv, mixed depthwise conv, SE, activations.

Attribute names follow MindCV's ``mixnet.py`` so checkpoints load by name: ``grouped_conv``,
``mixed_depthwise_conv``, ``conv_reduce``, ``conv_expand``; a single group is one conv, several
groups a list indexed ``0, 1, ...``.
"""

from __future__ import annotations

import math

from mindspore import Tensor, nn, ops
from mindspore.common.initializer import Normal, Uniform, initializer

from space.rounding import split_channels


def activation(name: str) -> nn.Cell:
    """``relu`` -> ReLU, ``swish`` -> x * sigmoid(x)."""
    return nn.SiLU() if name == "swish" else nn.ReLU()


def conv2d(cin: int, cout: int, kernel: int, stride: int = 1, group: int = 1,
           bias: bool = False) -> nn.Conv2d:
    """A conv with symmetric ``k//2`` padding and TF/timm's fan-out normal initialization."""
    fan_out = kernel * kernel * cout // group
    return nn.Conv2d(cin, cout, kernel, stride=stride, pad_mode="pad", padding=kernel // 2,
                     group=group, has_bias=bias, weight_init=Normal(math.sqrt(2.0 / fan_out)),
                     bias_init="zeros")


def batch_norm(channels: int, momentum: float, eps: float) -> nn.BatchNorm2d:
    """BatchNorm2d with momentum (MindSpore convention: moving = moving*m + batch*(1-m)) and eps set."""
    return nn.BatchNorm2d(channels, eps=eps, momentum=momentum)


class GroupedConv2d(nn.Cell):
    """A 1x1 conv whose input and output channels are split into ``groups`` dense convs."""

    def __init__(self, cin: int, cout: int, groups: int) -> None:
        super().__init__()
        self.groups = groups
        if groups == 1:
            self.grouped_conv = conv2d(cin, cout, 1)
        else:
            self.splits = split_channels(cin, groups)
            self.grouped_conv = nn.CellList([conv2d(i, o, 1) for i, o in
                                             zip(self.splits, split_channels(cout, groups))])

    def construct(self, x: Tensor) -> Tensor:
        """Apply each group's conv to its channel slice and concatenate."""
        if self.groups == 1:
            return self.grouped_conv(x)
        parts = ops.split(x, self.splits, axis=1)
        return ops.concat([conv(p) for conv, p in zip(self.grouped_conv, parts)], axis=1)


class MixedDepthwiseConv(nn.Cell):
    """MixConv: channels split into kernel groups, one depthwise conv per group, concatenated."""

    def __init__(self, channels: int, kernel_sizes: tuple[int, ...], stride: int) -> None:
        super().__init__()
        self.groups = len(kernel_sizes)
        self.splits = split_channels(channels, self.groups)
        if self.groups == 1:
            self.mixed_depthwise_conv = conv2d(channels, channels, kernel_sizes[0], stride, group=channels)
        else:
            self.mixed_depthwise_conv = nn.CellList([conv2d(c, c, k, stride, group=c) for c, k in
                                                     zip(self.splits, kernel_sizes)])

    def construct(self, x: Tensor) -> Tensor:
        """Depthwise conv per kernel group on contiguous channel slices."""
        if self.groups == 1:
            return self.mixed_depthwise_conv(x)
        parts = ops.split(x, self.splits, axis=1)
        return ops.concat([conv(p) for conv, p in zip(self.mixed_depthwise_conv, parts)], axis=1)


class SqueezeExcite(nn.Cell):
    """Squeeze-and-excitation: mean over H,W -> 1x1 reduce (bias) -> act -> 1x1 expand -> sigmoid gate."""

    def __init__(self, channels: int, reduced: int, act: str) -> None:
        super().__init__()
        self.conv_reduce = conv2d(channels, reduced, 1, bias=True)
        self.act = activation(act)
        self.conv_expand = conv2d(reduced, channels, 1, bias=True)
        self.gate = nn.Sigmoid()

    def construct(self, x: Tensor) -> Tensor:
        """Scale each channel of ``x`` by its learned gate."""
        s = ops.mean(x, axis=(2, 3), keep_dims=True)
        s = self.gate(self.conv_expand(self.act(self.conv_reduce(s))))
        return x * s


def dense_init(cell: nn.Dense, num_classes: int) -> None:
    """TF/timm classifier init: uniform(+-1/sqrt(num_classes)), zero bias."""
    bound = 1.0 / math.sqrt(num_classes)
    cell.weight.set_data(initializer(Uniform(bound), cell.weight.shape, cell.weight.dtype))
    cell.bias.set_data(initializer("zeros", cell.bias.shape, cell.bias.dtype))
