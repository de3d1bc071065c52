"""What a search optimizes: a Pareto front of several metrics, or MnasNet's single reward.

A goal gives the study its directions and stored objective names, turns an evaluation into the
values Optuna receives, and says whether (and how) a trial reports intermediate values to a pruner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol

import optuna

from space.basics.errors import UsageError

from .mnas import SOFT_W, mnas_reward
from .sections import check_bool, check_choice, is_number

MODES = ("pareto", "mnas")
METRICS = {"accuracy": "maximize", "latency_ms": "minimize", "params": "minimize", "madds": "minimize"}
MNAS_NAME = "mnas_reward"
DEFAULT_OBJECTIVES = ("accuracy", "latency_ms")
MNAS_DEFAULTS = {"target_ms": None, "w": SOFT_W, "hard": False}


class Measured(Protocol):
    """What an evaluated genome exposes: its metrics by name."""

    def metric(self, name: str) -> float: ...


class Goal(Protocol):
    """The interface of a search goal."""

    name: str

    @property
    def directions(self) -> list[str]: ...

    @property
    def stored_names(self) -> list[str]: ...

    @property
    def front_objectives(self) -> list[str]: ...

    def values(self, ev: Measured) -> "float | tuple[float, ...]": ...

    def intermediate(self, accuracy: float, latency_ms: float) -> "float | None": ...

    def pruner(self) -> "optuna.pruners.BasePruner | None": ...


def with_latency(objectives: "list[str] | tuple[str, ...]") -> list[str]:
    """The objectives a Pareto front of the outputs is drawn over: latency is always one of them."""
    return list(objectives) if "latency_ms" in objectives else [*objectives, "latency_ms"]


@dataclass(frozen=True)
class ParetoGoal:
    """Several metrics at once; the study keeps every non-dominated trial."""

    objectives: tuple[str, ...]
    name: str = "pareto"

    @property
    def directions(self) -> list[str]:
        """One Optuna direction per objective."""
        return [METRICS[m] for m in self.objectives]

    @property
    def stored_names(self) -> list[str]:
        """The objective names the study records (and optuna-dashboard shows)."""
        return list(self.objectives)

    @property
    def front_objectives(self) -> list[str]:
        """The metrics the outputs' Pareto front is drawn over."""
        return with_latency(self.objectives)

    def values(self, ev: Measured) -> tuple[float, ...]:
        """The objective values of an evaluation."""
        return tuple(ev.metric(m) for m in self.objectives)

    def intermediate(self, accuracy: float, latency_ms: float) -> None:
        """Multi-objective studies take no intermediate values."""
        return None

    def pruner(self) -> None:
        """Optuna prunes single-objective studies only."""
        return None


@dataclass(frozen=True)
class MnasGoal:
    """MnasNet's reward ACC x (LAT/T)^w, maximized; a median pruner stops poor trials per epoch."""

    target_ms: float
    w: float
    hard: bool
    name: str = "mnas"

    @property
    def directions(self) -> list[str]:
        """One maximized reward."""
        return ["maximize"]

    @property
    def stored_names(self) -> list[str]:
        """The objective name the study records."""
        return [MNAS_NAME]

    @property
    def front_objectives(self) -> list[str]:
        """The outputs still show accuracy against latency."""
        return ["accuracy", "latency_ms"]

    def reward(self, accuracy: float, latency_ms: float) -> float:
        """The reward of an accuracy (a fraction) at a latency."""
        return mnas_reward(accuracy, latency_ms, self.target_ms, self.w, self.hard)

    def values(self, ev: Measured) -> float:
        """The reward of an evaluation."""
        return self.reward(ev.metric("accuracy"), ev.metric("latency_ms"))

    def intermediate(self, accuracy: float, latency_ms: float) -> float:
        """The reward after an epoch, for the pruner."""
        return self.reward(accuracy, latency_ms)

    def pruner(self) -> optuna.pruners.BasePruner:
        """A median pruner after 3 trials, from the second epoch on."""
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)


def goal_of(mode: str, objectives: "list[str]", mnas: Mapping[str, Any], source: str = "config") -> Goal:
    """The goal a config's ``mode``, ``objectives`` and ``mnas`` section describe; a bad value, or a key the
    mode would ignore (``objectives`` changed in mode mnas, an ``mnas`` key changed in mode pareto), is a
    UsageError naming ``source`` and the key."""
    check_choice(mode, MODES, f"{source}: mode")
    if mode == "mnas":
        return _mnas_goal(objectives, mnas, source)
    for key, value in mnas.items():
        if value != MNAS_DEFAULTS[key]:
            raise UsageError(f"{source}: mnas.{key} {value!r} - mode 'pareto' does not use the mnas section; "
                             "remove it, or set mode: mnas")
    if not isinstance(objectives, list) or not objectives:
        raise UsageError(f"{source}: objectives must be a list from: {', '.join(METRICS)}")
    for metric in objectives:
        check_choice(metric, tuple(METRICS), f"{source}: objective")
    if "accuracy" not in objectives:
        raise UsageError(f"{source}: objectives {objectives} - a pareto search needs 'accuracy'")
    return ParetoGoal(tuple(objectives))


def _mnas_goal(objectives: "list[str]", mnas: Mapping[str, Any], source: str) -> MnasGoal:
    """The goal of mode mnas, its ``mnas`` section checked; ``objectives`` other than the default is refused."""
    if objectives != list(DEFAULT_OBJECTIVES):
        raise UsageError(f"{source}: objectives {objectives!r} - mode 'mnas' maximizes its reward of accuracy and "
                         f"latency_ms and takes no objectives; remove them, or set mode: pareto")
    target, w = mnas["target_ms"], mnas["w"]
    if not is_number(target) or target <= 0:
        raise UsageError(f"{source}: mnas.target_ms {target!r} - mnas mode needs a positive latency target")
    if not is_number(w) or not -1 <= w <= 0:
        raise UsageError(f"{source}: mnas.w {w!r} - must be a number in [-1, 0] (MnasNet: -0.07)")
    check_bool(mnas["hard"], f"{source}: mnas.hard")
    return MnasGoal(target_ms=float(target), w=float(w), hard=bool(mnas["hard"]))


def front_objectives_of(stored_names: "list[str]") -> list[str]:
    """The front objectives of a stored study, from the objective names it recorded."""
    return ["accuracy", "latency_ms"] if stored_names == [MNAS_NAME] else with_latency(stored_names)
