"""The analytic cost model against the reference counts, the built network and the exported ONNX graph."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import shape_inference

from conftest import run_cli
from mixnet import create_model
from space import preset
from space.cost import network_cost
from space.search_space import SearchSpace

SPACE = SearchSpace.from_yaml(Path(__file__).parents[1] / "configs" / "space" / "mixnet_s.yaml")
PRESETS = ("mixnet_s", "mixnet_m", "mixnet_l")
# Trainable parameters and conv + classifier multiply-adds at 224 px of the references' block lists
# (../reference: timm param_count, MindCV's count less its BatchNorm running statistics).
REFERENCE = {"mixnet_s": (4_134_606, "239.2M"), "mixnet_m": (5_014_382, "339.2M"),
             "mixnet_l": (7_329_252, "555.3M")}


@pytest.mark.parametrize("name", PRESETS)
def test_reference_counts(name: str) -> None:
    cost = network_cost(preset(name), 224)
    assert (cost.params, f"{cost.madds / 1e6:.1f}M") == REFERENCE[name]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_analytic_params_equal_built_network(seed: int) -> None:
    genome = SPACE.random_genome(random.Random(seed)).with_changes(num_classes=10, width=0.5)
    net = create_model(genome)
    built = int(sum(np.prod(p.shape) for p in net.trainable_params()))
    assert network_cost(genome).params == built


def onnx_count(path: Path) -> tuple[int, int]:
    """(parameters, multiply-adds) read off an ONNX graph with its shapes inferred.

    Parameters: the weights and biases of Conv and Gemm and BatchNormalization's scale and bias (its
    running mean and variance are statistics). Multiply-adds: a Conv's output elements times its
    (input channels / groups) x kernel area, a Gemm's M x N x K; every other operator counts none.
    """
    graph = shape_inference.infer_shapes(onnx.load(str(path)), strict_mode=True).graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*graph.input, *graph.value_info, *graph.output]}
    initializers = {i.name: list(i.dims) for i in graph.initializer}
    shapes.update(initializers)
    weights, statistics, madds = set(), set(), 0
    for node in graph.node:
        attrs = {a.name: a.i for a in node.attribute}
        assert node.op_type not in ("MatMul", "ConvTranspose", "Einsum"), node.op_type
        if node.op_type == "Conv":
            kernel = shapes[node.input[1]]
            assert shapes[node.input[0]][1] == kernel[1] * attrs.get("group", 1)
            madds += int(np.prod(shapes[node.output[0]])) * int(np.prod(kernel[1:]))
            weights.update(node.input[1:])
        elif node.op_type == "Gemm":
            a, b = shapes[node.input[0]], shapes[node.input[1]]
            m, k = a[::-1] if attrs.get("transA") else a
            madds += m * k * (b[0] if attrs.get("transB") else b[1])
            weights.update(node.input[1:])
        elif node.op_type == "BatchNormalization":
            weights.update(node.input[1:3])
            statistics.update(node.input[3:5])
    others = [i for i in graph.initializer if i.name not in weights | statistics]
    assert all(i.data_type == onnx.TensorProto.INT64 for i in others)  # slice bounds and shapes, no weights
    return sum(int(np.prod(initializers[n])) for n in weights), madds


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """MixNet-S, -M and -L exported by ``search.py export --format ONNX`` at 224 px (in parallel)."""
    folder = tmp_path_factory.mktemp("onnx")
    paths = {name: folder / f"{name}.onnx" for name in PRESETS}
    with ThreadPoolExecutor(len(PRESETS)) as pool:
        procs = pool.map(lambda name: run_cli("export", name, "--format", "ONNX", "--out", str(paths[name])), PRESETS)
        for proc in procs:
            assert proc.returncode == 0, proc.stderr
    return paths


@pytest.mark.parametrize("name", PRESETS)
def test_cost_model_equals_the_onnx_graph_count(exported: dict[str, Path], name: str) -> None:
    cost = network_cost(preset(name), 224)
    assert (cost.params, cost.madds) == onnx_count(exported[name])
