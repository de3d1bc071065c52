"""The interface every MixConv implementation provides: one compute object per layer."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from mindspore import jit_class

if TYPE_CHECKING:
    from mindspore import Tensor, nn

    from space.genome import LayerSpec


@jit_class
class Compute:
    """How one layer computes, called as ``compute(layer, x)`` from the layer's ``construct``.

    A ``jit_class``, not a cell: graph mode compiles its calls all the same, and a call of the network
    does not visit it (MindSpore walks every cell of a network on each call).
    """

    def __call__(self, layer: nn.Cell, x: Tensor) -> Tensor:
        """The output of ``layer`` for input ``x``."""
        raise NotImplementedError


class Implementation(ABC):
    """How MixNet's layers compute, never what parameters they hold.

    Each layer asks for its ``Compute`` once, at construction, and calls it as ``compute(layer, x)``
    with itself and its input. A compute object holds no parameters and no reference to the layer
    (MindSpore names parameters by where they are held), so checkpoints are the same whatever the
    implementation.
    """

    name: str

    @abstractmethod
    def activation(self, name: str) -> nn.Cell:
        """The activation cell ``relu`` or ``swish`` of a block or of the stem and head."""

    @abstractmethod
    def grouped_conv(self, cin: int, cout: int, groups: int) -> Compute:
        """The computation of a grouped 1x1 conv (``GroupedConv2d``)."""

    @abstractmethod
    def conv_bn_act(self, kernel: int, stride: int, act: str, eps: float) -> Compute:
        """The computation of conv + BatchNorm + activation (``ConvBnAct``: the stem and the head)."""

    @abstractmethod
    def mixconv(self, splits: "list[int]", kernel_sizes: tuple[int, ...], stride: int) -> Compute:
        """The computation of a mixed depthwise conv (``MixedDepthwiseConv``) with channel groups ``splits``."""

    @abstractmethod
    def squeeze_excite(self, act: str) -> Compute:
        """The computation of squeeze-and-excitation (``SqueezeExcite``) with inner activation ``act``."""

    @abstractmethod
    def block(self, layer: LayerSpec, eps: float) -> Compute:
        """The computation of a whole block (``MixNetBlock``) built from ``layer``."""

    @abstractmethod
    def network(self, head_act: str, eps: float) -> Compute:
        """The computation of the whole network (``MixNet``): stem, blocks, head and classifier."""
