"""The search space: MixNet-S is a point, Optuna samples only str/int categoricals, membership reasons."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
import yaml

from space import preset
from space.basics.errors import UsageError
from space.search_space import SearchSpace

SPACE_FILE = Path(__file__).parents[1] / "configs" / "space" / "mixnet_s.yaml"
SPACE = SearchSpace.from_yaml(SPACE_FILE)


def test_mixnet_s_is_a_point_of_the_default_space() -> None:
    assert SPACE.contains(preset("mixnet_s"))
    vector = SPACE.encode_vector(preset("mixnet_s"))
    assert SPACE.decode_vector(vector) == preset("mixnet_s")


def test_cardinality_counts_every_free_choice() -> None:
    # 16 layers x 5 kernel groups; 15 layers x 2 expansion ratios (layer 0 is fixed at e1)
    assert SPACE.cardinality == 5 ** 16 * 2 ** 15
    assert len(SPACE.dimensions) == 31
    assert math.prod(len(o) for o in [SPACE.layer_options(i) for i in range(1, 16)]) == 10 ** 15


def test_optuna_samples_categoricals_of_str_and_int() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    genomes = []

    def objective(trial: optuna.Trial) -> float:
        genome = SPACE.sample(trial)
        genomes.append(genome)
        return 0.0

    study.optimize(objective, n_trials=5)
    for trial, genome in zip(study.trials, genomes):
        assert all(type(v) in (str, int) for v in trial.params.values())
        assert SPACE.contains(genome)
        assert SPACE.decode(trial.params) == genome


def test_outside_genome_names_layer_and_choice() -> None:
    s = preset("mixnet_s")
    genes = s.single_genes()
    genes[3] = genes[3].with_changes(kernel_sizes=(3, 5, 7, 9, 11, 13))
    reason = SPACE.why_not(s.with_changes(blocks=tuple(genes)))
    assert reason == "layer 3: kernel_sizes 3.5.7.9.11.13 not in menu ['3', '3.5', '3.5.7', '3.5.7.9', '3.5.7.9.11']"
    assert "19 layers" in SPACE.why_not(preset("mixnet_m"))
    genes = s.single_genes()
    genes[5] = genes[5].with_changes(act="relu")
    assert SPACE.why_not(s.with_changes(blocks=tuple(genes))).startswith("layer 5: act relu is fixed")


def test_optional_menus_and_bad_space_files(tmp_path: Path) -> None:
    doc = {"skeleton": "mixnet_s", "choices": {"kernel_sizes": ["3", "3.5"], "expand_ratio": [3, 6],
                                               "se_ratio": ["0", "0.25", "0.5"]},
           "layers": {0: {"expand_ratio": [1]}, 3: {"kernel_sizes": ["3.5.7"]}}}
    with pytest.raises(UsageError, match="not a point of its own space: layer 7: kernel_sizes 3.5.7"):
        SearchSpace.from_dict(doc)
    doc["choices"]["kernel_sizes"] = ["3", "3.5", "3.5.7", "3.5.7.9", "3.5.7.9.11"]
    space = SearchSpace.from_dict(doc)
    assert len(space.layer_options(1)) == 5 * 2 * 3 and len(space.layer_options(3)) == 2 * 3
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"skeleton": "mixnet_s", "choises": {}}))
    with pytest.raises(UsageError, match="unknown key 'choises' - did you mean choices"):
        SearchSpace.from_yaml(bad)
    bad.write_text(yaml.safe_dump({"skeleton": "mixnet_s", "choices": {"kernel_sizes": ["3.4"]}}))
    with pytest.raises(UsageError, match="kernel group '3.4'"):
        SearchSpace.from_yaml(bad)


WIDE_FILE = SPACE_FILE.parent / "mixnet_s_wide.yaml"
WIDE = SearchSpace.from_yaml(WIDE_FILE)


def test_graded_genomes_run_from_the_smallest_to_the_largest_point() -> None:
    """Level 0 is every layer at kernels {3} and its smallest expansion, level 1 at {3..11} and e6
    (read from the space file); costs grow with the level, and a uniform genome never beats either end."""
    import random

    from space.cost import network_cost
    doc = yaml.safe_load(WIDE_FILE.read_text())
    smallest = {d.name: ("3" if d.field == "kernel_sizes" else min(d.choices)) for d in WIDE.dimensions}
    largest = {d.name: (doc["choices"]["kernel_sizes"][-1] if d.field == "kernel_sizes" else max(d.choices))
               for d in WIDE.dimensions}
    rng = random.Random(1)
    assert WIDE.graded_genome(rng, 0.0) == WIDE.decode(smallest)
    assert WIDE.graded_genome(rng, 1.0) == WIDE.decode(largest)
    madds = [network_cost(WIDE.graded_genome(random.Random(s), level), 224).madds
             for level in (0.0, 0.25, 0.5, 0.75, 1.0) for s in range(3)]
    means = [sum(madds[i:i + 3]) / 3 for i in range(0, 15, 3)]
    assert means == sorted(means) and means[-1] > 5 * means[0]
    uniform = [network_cost(WIDE.random_genome(rng), 224).madds for _ in range(50)]
    assert means[0] < min(uniform) and max(uniform) < means[-1]
    with pytest.raises(UsageError, match="level 1.5"):
        WIDE.graded_genome(rng, 1.5)


def test_checks_sample_spread_genomes_across_the_space() -> None:
    """``spread``: MixNet-S, then distinct genomes from the smallest to the largest; ``uniform``
    genomes keep to the middle of the space's MAdds range."""
    from scipy.stats import spearmanr

    from search.proxy_check import sampled_genomes
    from space.cost import network_cost
    spread = sampled_genomes(WIDE, 12, 0, "spread")
    uniform = sampled_genomes(WIDE, 12, 0)
    assert spread[0] == uniform[0] == preset("mixnet_s")
    assert len({g.key() for g in spread}) == 12
    madds = [network_cost(g, 224).madds for g in spread[1:]]
    assert spearmanr(range(11), madds)[0] > 0.9
    assert madds[0] == min(madds) and madds[-1] == max(madds)
    middle = [network_cost(g, 224).madds for g in uniform[1:]]
    assert max(madds) - min(madds) > 2 * (max(middle) - min(middle))
    with pytest.raises(UsageError, match="--sampling wide"):
        sampled_genomes(WIDE, 12, 0, "wide")
