"""The supernet against stand-alone networks: extracted weights give the same logits, and moving
between genomes compiles nothing."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import mindspore as ms
import numpy as np
import pytest

from mixnet import create_model
from mixnet.checkpoint import load_weights
from mixnet.supernet import Supernet, SupernetSpec, extract
from mixnet.supernet.network import SuperDepthwise
from space import parse_genome
from space.basics.errors import UsageError
from space.search_space import SearchSpace

# Blocks with every 1x1 grouping a MixNet has (none, both 2, projection only, expansion only), SE and not,
# stride 1 and 2, residual and not; every layer chooses kernel groups and expansion 1, 3 or 6.
SKELETON = ("stem8_head32_w1_d0_nc10,r1_k3_a1_p1_s1_e1_i8_o8_re,r1_k3.5.7_a1.1_p1.1_s2_e3_i8_o12_re,"
            "r1_k3.5_a1_p1.1_s1_e6_i12_o12_se0.5_sw_sere,r1_k3_a1.1_p1_s2_e6_i12_o16_se0.25_sw_sere")
SPACE = {"name": "tiny_shared", "skeleton": SKELETON,
         "choices": {"kernel_sizes": ["3", "3.5", "3.5.7", "3.5.7.9"], "expand_ratio": [1, 3, 6]}}


def randomize(net: ms.nn.Cell, seed: int) -> None:
    """Non-trivial values for every parameter of ``net`` that is not part of its current choice."""
    rng = np.random.default_rng(seed)
    for p in net.get_parameters():
        if not p.requires_grad and not p.name.endswith(("moving_mean", "moving_variance")):
            continue
        if p.name.endswith(("moving_variance", "gamma")):
            value = rng.uniform(0.5, 1.5, p.shape)
        elif p.name.endswith(("moving_mean", "beta", "bias")):
            value = rng.normal(0, 0.1, p.shape)
        else:
            value = rng.normal(0, np.sqrt(2.0 / max(1, int(np.prod(p.shape[1:])))), p.shape)
        p.set_data(ms.Tensor(value.astype(np.float32)))


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return SearchSpace.from_dict(SPACE)


def genomes(space: SearchSpace) -> list:
    """The skeleton, the smallest and the largest choice everywhere, and two random genomes."""
    dims = space.dimensions
    smallest = space.decode({d.name: d.choices[0] for d in dims})
    largest = space.decode({d.name: d.choices[-1] for d in dims})
    rng = random.Random(3)
    return [space.skeleton, smallest, largest] + [space.random_genome(rng) for _ in range(2)]


def transformed(net: Supernet, seed: int) -> None:
    """Give the kernel transformation matrices values away from their starting identity."""
    rng = np.random.default_rng(seed)
    for cell in net.cells_and_names():
        depthwise = cell[1]
        if isinstance(depthwise, SuperDepthwise) and depthwise.sizes:
            value = np.concatenate([(np.eye(k * k) + rng.normal(0, 0.2, (k * k, k * k))).ravel()
                                    for k in depthwise.sizes])
            depthwise.transform.set_data(ms.Tensor(value.astype(np.float32)))


@pytest.mark.parametrize("expansion_one,kernel_transform", [("own", False), ("shared", False), ("own", True)])
def test_an_extracted_network_equals_the_supernets_choice(space: SearchSpace, tmp_path: Path,
                                                          expansion_one: str, kernel_transform: bool) -> None:
    ms.set_context(mode=ms.PYNATIVE_MODE)
    net = Supernet(SupernetSpec.of(space, expansion_one=expansion_one, kernel_transform=kernel_transform))
    randomize(net, 0)
    transformed(net, 0)
    net.set_train(False)
    x = ms.Tensor(np.random.default_rng(1).normal(size=(2, 3, 32, 32)).astype(np.float32))
    outputs = set()
    for genome in genomes(space):
        net.select(genome)
        expected = net(x).asnumpy()
        outputs.add(expected.tobytes())
        path = tmp_path / "sub.ckpt"
        ms.save_checkpoint(extract(net, genome), str(path))
        standalone = create_model(genome, mixconv_impl="split")  # built on its own, then loaded by name
        load_weights(standalone, path)
        standalone.set_train(False)
        got = standalone(x).asnumpy()
        scale = np.abs(expected).max()
        assert np.abs(got - expected).max() <= 1e-4 * scale, genome.to_string()
    assert len(outputs) == len(genomes(space))  # each genome computes something of its own


def test_moving_to_another_genome_compiles_nothing(space: SearchSpace) -> None:
    ms.set_context(mode=ms.GRAPH_MODE)
    net = Supernet(SupernetSpec.of(space))
    net.set_train(False)
    x = ms.Tensor(np.zeros((1, 3, 32, 32), np.float32))
    first, *others = genomes(space)
    net.select(first)
    start = time.perf_counter()
    net(x).asnumpy()
    compiled = time.perf_counter() - start
    seconds = []
    for genome in others:
        net.select(genome)
        start = time.perf_counter()
        net(x).asnumpy()
        seconds.append(time.perf_counter() - start)
    assert max(seconds) < 0.2 * compiled, (compiled, seconds)


def test_a_genome_outside_the_space_or_a_space_it_cannot_share_is_refused(space: SearchSpace) -> None:
    spec = SupernetSpec.of(space)
    with pytest.raises(UsageError, match="not in the supernet's space"):
        spec.choices(parse_genome(SKELETON.replace("k3.5.7_a1.1", "k3.5.7.9.11_a1.1")))
    grouped = dict(SPACE, choices=dict(SPACE["choices"], expand_groups=[1, 2]))
    with pytest.raises(UsageError, match="chooses expand_groups"):
        SupernetSpec.of(SearchSpace.from_dict(grouped))
    with pytest.raises(UsageError, match="expansion_one 'separate' - allowed: own, shared"):
        SupernetSpec.of(space, expansion_one="separate")


def test_expansion_one_held_on_its_own_shares_no_weight_with_wider_expansions(space: SearchSpace) -> None:
    """With ``own`` (the default), changing the depthwise weights of the widest expansion leaves the
    all-expansion-1 genome's logits unchanged and changing expansion 1's own weights leaves the
    all-expansion-6 genome's unchanged; with ``shared`` the widest expansion's channels serve both."""
    ms.set_context(mode=ms.PYNATIVE_MODE)
    x = ms.Tensor(np.random.default_rng(4).normal(size=(2, 3, 32, 32)).astype(np.float32))
    dims = space.dimensions
    narrow = space.decode({d.name: 1 if d.field == "expand_ratio" else d.choices[-1] for d in dims})
    wide = space.decode({d.name: 6 if d.field == "expand_ratio" else d.choices[-1] for d in dims})

    def unchanged(expansion_one: str, genome: Any, changed: str) -> bool:
        net = Supernet(SupernetSpec.of(space, expansion_one=expansion_one))
        randomize(net, 7)
        net.set_train(False)
        net.select(genome)
        before = net(x).asnumpy()
        for p in net.get_parameters():
            own = ".own_identity." in p.name
            if p.name.endswith("depthwise.weight") and own == (changed == "own"):
                p.set_data(ms.Tensor(p.asnumpy() * 2 + 0.1))
        return np.array_equal(net(x).asnumpy(), before)

    assert unchanged("own", narrow, "widest") and unchanged("own", wide, "own")
    assert not unchanged("own", narrow, "own") and not unchanged("own", wide, "widest")
    assert not unchanged("shared", narrow, "widest")


@pytest.mark.parametrize("kernel_transform", [False, True])
def test_the_kernels_compute_what_mindspores_operators_compute(space: SearchSpace, kernel_transform: bool) -> None:
    """The C++ direct conv with per-channel kernel sizes (a weight larger than any kernel in use, 1x1
    planes) against MindSpore's masked depthwise conv: training features, gradients (of the kernel
    transformation's matrices too) and inference logits."""
    ms.set_context(mode=ms.GRAPH_MODE)
    spec = SupernetSpec.of(space, kernel_transform=kernel_transform)
    nets = [Supernet(spec, impl="split"), Supernet(spec, impl="kernels")]
    for net in nets:
        randomize(net, 5)
        transformed(net, 5)
        net.dropout = ms.nn.Identity()
    rng = np.random.default_rng(6)
    x = ms.Tensor(rng.normal(size=(4, 3, 32, 32)).astype(np.float32))
    y = ms.Tensor(rng.integers(0, 10, 4).astype(np.int32))
    loss = ms.nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    gradients = [ms.grad(ms.nn.WithLossCell(net, loss), grad_position=None, weights=net.trainable_params())
                 for net in nets]   # each compiled once: a choice changes parameters only
    for genome in genomes(space)[1:4]:
        out = []
        for net, gradient in zip(nets, gradients):
            net.select(genome)
            net.set_train(True)
            grads = gradient(x, y)
            net.set_train(False)
            out.append(([g.asnumpy() for g in grads], net(x).asnumpy()))
        (want_grads, want), (got_grads, got) = out
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max(), genome.to_string()
        for w, g in zip(want_grads, got_grads):
            assert np.abs(g - w).max() <= 1e-4 * max(np.abs(w).max(), 1e-3), genome.to_string()
