"""``padded``: MixConv as one depthwise conv, every group's kernel zero-padded to the largest.

The padded kernel is built from the groups' weights in ``construct``, so parameters stay one conv
per group; every other layer computes as ``split`` does.
"""

from __future__ import annotations

from mindspore import Tensor, nn, ops

from .base import Compute
from .split import Split


class PaddedMixConv(Compute):
    """One depthwise conv over the padded kernel (``MixedDepthwiseConv.padded_weight``)."""

    def __init__(self, channels: int, kmax: int, stride: int) -> None:
        self.channels = channels
        self.padding = kmax // 2
        self.stride = stride

    def __call__(self, layer: nn.Cell, x: Tensor) -> Tensor:
        """The mixed depthwise convolution of ``x``."""
        weight = ops.cast(layer.padded_weight(), x.dtype)   # float16 under amp O2/O3; the groups' weights stay
        return ops.conv2d(x, weight, stride=self.stride, pad_mode="pad", padding=self.padding, groups=self.channels)


class Padded(Split):
    """``split`` with MixConv as one depthwise conv."""

    name = "padded"

    def mixconv(self, splits: "list[int]", kernel_sizes: tuple[int, ...], stride: int) -> Compute:
        """One depthwise conv over all groups' kernels padded to the largest."""
        return PaddedMixConv(sum(splits), max(kernel_sizes), stride)
