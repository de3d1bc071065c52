"""Optuna samplers by name, seeded per worker."""

from __future__ import annotations

import optuna

from space.basics.errors import UsageError

from .config import SAMPLERS


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    """The sampler ``name`` (tpe, nsga2, nsga3, random) seeded with ``seed``.

    Constraints reach every sampler that uses them through ``trial.set_constraint``.
    """
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)
    if name == "nsga3":
        return optuna.samplers.NSGAIIISampler(seed=seed, population_size=8)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise UsageError(f"sampler '{name}' - allowed: {', '.join(SAMPLERS)}")
