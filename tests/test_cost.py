"""The analytic cost model against the reference counts and against the built network."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from mixnet import create_model
from space import preset
from space.cost import network_cost
from space.search_space import SearchSpace

SPACE = SearchSpace.from_yaml(Path(__file__).parents[1] / "configs" / "space" / "mixnet_s.yaml")


@pytest.mark.parametrize("name,params", [("mixnet_s", 4_134_606), ("mixnet_m", 5_014_382),
                                         ("mixnet_l", 7_329_252)])
def test_reference_parameter_counts(name: str, params: int) -> None:
    assert network_cost(preset(name)).params == params


def test_mixnet_s_madds_in_published_range() -> None:
    assert 230e6 <= network_cost(preset("mixnet_s"), 224).madds <= 265e6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_analytic_params_equal_built_network(seed: int) -> None:
    genome = SPACE.random_genome(random.Random(seed)).with_changes(num_classes=10, width=0.5)
    net = create_model(genome)
    built = int(sum(np.prod(p.shape) for p in net.trainable_params()))
    assert network_cost(genome).params == built
