"""The MixNet block: [grouped 1x1 expand] -> MixConv -> [SE] -> grouped 1x1 project (+ skip)."""

from __future__ import annotations

from mindspore import Tensor, nn

from space.genome import LayerSpec

from .layers import GroupedConv2d, MixedDepthwiseConv, SqueezeExcite, activation, batch_norm


class MixNetBlock(nn.Cell):
    """One built block; ``convs`` indexes its cells exactly as MindCV does (activations included)."""

    def __init__(self, layer: LayerSpec, bn_momentum: float, bn_eps: float) -> None:
        super().__init__()
        mid = layer.mid_channels
        cells: list[nn.Cell] = []
        if layer.expand_ratio != 1:
            cells += [GroupedConv2d(layer.in_channels, mid, layer.expand_groups),
                      batch_norm(mid, bn_momentum, bn_eps), activation(layer.act)]
        cells += [MixedDepthwiseConv(mid, layer.kernel_sizes, layer.stride),
                  batch_norm(mid, bn_momentum, bn_eps), activation(layer.act)]
        if layer.se_channels:
            cells.append(SqueezeExcite(mid, layer.se_channels, layer.se_act))
        cells += [GroupedConv2d(mid, layer.out_channels, layer.project_groups),
                  batch_norm(layer.out_channels, bn_momentum, bn_eps)]
        self.convs = nn.SequentialCell(cells)
        self.residual = layer.residual

    def construct(self, x: Tensor) -> Tensor:
        """Block output, with the input added when shapes allow."""
        if self.residual:
            return x + self.convs(x)
        return self.convs(x)
