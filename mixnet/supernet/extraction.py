"""A genome's stand-alone MixNet with its weights taken from a supernet (MindCV names and shapes)."""

from __future__ import annotations

import numpy as np
from mindspore import Tensor, nn

from space.genome import Genome
from space.rounding import split_channels

from ..blocks import MixNetBlock
from ..network import MixNet
from .choices import LayerChoice
from .network import SuperBlock, Supernet


def _value(param: object) -> np.ndarray:
    """A parameter's value as a NumPy array."""
    return param.asnumpy()


def _set(param: object, value: np.ndarray) -> None:
    """Overwrite a parameter of the stand-alone network (shapes must agree)."""
    if tuple(param.shape) != value.shape:
        raise ValueError(f"{param.name}: supernet slice {value.shape} for shape {tuple(param.shape)}")
    param.set_data(Tensor(np.ascontiguousarray(value)))


def _copy_bn(target: nn.BatchNorm2d, source: nn.BatchNorm2d, channels: "np.ndarray | slice") -> None:
    """BatchNorm scale, shift and moving statistics of the ``channels`` used."""
    for name in ("gamma", "beta", "moving_mean", "moving_variance"):
        _set(getattr(target, name), _value(getattr(source, name))[channels])


def _group_indices(used: np.ndarray, held: int, groups: int) -> list[np.ndarray]:
    """Per 1x1 group, the used channels as indices into that group of the supernet's ``held`` channels
    (the stand-alone network splits its own channels into the same number of groups)."""
    held_starts = np.cumsum([0] + split_channels(held, groups)[:-1])
    bounds = np.cumsum([0] + split_channels(len(used), groups))
    return [used[bounds[g]:bounds[g + 1]] - held_starts[g] for g in range(groups)]


def _copy_block(block: MixNetBlock, sup: SuperBlock, choice: LayerChoice) -> None:
    """Fill one stand-alone block from its supernet block (expansion 1 from its own weights where held so)."""
    cells, used, source, held = block.convs.cell_list, choice.channels, sup, sup.held.channels
    if not choice.identity:
        expand = cells[0]
        for target, source_weight, rows in zip(expand.weights(), sup.expand.weights(),
                                               _group_indices(used, held, expand.groups)):
            _set(target, _value(source_weight)[rows])
        _copy_bn(cells[1], sup.expand_bn, used)
    elif sup.own:
        source, used = sup.own_identity, choice.on_input().channels
        held = len(used)
    dw = cells[block.dw_index]
    weight, big = _value(source.depthwise.kernel()), source.depthwise.max_kernel
    start = 0
    for target in dw.weights():
        count, k = target.shape[0], target.shape[2]
        edge = (big - k) // 2
        _set(target, weight[used[start:start + count], :, edge:edge + k, edge:edge + k])
        start += count
    _copy_bn(cells[block.dw_index + 1], source.depthwise_bn, used)
    if source.has_se:
        se, sup_se = cells[block.dw_index + 3], source.se
        _set(se.conv_reduce.weight, _value(sup_se.conv_reduce.weight)[:, used])
        _set(se.conv_reduce.bias, _value(sup_se.conv_reduce.bias))
        _set(se.conv_expand.weight, _value(sup_se.conv_expand.weight)[used])
        _set(se.conv_expand.bias, _value(sup_se.conv_expand.bias)[used])
    project = cells[block.project_index]
    for target, source_weight, columns in zip(project.weights(), source.project.weights(),
                                              _group_indices(used, held, project.groups)):
        _set(target, _value(source_weight)[:, columns])
    _copy_bn(cells[block.project_index + 1], source.project_bn, slice(None))


def extract(net: Supernet, genome: Genome) -> MixNet:
    """The stand-alone MixNet of ``genome`` (at the supernet's width and classes, ``split``), holding the
    supernet's weights for it; UsageError for a genome outside the supernet's space."""
    choices = net.spec.choices(genome)
    net.select(genome)   # the depthwise kernels a choice computes with depend on it (kernel transformation)
    standalone = MixNet(net.spec.trained(genome), mixconv_impl="split")
    fixed = {p.name: p for p in net.get_parameters()}
    for param in standalone.get_parameters():
        if not param.name.startswith("layers."):
            _set(param, _value(fixed[param.name]))
    for block, sup, choice in zip(standalone.layers, net.layers, choices):
        _copy_block(block, sup, choice)
    return standalone
