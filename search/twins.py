"""No duplicate work: a genome already evaluated in the study reuses the stored result."""

from __future__ import annotations

import time

import optuna
from optuna.trial import FrozenTrial, TrialState

from .workers import is_alive

REUSED_ATTRS = ("accuracy", "accuracy_se", "accuracy_se_binomial", "accuracy_seeds", "proxy_seeds", "holdout_images",
                "noise_sd", "latency_ms", "params", "madds", "feasible", "latency_seconds")
POLL_SECONDS = 2.0


def _same_genome(trial: optuna.Trial, key: str) -> list[FrozenTrial]:
    """Other finished or running trials of the study with the genome ``key``."""
    trials = trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
    return [t for t in trials if t.number != trial.number and t.user_attrs.get("genome_key") == key]


def find_twin(trial: optuna.Trial, key: str) -> "FrozenTrial | None":
    """The earliest finished trial with this genome; waits while an earlier one is still running.

    A running twin whose worker is gone (dead process on this host) is not waited for.
    """
    while True:
        same = _same_genome(trial, key)
        done = [t for t in same if t.state == TrialState.COMPLETE]
        if done:
            return min(done, key=lambda t: t.number)
        running = [t for t in same if t.number < trial.number and is_alive(t.user_attrs.get("worker", ""))]
        if not running:
            return None
        time.sleep(POLL_SECONDS)


def reuse_twin(trial: optuna.Trial, twin: FrozenTrial, constraints: bool = True) -> "float | tuple[float, ...]":
    """Copy the twin's metrics (and constraints, unless already set) and return its objective values."""
    for name in REUSED_ATTRS:
        if name in twin.user_attrs:
            trial.set_user_attr(name, twin.user_attrs[name])
    trial.set_user_attr("train_seconds", 0.0)
    trial.set_user_attr("reused_from", twin.number)
    for name, value in (twin.constraints.items() if constraints else ()):
        trial.set_constraint(name, value)
    values = twin.values
    return values[0] if len(values) == 1 else tuple(values)
