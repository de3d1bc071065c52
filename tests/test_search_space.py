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
