"""No duplicate work: a genome already evaluated in the study reuses the stored result."""

from __future__ import annotations

import time

import optuna
from optuna.trial import FrozenTrial, TrialState

from .record import TrialRecord, store
from .workers import is_alive

POLL_SECONDS = 2.0


def _same_genome(trial: optuna.Trial, key: str) -> list[FrozenTrial]:
    """Other finished or running trials of the study with the genome ``key``."""
    trials = trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
    return [t for t in trials if t.number != trial.number and TrialRecord.from_trial(t).genome_key == key]


def find_twin(trial: optuna.Trial, key: str) -> "FrozenTrial | None":
    """The earliest finished trial with this genome; waits while an earlier one is still running.

    A running twin whose worker is gone (dead process on this host) is not waited for.
    """
    while True:
        same = _same_genome(trial, key)
        done = [t for t in same if t.state == TrialState.COMPLETE]
        if done:
            return min(done, key=lambda t: t.number)
        running = [t for t in same if t.number < trial.number and is_alive(TrialRecord.from_trial(t).worker or "")]
        if not running:
            return None
        time.sleep(POLL_SECONDS)


def reuse_twin(trial: optuna.Trial, twin: FrozenTrial, constraints: bool = True) -> "float | tuple[float, ...]":
    """Copy the twin's metrics (and constraints, unless already set) and return its objective values."""
    store(trial, **TrialRecord.from_trial(twin).result(), train_seconds=0.0, reused_from=twin.number)
    for name, value in (twin.constraints.items() if constraints else ()):
        trial.set_constraint(name, value)
    values = twin.values
    return values[0] if len(values) == 1 else tuple(values)
