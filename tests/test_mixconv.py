"""Every MixConv implementation against the split reference: forward, gradients, fused inference."""

from __future__ import annotations

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn, ops

from mixnet import create_model
from mixnet.blocks import MixNetBlock
from mixnet.kernels.threads import kernel_threads, set_kernel_threads
from mixnet.layers import ConvBnAct, GroupedConv2d, MixedDepthwiseConv
from mixnet.mixconv import implementation
from space.genome import LayerSpec

IMPLS = ("padded", "kernels")
SPLIT, KERNELS = implementation("split"), implementation("kernels")
# Four blocks: no expansion; stride 2 with 2+2 groups; SE (ReLU inside) with swish and residual.
SMALL = ("stem8_head32_w1_d0_nc10,r1_k3_a1_p1_s1_e1_i8_o8_re,r1_k3.5.7_a1.1_p1.1_s2_e3_i8_o12_re,"
         "r2_k3.5.7.9_a1.1_p1.1_s1_e6_i12_o12_se0.5_sw_sere")


def randomize(cells: "list[nn.Cell]", seed: int) -> None:
    """Give every parameter (BN statistics included) the same non-trivial random values in each cell."""
    rng = np.random.RandomState(seed)
    values = {}
    for name, p in cells[0].parameters_and_names():
        if name.endswith(("moving_variance", "gamma")):
            values[name] = rng.uniform(0.5, 1.5, p.shape)
        elif name.endswith(("moving_mean", "beta", "bias")):
            values[name] = rng.normal(0, 0.1, p.shape)
        else:
            values[name] = rng.normal(0, np.sqrt(2.0 / max(1, int(np.prod(p.shape[1:])))), p.shape)
    for cell in cells:
        for name, p in cell.parameters_and_names():
            p.set_data(ms.Tensor(values[name].astype(np.float32)))


class Projected(nn.Cell):
    """sum(cell(x) * r) for a fixed random r: a scalar whose gradient exercises every output."""

    def __init__(self, cell: nn.Cell, out_shape: tuple, seed: int = 7) -> None:
        super().__init__()
        self.cell = cell
        self.r = ms.Tensor(np.random.RandomState(seed).normal(size=out_shape).astype(np.float32))

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        return (self.cell(x) * self.r).sum()


def gradients(cell: nn.Cell, x: ms.Tensor) -> list[np.ndarray]:
    """[d/dx, d/dparam ...] of the projected output, in the training mode the cell is in."""
    out_shape = cell(x).shape
    loss = Projected(cell, out_shape)
    dx, dws = ms.grad(loss, grad_position=0, weights=cell.trainable_params())(x)
    return [dx.asnumpy()] + [w.asnumpy() for w in dws]


def assert_close(got: np.ndarray, want: np.ndarray, scale: float, rtol: float = 1e-4) -> None:
    """|got - want| <= rtol * scale everywhere."""
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= rtol * scale, (np.abs(got - want).max(), scale)


def assert_same_gradients(got: list, want: list) -> None:
    """Every gradient tensor close, relative to the largest gradient of its own kind or overall."""
    overall = max(float(np.abs(w).max()) for w in want)
    for g, w in zip(got, want):
        assert_close(g, w, max(float(np.abs(w).max()), 1e-2 * overall))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("channels,kernels,stride,size", [
    (13, (3, 5, 7), 1, 12),            # uneven split: the remainder goes to group 0
    (16, (3, 5, 7, 9, 11), 2, 17),     # odd size, stride 2, kernels larger than the input
    (8, (3,), 2, 16),                  # a single group
    (12, (5, 3), 1, 9),                # kernel sizes not in increasing order
    (10, (3, 5, 7, 9, 11), 1, 4),      # planes of 16 positions and fewer: tap by tap, kernels clipped
    (10, (3, 5, 7, 9, 11), 2, 3),      # a 2 x 2 output from a 3 x 3 plane
    (6, (3, 5), 1, 1),                 # 1 x 1 planes: the centre tap only
])
def test_mixconv_matches_split(impl: str, channels: int, kernels: tuple, stride: int, size: int) -> None:
    ref = MixedDepthwiseConv(channels, kernels, stride, SPLIT)
    net = MixedDepthwiseConv(channels, kernels, stride, implementation(impl))
    randomize([ref, net], seed=1)
    x = ms.Tensor(np.random.RandomState(2).normal(size=(2, channels, size, size)).astype(np.float32))
    want = ref(x).asnumpy()
    assert_close(net(x).asnumpy(), want, float(np.abs(want).max()))
    assert_same_gradients(gradients(net, x), gradients(ref, x))


@pytest.mark.parametrize("cin,cout,groups", [(12, 18, 2), (16, 24, 1), (10, 15, 2)])  # the last splits unevenly
def test_grouped_1x1_kernels_matches_split(cin: int, cout: int, groups: int) -> None:
    ref = GroupedConv2d(cin, cout, groups, SPLIT)
    net = GroupedConv2d(cin, cout, groups, KERNELS)
    randomize([ref, net], seed=15)
    x = ms.Tensor(np.random.RandomState(16).normal(size=(2, cin, 28, 29)).astype(np.float32))  # >= 784 positions
    want = ref(x).asnumpy()
    assert_close(net(x).asnumpy(), want, float(np.abs(want).max()))
    assert_same_gradients(gradients(net, x), gradients(ref, x))


def test_mixconv_parameters_keep_mindcv_names_and_shapes() -> None:
    names = {n: tuple(p.shape) for n, p in MixedDepthwiseConv(13, (3, 5, 7), 1, KERNELS).parameters_and_names()}
    assert names == {"mixed_depthwise_conv.0.weight": (5, 1, 3, 3), "mixed_depthwise_conv.1.weight": (4, 1, 5, 5),
                     "mixed_depthwise_conv.2.weight": (4, 1, 7, 7)}


@pytest.mark.parametrize("train", [False, True])
def test_stem_kernels_matches_split(train: bool) -> None:
    ref = ConvBnAct(3, 16, 3, 2, "relu", 0.9, 1e-5, SPLIT)
    net = ConvBnAct(3, 16, 3, 2, "relu", 0.9, 1e-5, KERNELS)
    randomize([ref, net], seed=3)
    ref.set_train(train)
    net.set_train(train)
    x = ms.Tensor(np.random.RandomState(4).normal(size=(2, 3, 20, 20)).astype(np.float32))
    want = ref(x).asnumpy()
    assert_close(net(x).asnumpy(), want, float(np.abs(want).max()))
    if train:
        assert_same_gradients(gradients(net, x), gradients(ref, x))


@pytest.mark.parametrize("layer", [
    LayerSpec(0, 0, (3, 5, 7), 2, 2, 1, 6, 12, 12, 72, 6, "swish", "swish"),   # SE, residual, grouped 1x1s
    LayerSpec(1, 1, (3, 5, 7, 9), 3, 1, 2, 3, 10, 14, 30, 0, "relu", "relu"),  # uneven 1x1 groups, stride 2
    LayerSpec(2, 2, (3,), 1, 2, 1, 1, 16, 16, 16, 4, "relu", "relu"),          # no expansion (first block)
])
@pytest.mark.parametrize("size", [11, 3])  # 3 x 3 and smaller planes: the images side by side in the 1x1 kernels
def test_fused_inference_block_matches_split(layer: LayerSpec, size: int) -> None:
    ref = MixNetBlock(layer, 0.9, 1e-5, SPLIT)
    net = MixNetBlock(layer, 0.9, 1e-5, KERNELS)
    randomize([ref, net], seed=5)
    ref.set_train(False)
    net.set_train(False)
    x = ms.Tensor(np.random.RandomState(6).normal(size=(3, layer.in_channels, size, size)).astype(np.float32))
    want = ref(x).asnumpy()
    assert_close(net(x).asnumpy(), want, float(np.abs(want).max()))


@pytest.mark.parametrize("size,stride", [(14, 1), (14, 2), (28, 2), (28, 1)])
def test_fused_inference_block_at_batch_one_matches_split(size: int, stride: int) -> None:
    """One image on the planes of MixNet's last stages: depthwise with vectors over 16 channels (40 channels:
    the last block of 8; kernel groups of 14, 13, 13 crossing block edges; 9 x 9 kernels wider than a 7 x 7
    plane) and 1x1 convs on 196 or 49 positions (a last partial vector of positions)."""
    residual = stride == 1
    layer = LayerSpec(0, 0, (3, 5, 9), 1, 1, stride, 5, 8, 8 if residual else 12, 40, 4, "swish", "swish")
    ref = MixNetBlock(layer, 0.9, 1e-5, SPLIT)
    net = MixNetBlock(layer, 0.9, 1e-5, KERNELS)
    randomize([ref, net], seed=11)
    ref.set_train(False)
    net.set_train(False)
    x = ms.Tensor(np.random.RandomState(12).normal(size=(1, 8, size, size)).astype(np.float32))
    want = ref(x).asnumpy()
    assert_close(net(x).asnumpy(), want, float(np.abs(want).max()))


def test_kernels_training_gradients_do_not_depend_on_the_thread_count() -> None:
    """Weight gradients split over image ranges add up in one fixed order, on any number of threads."""
    # Few channels and several images: the 1x1 and depthwise weight gradients are split by images.
    layer = LayerSpec(0, 0, (3, 5), 1, 1, 1, 1, 4, 8, 4, 0, "swish", "swish")
    net = MixNetBlock(layer, 0.9, 1e-5, KERNELS)
    randomize([net], seed=8)
    net.set_train(True)
    x = ms.Tensor(np.random.RandomState(9).normal(size=(16, 4, 24, 24)).astype(np.float32))
    threads = kernel_threads()
    try:
        runs = []
        for count in (1, 2, 3, 1, 2, 3):
            set_kernel_threads(count)
            runs.append(gradients(net, x))
    finally:
        set_kernel_threads(threads)
    for run in runs[1:]:
        for got, want in zip(run, runs[0]):
            assert np.array_equal(got, want)


def test_whole_network_kernels_matches_split_in_eval_and_training() -> None:
    ref = create_model(SMALL, mixconv_impl="split")
    net = create_model(SMALL, mixconv_impl="kernels")
    randomize([ref, net], seed=8)
    x = ms.Tensor(np.random.RandomState(9).normal(size=(2, 3, 32, 32)).astype(np.float32))
    ref.set_train(False)
    net.set_train(False)
    want = ref(x).asnumpy()
    assert_close(net(x).asnumpy(), want, float(np.abs(want).max()))
    ref.set_train(True)
    net.set_train(True)
    assert_same_gradients(gradients(net, x), gradients(ref, x))
    randomize([ref, net], seed=10)
    ref(x)
    net(x)  # one training forward: BatchNorm moving statistics move the same way
    want = {n: p.asnumpy() for n, p in ref.parameters_and_names() if "moving" in n}
    got = {n: p.asnumpy() for n, p in net.parameters_and_names() if "moving" in n}
    assert set(got) == set(want) and len(want) > 10
    for name, value in want.items():
        assert_close(got[name], value, float(np.abs(value).max()), rtol=1e-5)


def test_training_with_frozen_batch_norm_matches_split() -> None:
    ref = create_model(SMALL, mixconv_impl="split")
    net = create_model(SMALL, mixconv_impl="kernels")
    randomize([ref, net], seed=11)
    for model in (ref, net):
        model.set_train(True)
        for _, cell in model.cells_and_names():
            if isinstance(cell, nn.BatchNorm2d):
                cell.set_train(False)
    x = ms.Tensor(np.random.RandomState(12).normal(size=(2, 3, 32, 32)).astype(np.float32))
    want = ref(x).asnumpy()
    assert_close(net(x).asnumpy(), want, float(np.abs(want).max()))
    assert_same_gradients(gradients(net, x), gradients(ref, x))


@pytest.mark.parametrize("level", ["O2", "O3"])
def test_kernels_under_float16_mixed_precision_falls_back_to_mindspore_ops(level: str) -> None:
    """The network says it computes as ``split``, and does: its logits are bit for bit those of ``split``
    in float16 (the float32 kernels, cast around, would differ in the low bits)."""
    ref = create_model(SMALL, mixconv_impl="split")
    net = create_model(SMALL, mixconv_impl="kernels")
    randomize([ref, net], seed=13)
    assert net.mixconv_impl == "kernels"
    ref_amp, net_amp = ms.amp.auto_mixed_precision(ref, level), ms.amp.auto_mixed_precision(net, level)
    assert (net.mixconv_impl, ref.mixconv_impl) == ("kernels->split (float16)", "split")
    ref_amp.set_train(False)
    net_amp.set_train(False)
    x = ms.Tensor(np.random.RandomState(14).normal(size=(2, 3, 32, 32)).astype(np.float32))
    want = ref_amp(x).asnumpy()
    assert np.array_equal(net_amp(x).asnumpy(), want)


def test_padded_computes_under_float16_mixed_precision_as_split_does() -> None:
    """MindCV's MixNet recipe trains under amp O3: ``padded``'s kernel, built from the groups' float32 weights,
    is cast to the float16 input; its logits match ``split``'s to float16 rounding."""
    nets = [create_model(SMALL, mixconv_impl=impl) for impl in ("split", "padded")]
    randomize(nets, seed=15)
    x = ms.Tensor(np.random.RandomState(16).normal(size=(2, 3, 32, 32)).astype(np.float32))
    logits = []
    for net in (ms.amp.auto_mixed_precision(net, "O3") for net in nets):
        net.set_train(False)
        logits.append(net(x).asnumpy().astype(np.float32))
    want, got = logits
    assert np.abs(got - want).max() <= 1e-2 * np.abs(want).max()


def test_kernel_rejects_inconsistent_meta() -> None:
    from mixnet.kernels import ops as kops
    op = kops.direct_conv(1)
    x = ms.Tensor(np.ones((1, 4, 8, 8), np.float32))
    w = ms.Tensor(np.ones((4, 1, 3, 3), np.float32))
    with pytest.raises(RuntimeError):  # meta says 2 groups of 5x5, the weight is 3x3 for 4 groups
        ops.stop_gradient(op(kops.direct_meta(1, [5, 5]), x, w)).asnumpy()


def test_old_names_build_the_new_implementations_with_the_same_parameters() -> None:
    nets = {impl: create_model(SMALL, mixconv_impl=impl) for impl in ("split", "fused", "custom", "padded")}
    assert {impl: net.mixconv_impl for impl, net in nets.items()} == {
        "split": "split", "fused": "padded", "custom": "kernels", "padded": "padded"}
    shapes = [{p.name: p.shape for p in net.get_parameters()} for net in nets.values()]
    assert all(s == shapes[0] for s in shapes) and "layers.2.convs.3.mixed_depthwise_conv.1.weight" in shapes[0]


@pytest.mark.parametrize("impl", ("split", "kernels"))
def test_parts_compute_the_network(impl: str) -> None:
    net = create_model(SMALL, mixconv_impl=impl)
    names = [p.name for p in net.get_parameters()]
    randomize([net], seed=17)
    net.set_train(False)
    stem, blocks, head, classifier = net.parts()
    assert [p.name for p in classifier.get_parameters()] == ["classifier.weight", "classifier.bias"]
    assert [p.name for p in net.get_parameters()] == names
    x = ms.Tensor(np.random.RandomState(18).normal(size=(2, 3, 32, 32)).astype(np.float32))
    h = stem(x)
    for block in blocks:
        h = block(h)
    want = net(x).asnumpy()
    assert_close(classifier(head(h)).asnumpy(), want, float(np.abs(want).max()))
