"""Evaluating one trial: sample a genome, reuse a twin, check budgets, then measure and train.

Order matters for cost: the cost model and latency come first, budgets are checked before any
training (an infeasible genome spends zero training seconds), and a genome already evaluated in
the study reuses the stored result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import optuna

from mixnet.devices import current_device
from space import Genome
from space.cost import network_cost
from space.search_space import SearchSpace

from .config import SearchConfig
from .fidelity import accuracy_se, binomial_se
from .proxy_data import ProxyData
from .pruning import rung_pruner
from .record import TrialRecord, is_finished, store
from .recipes import seeded, trained_network
from .twins import find_twin, reuse_twin
from .workers import is_alive

TrainFn = Callable[..., Any]
LatencyFn = Callable[[Genome], float]
AccuracyFn = Callable[[optuna.Trial, Genome, "Evaluation"], float]


@dataclass
class Evaluation:
    """What one genome scored."""

    accuracy: float
    latency_ms: float
    params: int
    madds: int

    def metric(self, name: str) -> float:
        """The value of one objective metric."""
        return float(getattr(self, name))


class Evaluator:
    """The Optuna objective of a search (callable on a trial)."""

    def __init__(self, cfg: SearchConfig, space: SearchSpace, proxy: ProxyData, train_cfg: Any,
                 train_fn: TrainFn, latency_fn: LatencyFn, target: int, worker: str,
                 on_epoch: Callable[[int, int], None] | None = None,
                 device_turn: Callable[[], Any] | None = None, accuracy: "AccuracyFn | None" = None) -> None:
        self.cfg, self.space, self.proxy, self.train_cfg = cfg, space, proxy, train_cfg
        self.train_fn, self.latency_fn = train_fn, latency_fn
        self.target, self.worker, self.on_epoch = target, worker, on_epoch
        self.device_turn = device_turn
        self.accuracy: AccuracyFn = accuracy or self.train
        self.pruner = rung_pruner(cfg, int(train_cfg.epoch_size) * cfg.proxy.seeds)

    def values(self, ev: Evaluation) -> "float | tuple[float, ...]":
        """The objective values Optuna receives for an evaluation."""
        return self.cfg.goal.values(ev)

    def __call__(self, trial: optuna.Trial) -> "float | tuple[float, ...]":
        """Evaluate one trial (raises TrialPruned for surplus or pruned trials)."""
        store(trial, worker=self.worker)   # first, so that a dead worker's trial is known as its own
        if is_surplus(trial, self.target):
            store(trial, surplus=True)
            trial.study.stop()
            raise optuna.TrialPruned("the study reached its target number of trials")
        genome = self.space.sample(trial)
        key = genome.key()
        store(trial, genome=genome.to_string(), genome_key=key, proxy_genome=self.proxy_genome(genome).to_string(),
              stage="latency")
        twin = find_twin(trial, key)
        if twin is not None:
            return reuse_twin(trial, twin)
        try:
            ev = self.evaluate(trial, genome, key)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            store(trial, error=f"{type(exc).__name__}: {first}"[:500])
            raise
        return ev if not isinstance(ev, Evaluation) else self.values(ev)

    def proxy_genome(self, genome: Genome) -> Genome:
        """The network proxy training builds for ``genome``: the proxy's classes and the recipe's width."""
        return trained_network(genome, self.train_cfg, self.proxy.num_classes)

    def evaluate(self, trial: optuna.Trial, genome: Genome, key: str) -> "Evaluation | float | tuple[float, ...]":
        """Cost model and latency of the deployed ``genome``, budgets, then (if feasible) proxy training or
        scoring, and the device MindSpore reports it ran on.

        Just before training the study is searched for a twin again: two workers that drew the
        same genome at the same moment both see the other by then, and the later trial reuses.
        """
        cost = network_cost(genome, self.cfg.latency.target.resolution)
        t0 = time.perf_counter()
        latency = float(self.latency_fn(genome))
        ev = Evaluation(accuracy=0.0, latency_ms=latency, params=cost.params, madds=cost.madds)
        excess = {m: ev.metric(m) - float(limit) for m, limit in self.cfg.constraints.items()}
        for metric, value in excess.items():
            trial.set_constraint(metric, value)
        feasible = all(v <= 0 for v in excess.values())
        store(trial, latency_seconds=round(time.perf_counter() - t0, 3), latency_ms=latency, params=cost.params,
              madds=cost.madds, feasible=feasible, **({} if feasible else {"accuracy": 0.0, "train_seconds": 0.0}))
        if not feasible:
            return ev
        twin = find_twin(trial, key)
        if twin is not None:
            return reuse_twin(trial, twin, constraints=False)
        try:
            ev.accuracy = self.accuracy(trial, genome, ev)
        except BaseException:
            store(trial, device=current_device())
            raise
        store(trial, device=current_device(), accuracy=ev.accuracy)
        return ev

    def train(self, trial: optuna.Trial, genome: Genome, ev: Evaluation) -> float:
        """Proxy-train the deployed ``genome``'s proxy network once per proxy seed (the same seeds for every
        genome); the mean held-out top-1 as a fraction, with its standard error and the per-seed values
        stored on the trial."""
        genome = self.proxy_genome(genome)
        recipes = seeded(self.train_cfg, self.cfg.proxy.seeds)
        epochs = int(self.train_cfg.epoch_size)
        total = epochs * len(recipes)
        store(trial, stage="training", epochs=total)
        per_seed: list[float] = []
        curve: list[float] = []
        seconds = rate = 0.0
        started = time.perf_counter()
        for run, recipe in enumerate(recipes):
            hook = self.epoch_hook(trial, ev, run * epochs, total, curve, started)
            result = self.train_fn(recipe, genome, on_epoch=hook, progress=False, save_checkpoints=False,
                                   device_turn=self.device_turn)
            per_seed.append(float(result.final_top1) / 100.0)
            seconds += float(result.seconds)
            rate += float(result.images_per_second) / len(recipes)
        n = self.proxy.n_holdout
        noise = self.cfg.proxy.noise_fraction
        store(trial, accuracy_source="proxy", accuracy_seeds=[round(a, 6) for a in per_seed], proxy_seeds=[int(r.seed) for r in recipes],
              holdout_images=n, noise_sd=noise, accuracy_se=round(accuracy_se(per_seed, n, noise), 6),
              accuracy_se_binomial=round(binomial_se(sum(per_seed) / len(per_seed), n), 6),
              train_seconds=round(seconds, 2), images_per_second=round(rate, 2))
        return sum(per_seed) / len(per_seed)

    def epoch_hook(self, trial: optuna.Trial, ev: Evaluation, done_before: int, total: int, curve: list[float],
                   started: float) -> Callable[[int, dict], None]:
        """The trainer's per-epoch callback of one proxy run that starts after ``done_before`` epochs;
        ``curve`` collects the held-out accuracies of the trial's epochs, ``started`` is when its training began."""

        def on_epoch(epoch: int, metrics: dict) -> None:
            """Report progress (also in the storage, for other processes) and the epoch's accuracy; at a
            rung, or for a goal with intermediate values, let the pruner stop a poor trial."""
            step = done_before + epoch
            store(trial, epochs_done=step + 1)
            if self.on_epoch is not None:
                self.on_epoch(step + 1, total)
            if metrics["top1"] is None:
                return
            curve.append(metrics["top1"] / 100.0)
            store(trial, intermediate_accuracy=[round(a, 6) for a in curve])
            value = self.cfg.goal.intermediate(curve[-1], ev.latency_ms)
            if value is not None:
                trial.report(value, step)
                if trial.should_prune():
                    self.stop(trial, step + 1, started)
            if self.pruner is not None and self.pruner.stops(trial, step + 1, curve, ev):
                self.stop(trial, step + 1, started)

        return on_epoch

    @staticmethod
    def stop(trial: optuna.Trial, epochs: int, started: float) -> None:
        """Record that the pruner stopped ``trial`` after ``epochs`` epochs, and stop it."""
        store(trial, pruned_at_epoch=epochs, train_seconds=round(time.perf_counter() - started, 2))
        raise optuna.TrialPruned(f"pruned after epoch {epochs}")


def is_surplus(trial: optuna.Trial, target: int) -> bool:
    """True when finished trials (complete or pruned at a rung) plus earlier running ones already reach ``target``.

    An earlier running trial counts unless its worker is known to be dead: one that has not yet
    named its worker was created a moment ago by a live process.
    """
    trials = trial.study.get_trials(deepcopy=False)
    done = sum(1 for t in trials if is_finished(t))
    running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING and t.number < trial.number]
    workers = [TrialRecord.from_trial(t).worker for t in running]
    earlier = sum(1 for worker in workers if worker is None or is_alive(worker))
    return done + earlier >= target
