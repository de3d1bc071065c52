"""The MixNet block: [grouped 1x1 expand] -> MixConv -> [SE] -> grouped 1x1 project (+ skip)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mindspore import Tensor, nn

from space.genome import LayerSpec

from .layers import GroupedConv2d, MixedDepthwiseConv, SqueezeExcite, batch_norm

if TYPE_CHECKING:
    from .mixconv.base import Implementation


class MixNetBlock(nn.Cell):
    """One built block; ``convs`` indexes its cells exactly as MindCV does (activations included).

    ``impl`` (``mixnet.mixconv.implementation``) computes the block and each of its layers.
    """

    def __init__(self, layer: LayerSpec, bn_momentum: float, bn_eps: float, impl: Implementation) -> None:
        super().__init__()
        mid = layer.mid_channels
        cells: list[nn.Cell] = []
        if layer.expand_ratio != 1:
            cells += [GroupedConv2d(layer.in_channels, mid, layer.expand_groups, impl),
                      batch_norm(mid, bn_momentum, bn_eps), impl.activation(layer.act)]
        self.dw_index = len(cells)
        cells += [MixedDepthwiseConv(mid, layer.kernel_sizes, layer.stride, impl),
                  batch_norm(mid, bn_momentum, bn_eps), impl.activation(layer.act)]
        if layer.se_channels:
            cells.append(SqueezeExcite(mid, layer.se_channels, layer.se_act, impl))
        self.project_index = len(cells)
        cells += [GroupedConv2d(mid, layer.out_channels, layer.project_groups, impl),
                  batch_norm(layer.out_channels, bn_momentum, bn_eps)]
        self.convs = nn.SequentialCell(cells)
        self.residual = layer.residual
        self.compute = impl.block(layer, bn_eps)

    def construct(self, x: Tensor) -> Tensor:
        """Block output, with the input added when shapes allow."""
        return self.compute(self, x)
