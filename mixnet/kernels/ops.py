"""MindSpore ``Custom(func_type="aot")`` primitives over the C++ kernels, and their meta tensors.

Every primitive takes a float32 ``meta`` tensor first (see the ``*_meta`` builders):

- :func:`direct_conv` ``(meta, x, weight) -> y``: differentiable direct grouped convolution (mixed
  depthwise, small dense convs) with ``k//2`` padding; ``weight`` is (Cout, Cin/G, K, K), group g
  using the centre ``k_g x k_g``. Its bprop calls the C++ input and weight gradients.
- :func:`direct_conv_bn_act` ``(meta, x, w_0, ..., gamma, beta, mean, variance) -> y``: inference
  conv + folded BatchNorm + activation; the weights may be MindCV's per-group tensors.
- :func:`pointwise` ``(meta, x, w_0, ..., gamma, beta, mean, variance, [SE params], [residual])``:
  inference grouped 1x1 conv + folded BatchNorm + activation, with optional squeeze-and-excitation
  of the input, residual add, or global average pooling of the output.
- :func:`pointwise_conv` ``(meta, x, weight) -> y``: differentiable grouped 1x1 conv (equal groups).
- :func:`batch_norm_act` ``(meta, x, gamma, beta) -> (act(batchnorm(x)), mean, var)``: training
  BatchNorm with batch statistics fused with its activation; the caller updates moving statistics.
- :func:`swish` ``(x) -> x * sigmoid(x)`` and :func:`squeeze_excite`
  ``(meta, x, w_reduce, b_reduce, w_expand, b_expand) -> x * gate``: differentiable, one pass each
  way (training).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np
from mindspore import Tensor, ops

from .build import library_path

ACTIVATIONS = {"none": 0, "relu": 1, "swish": 2}


def kernel(name: str, out_shape: Callable, out_dtype: "Callable | None" = None,
           bprop: "Callable | None" = None, variant: str = "") -> ops.Custom:
    """The library's C++ function ``name`` as a ``Custom(func_type="aot")`` primitive.

    ``out_shape``/``out_dtype`` are MindSpore's infer functions (``out_dtype`` defaults to
    ``out_shape``, for infer functions that pass their arguments through); ``bprop`` makes it
    differentiable. ``variant`` names what the infer functions depend on (a stride, a segment count):
    PyNative mode keeps one infer per function name and attributes, so primitives of one C++
    function with different infer functions must differ in an attribute.
    """
    op = ops.Custom(f"{library_path()}:{name}", out_shape=out_shape, out_dtype=out_dtype or out_shape,
                    func_type="aot", bprop=bprop)
    if variant:
        op.add_prim_attr("variant", variant)
    return op


def _tensor(values: list) -> Tensor:
    return Tensor(np.array(values, dtype=np.float32))


def direct_meta(stride: int, group_kernels: "list[int]", act: str = "none", eps: float = 1e-5) -> Tensor:
    """``[stride, act, eps, G, k_0, ..., k_{G-1}]``: one odd kernel size per group."""
    return _tensor([stride, ACTIVATIONS[act], eps, len(group_kernels), *group_kernels])


def pointwise_meta(act: str, eps: float, se_act: "str | None" = None, residual: bool = False,
                   pooled: bool = False) -> Tensor:
    """``[act, eps, has_se, se_act, has_residual, pooled]``; ``se_act`` None means no SE."""
    return _tensor([ACTIVATIONS[act], eps, se_act is not None, ACTIVATIONS[se_act or "none"], residual, pooled])


def _spatial(size: int, stride: int) -> int:
    return (size - 1) // stride + 1


def _conv_shape(stride: int):
    """Shape function of ``direct_conv``: (meta, x, weight) -> y."""
    def shape(meta, x, weight):
        return (x[0], weight[0], _spatial(x[2], stride), _spatial(x[3], stride))
    return shape


def _bn_conv_shape(stride: int):
    """Shape function of ``direct_conv_bn_act``: Cout is the BatchNorm size."""
    def shape(meta, x, *rest):
        return (x[0], rest[-1][0], _spatial(x[2], stride), _spatial(x[3], stride))
    return shape


def _pointwise_shape(segments: int, pooled: bool):
    """Shape function of ``pointwise``: Cout is the BatchNorm size (the input after the weights)."""
    def shape(meta, x, *rest):
        cout = rest[segments][0]
        return (x[0], cout) if pooled else (x[0], cout, x[2], x[3])
    return shape


def _x_dtype(meta, x, *_):
    return x


def _input_like(meta, dy, x, weight):
    return x


def _weight_like(meta, dy, x, weight):
    return weight


def _direct_bprop(backward_input: ops.Custom, backward_weight: ops.Custom):
    """The bprop of ``direct_conv``: two kernel calls, so the graph drops an input gradient nobody uses
    (the stem's), and none for meta."""
    def bprop(meta, x, weight, out, dout):
        return ops.zeros_like(meta), backward_input(meta, dout, x, weight), backward_weight(meta, dout, x, weight)
    return bprop


@lru_cache(maxsize=None)
def direct_conv(stride: int) -> ops.Custom:
    """Differentiable direct convolution ``(meta, x, weight) -> y`` for one stride."""
    return kernel("DirectConvForward", _conv_shape(stride), _x_dtype,
                  bprop=_direct_bprop(kernel("DirectConvBackwardInput", _input_like),
                                      kernel("DirectConvBackwardWeight", _weight_like)), variant=f"stride{stride}")


@lru_cache(maxsize=None)
def direct_conv_bn_act(stride: int) -> ops.Custom:
    """Inference ``(meta, x, w_0, ..., gamma, beta, mean, variance) -> act(bn(conv(x)))``."""
    return kernel("DirectConvBnActForward", _bn_conv_shape(stride), _x_dtype, variant=f"stride{stride}")


@lru_cache(maxsize=None)
def pointwise(segments: int, pooled: bool = False) -> ops.Custom:
    """Inference grouped 1x1 conv with ``segments`` weight tensors, BatchNorm, activation and extras."""
    return kernel("PointwiseForward", _pointwise_shape(segments, pooled), _x_dtype,
                  variant=f"segments{segments}{'-pooled' if pooled else ''}")


def se_meta(act: str) -> Tensor:
    """``[act]``: the activation between the SE reduce and expand convs."""
    return _tensor([ACTIVATIONS[act]])


def _same(x, *_):
    return x


def _swish_bprop(backward: ops.Custom):
    def bprop(x, out, dout):
        return (backward(x, dout),)
    return bprop


@lru_cache(maxsize=1)
def swish() -> ops.Custom:
    """Differentiable ``x * sigmoid(x)``."""
    return kernel("SwishForward", _same, bprop=_swish_bprop(kernel("SwishBackward", _same)))


def _se_backward_infer(meta, x, w_reduce, b_reduce, w_expand, b_expand, dy):
    return x, w_reduce, b_reduce, w_expand, b_expand


def _se_bprop(backward: ops.Custom):
    def bprop(meta, x, w_reduce, b_reduce, w_expand, b_expand, out, dout):
        dx, dwr, dbr, dwe, dbe = backward(meta, x, w_reduce, b_reduce, w_expand, b_expand, dout)
        return ops.zeros_like(meta), dx, dwr, dbr, dwe, dbe
    return bprop


@lru_cache(maxsize=1)
def squeeze_excite() -> ops.Custom:
    """Differentiable squeeze-and-excitation ``(meta, x, w_reduce, b_reduce, w_expand, b_expand) -> x * gate``."""
    return kernel("SqueezeExciteForward", _x_dtype,
                  bprop=_se_bprop(kernel("SqueezeExciteBackward", _se_backward_infer)))


def batch_norm_meta(act: str, eps: float) -> Tensor:
    """``[act, eps]`` for :func:`batch_norm_act`."""
    return _tensor([ACTIVATIONS[act], eps])


def _bn_infer(meta, x, gamma, beta):
    return x, gamma, gamma


def _bn_backward_infer(meta, x, gamma, beta, mean, var, dy):
    return x, gamma, beta


def _bn_bprop(backward: ops.Custom):
    def bprop(meta, x, gamma, beta, out, dout):
        dx, dgamma, dbeta = backward(meta, x, gamma, beta, out[1], out[2], dout[0])
        return ops.zeros_like(meta), dx, dgamma, dbeta
    return bprop


@lru_cache(maxsize=1)
def batch_norm_act() -> ops.Custom:
    """Differentiable training BatchNorm + activation ``(meta, x, gamma, beta) -> (y, mean, biased var)``."""
    return kernel("BatchNormActForward", _bn_infer,
                  bprop=_bn_bprop(kernel("BatchNormActBackward", _bn_backward_infer)))


def _conv1x1_shape(meta, x, weight):
    return (x[0], weight[0], x[2], x[3])


def _pointwise_conv_bprop(backward_input: ops.Custom, backward_weight: ops.Custom):
    def bprop(meta, x, weight, out, dout):
        return ops.zeros_like(meta), backward_input(meta, dout, x, weight), backward_weight(meta, dout, x, weight)
    return bprop


def pointwise_conv_meta(groups: int) -> Tensor:
    """``[G]`` for :func:`pointwise_conv`."""
    return _tensor([groups])


@lru_cache(maxsize=1)
def pointwise_conv() -> ops.Custom:
    """Differentiable grouped 1x1 conv ``(meta, x, weight) -> y`` with equal groups; ``weight`` is the
    groups' (Cout/G, Cin/G, 1, 1) weights concatenated along the output axis."""
    return kernel("PointwiseConvForward", _conv1x1_shape, _x_dtype,
                  bprop=_pointwise_conv_bprop(kernel("PointwiseConvBackwardInput", _input_like),
                                              kernel("PointwiseConvBackwardWeight", _weight_like)))
