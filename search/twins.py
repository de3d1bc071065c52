"""No duplicate work: a genome already evaluated in the study reuses the stored result."""

from __future__ import annotations

import time

import optuna
from optuna.trial import FrozenTrial, TrialState

from .record import TrialRecord, is_finished, store
from .workers import is_alive

POLL_SECONDS = 2.0


def _same_genome(trial: optuna.Trial, key: str) -> list[FrozenTrial]:
    """Other finished (complete or pruned at a rung) or running trials of the study with the genome ``key``."""
    trials = [t for t in trial.study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING or is_finished(t)]
    return [t for t in trials if t.number != trial.number and TrialRecord.from_trial(t).genome_key == key]


def find_twin(trial: optuna.Trial, key: str) -> "FrozenTrial | None":
    """The earliest finished trial with this genome (complete, or pruned at a rung); waits while an earlier
    one is still running.

    A running twin whose worker is gone (dead process on this host) is not waited for.
    """
    while True:
        same = _same_genome(trial, key)
        done = [t for t in same if t.state != TrialState.RUNNING]
        if done:
            return min(done, key=lambda t: t.number)
        running = [t for t in same if t.number < trial.number and is_alive(TrialRecord.from_trial(t).worker or "")]
        if not running:
            return None
        time.sleep(POLL_SECONDS)


def reuse_twin(trial: optuna.Trial, twin: FrozenTrial, constraints: bool = True) -> "float | tuple[float, ...]":
    """Copy the twin's metrics (and constraints, unless already set) and return its objective values; a twin
    the pruner stopped stops this trial too (its genome is never trained again)."""
    record = TrialRecord.from_trial(twin)
    store(trial, **record.result(), train_seconds=0.0, reused_from=twin.number)
    for name, value in (twin.constraints.items() if constraints else ()):
        trial.set_constraint(name, value)
    if twin.state == TrialState.PRUNED:
        raise optuna.TrialPruned(f"the genome of trial {twin.number} was pruned after epoch {record.pruned_at_epoch}")
    values = twin.values
    return values[0] if len(values) == 1 else tuple(values)
