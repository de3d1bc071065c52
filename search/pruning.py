"""Multi-objective successive halving: proxy training stops early for trials dominated at a rung.

Optuna prunes single-objective studies only. Here a trial that reaches a rung (an epoch count) is
compared with every trial of the study that reached the same rung, on its held-out accuracy after
that many epochs and on the costs known before training (latency, and params or MAdds when they
are objectives). It goes on only if its Pareto rank is among the best 1/eta of them, as successive
halving keeps the top 1/eta; a trial on the rung's front always goes on. Latency is known first,
so a slow genome with a poor early accuracy is the first to stop.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from .pareto import non_domination_ranks
from .record import TrialRecord
from .sections import PrunerSection

COMPETING = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


class RungPruner:
    """Decides at each rung of a trial of ``epochs`` epochs whether it goes on."""

    def __init__(self, section: PrunerSection, epochs: int, objectives: "list[str]") -> None:
        self.eta = section.eta
        self.rungs = section.rungs_for(epochs)
        self.costs = [m for m in objectives if m != "accuracy"]

    def point(self, accuracy: float, record: "TrialRecord | Any") -> list[float]:
        """A trial's point at a rung, every coordinate minimized."""
        return [-accuracy, *(float(getattr(record, m)) for m in self.costs)]

    def rung_points(self, trial: optuna.Trial, rung: int) -> list[list[float]]:
        """The points at ``rung`` of the study's other trials that trained that far (copies of a twin left out)."""
        points = []
        for other in trial.study.get_trials(deepcopy=False, states=COMPETING):
            record = TrialRecord.from_trial(other)
            curve = record.intermediate_accuracy or []
            if other.number != trial.number and record.reused_from is None and len(curve) >= rung:
                points.append(self.point(curve[rung - 1], record))
        return points

    def stops(self, trial: optuna.Trial, epochs_done: int, curve: "list[float]", record: Any) -> bool:
        """True when ``trial`` (its accuracies ``curve`` so far, its costs in ``record``) stops at this epoch."""
        if epochs_done not in self.rungs:
            return False
        points = [self.point(curve[epochs_done - 1], record), *self.rung_points(trial, epochs_done)]
        return not is_kept(points, 0, self.eta)


def is_kept(points: "list[list[float]]", index: int, eta: int) -> bool:
    """True when point ``index`` is among the best ``max(1, n // eta)`` of ``n`` points by Pareto rank
    (ties of the last rank kept together)."""
    ranks = non_domination_ranks(points)
    keep = max(1, len(points) // eta)
    return bool(ranks[index] <= sorted(ranks)[keep - 1])


def rung_pruner(cfg: Any, epochs: int) -> "RungPruner | None":
    """The pruner of a search config for trials of ``epochs`` epochs (None without one)."""
    if cfg.pruner.type != "mo_halving":
        return None
    return RungPruner(cfg.pruner, epochs, cfg.goal.front_objectives)
