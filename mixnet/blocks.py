"""The MixNet block: [grouped 1x1 expand] -> MixConv -> [SE] -> grouped 1x1 project (+ skip)."""

from __future__ import annotations

from mindspore import Tensor, nn

from space.genome import LayerSpec

from .layers import (GroupedConv2d, MixedDepthwiseConv, SqueezeExcite, activation, batch_norm, bn_params,
                     kernel_ops, kernels_apply, train_batch_norm_act)


class MixNetBlock(nn.Cell):
    """One built block; ``convs`` indexes its cells exactly as MindCV does (activations included).

    With ``mixconv_impl="custom"``, inference runs the block as at most three C++ kernel calls
    (:meth:`fused_forward`) and training runs BatchNorm + activation, MixConv and SE on C++ kernels
    (:meth:`train_forward`); the other implementations run ``convs`` cell by cell.
    """

    def __init__(self, layer: LayerSpec, bn_momentum: float, bn_eps: float, mixconv_impl: str = "split") -> None:
        super().__init__()
        mid = layer.mid_channels
        cells: list[nn.Cell] = []
        self.expand = layer.expand_ratio != 1
        if self.expand:
            cells += [GroupedConv2d(layer.in_channels, mid, layer.expand_groups, mixconv_impl),
                      batch_norm(mid, bn_momentum, bn_eps), activation(layer.act, mixconv_impl)]
        self.dw_index = len(cells)
        mixconv = MixedDepthwiseConv(mid, layer.kernel_sizes, layer.stride, mixconv_impl)
        cells += [mixconv, batch_norm(mid, bn_momentum, bn_eps), activation(layer.act, mixconv_impl)]
        self.se = bool(layer.se_channels)
        if self.se:
            cells.append(SqueezeExcite(mid, layer.se_channels, layer.se_act, mixconv_impl))
        self.project_index = len(cells)
        cells += [GroupedConv2d(mid, layer.out_channels, layer.project_groups, mixconv_impl),
                  batch_norm(layer.out_channels, bn_momentum, bn_eps)]
        self.convs = nn.SequentialCell(cells)
        self.residual = layer.residual
        self.fuse = mixconv_impl == "custom"
        if self.fuse:
            kops = kernel_ops()
            self.expand_meta = kops.pointwise_meta(layer.act, bn_eps)
            self.expand_op = kops.pointwise(layer.expand_groups)
            self.dw_meta = mixconv.fused_meta(layer.act, bn_eps)
            self.project_meta = kops.pointwise_meta("none", bn_eps, layer.se_act if self.se else None,
                                                    residual=self.residual)
            self.project_op = kops.pointwise(layer.project_groups)
            self.bn_op = kops.batch_norm_act()
            self.act_bn_meta = kops.batch_norm_meta(layer.act, bn_eps)
            self.plain_bn_meta = kops.batch_norm_meta("none", bn_eps)
            self.identity = nn.Identity()

    def train_forward(self, x: Tensor) -> Tensor:
        """Training ``convs`` with each BatchNorm and its activation as one kernel call (no skip)."""
        cells = self.convs.cell_list
        h = x
        if self.expand:
            h = train_batch_norm_act(self.bn_op, self.act_bn_meta, cells[1], cells[2], cells[0](h))
        dw = self.dw_index
        h = train_batch_norm_act(self.bn_op, self.act_bn_meta, cells[dw + 1], cells[dw + 2], cells[dw](h))
        if self.se:
            h = cells[dw + 3](h)
        project, bn = cells[self.project_index], cells[self.project_index + 1]
        return train_batch_norm_act(self.bn_op, self.plain_bn_meta, bn, self.identity, project(h))

    def fused_forward(self, x: Tensor) -> Tensor:
        """Inference: expand (1x1 + BN + act), MixConv + BN + act, then SE + project + BN (+ skip) as one call."""
        cells = self.convs.cell_list
        h = x
        if self.expand:
            h = self.expand_op(self.expand_meta, h, *cells[0].weights(), *bn_params(cells[1]))
        h = cells[self.dw_index].conv_bn_act(h, cells[self.dw_index + 1], self.dw_meta)
        project, bn = cells[self.project_index], cells[self.project_index + 1]
        extra = cells[self.dw_index + 3].params() if self.se else ()
        if self.residual:
            extra = extra + (x,)
        return self.project_op(self.project_meta, h, *project.weights(), *bn_params(bn), *extra)

    def construct(self, x: Tensor) -> Tensor:
        """Block output, with the input added when shapes allow."""
        fuse = self.fuse and kernels_apply(x)
        if fuse and not self.training:
            return self.fused_forward(x)
        out = self.train_forward(x) if fuse else self.convs(x)
        if self.residual:
            return x + out
        return out
