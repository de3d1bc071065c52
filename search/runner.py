"""Running a study: create or resume it, enqueue the baseline, run one or more workers."""

from __future__ import annotations

import multiprocessing
import time
import warnings
from dataclasses import dataclass, replace
from typing import Any, Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from space.basics.errors import UsageError
from space.search_space import SearchSpace

from .config import SearchConfig
from .objective import Evaluator
from .progress import TrialProgress
from .record import TrialRecord, is_finished
from .latency.sources import LatencySource, MeasuredLatency, latency_source
from .proxy_data import ProxyData, plan_proxy_data, prepare_proxy_data, proxy_data_of
from .recipes import on_proxy_data, proxy_train_config, training_turns
from .samplers import make_sampler
from .storage import open_storage
from .workers import WorkerDevices, fail_dead_trials, worker_devices, worker_id

MAX_CONSECUTIVE_FAILURES = 3


class SearchFailed(UsageError):
    """The search cannot go on (trials kept failing, or a worker stopped); the message says why."""


def quiet_optuna() -> None:
    """Keep Optuna's per-trial log lines and experimental-feature warnings out of the output."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def finished_count(study: optuna.Study) -> int:
    """Number of finished trials: complete, or pruned at a rung."""
    return sum(1 for t in study.get_trials(deepcopy=False) if is_finished(t))


def open_study(cfg: SearchConfig, create: bool) -> optuna.Study:
    """Load the study (creating it when ``create``); its objectives must match the config."""
    name, url = cfg.storage.study, cfg.storage.url
    storage = open_storage(url, must_exist=not create)
    summaries = {s.study_name: s for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    existing = summaries.get(name)
    wanted = cfg.goal.stored_names
    if existing is not None:
        stored = existing.user_attrs.get("objectives")
        directions = [d.name.lower() for d in existing.directions]
        if directions != cfg.goal.directions or (stored is not None and stored != wanted):
            raise UsageError(f"study '{name}' exists with objectives {stored or directions}; this "
                             f"config asks for {wanted} - use another --study name")
    elif not create:
        raise UsageError(f"study '{name}' not found in '{url}' - studies: "
                         f"{', '.join(summaries) or 'none'}")
    study = optuna.create_study(study_name=name, storage=storage, directions=cfg.goal.directions,
                                load_if_exists=True)
    if existing is None:
        study.set_user_attr("objectives", wanted)
        study.set_user_attr("config", cfg.to_dict())
    if study.metric_names is None:
        study.set_metric_names(wanted)  # optuna-dashboard labels its plots with them
    return study


def enqueue_baseline(study: optuna.Study, space: SearchSpace) -> None:
    """Make the space's skeleton (MixNet-S for the default space) the study's first trial."""
    if study.get_trials(deepcopy=False):
        return
    vector = space.encode_vector(space.skeleton)
    params = {d.name: d.choices[i] for d, i in zip(space.dimensions, vector)}
    study.enqueue_trial(params, user_attrs=TrialRecord(baseline=True).to_attrs())


class StopRules:
    """Optuna callback: stop at the target count, or after repeated failures of this worker."""

    def __init__(self, target: int, progress: TrialProgress | None) -> None:
        self.target, self.progress = target, progress
        self.failures = 0
        self.last_error = ""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Called by Optuna after every trial of this worker."""
        if trial.state == TrialState.FAIL:
            self.failures += 1
            self.last_error = TrialRecord.from_trial(trial).error or "unknown error"
            if self.progress is not None:
                self.progress.note(f"trial {trial.number} failed: {self.last_error}")
        elif trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
            self.failures = 0
        if self.progress is not None:
            self.progress.finished(trial, finished_count(study))
        if self.failures >= MAX_CONSECUTIVE_FAILURES or finished_count(study) >= self.target:
            study.stop()


@dataclass(frozen=True)
class SearchRun:
    """Everything a worker needs, made and checked once by ``run_search``: the config's parts, the
    space, the proxy split, the proxy recipe on it, the latency source and the workers' devices."""

    cfg: SearchConfig
    space: SearchSpace
    proxy: ProxyData
    recipe: Any
    latency: LatencySource
    devices: WorkerDevices

    def on_device(self, device: "int | None") -> tuple[SearchConfig, LatencySource]:
        """The config and latency source of a worker on ``device``: a latency measured on the workers'
        own target is timed on the worker's device (``latency.device_id`` then stands for nothing), so a
        timing takes its turn only with the work on that device."""
        cfg, lat = self.cfg, self.cfg.latency
        if device is None or lat.source != "measured" or lat.target.device != self.devices.target:
            return cfg, self.latency
        target = replace(lat.target, device_id=device)
        cfg = replace(cfg, doc=dict(cfg.doc, latency=dict(cfg.doc["latency"], device_id=device)),
                      latency=replace(lat, target=target))
        latency = self.latency
        if isinstance(latency, MeasuredLatency):
            latency = MeasuredLatency(target, lat.protocol, latency.cache_path)
        return cfg, latency


def run_worker(run: SearchRun, rank: int, show_progress: bool, train_fn: Callable | None = None) -> None:
    """One worker process, bound to its device first: optimize until the study holds ``trials`` finished trials."""
    from mixnet.quiet import quiet_mindspore
    quiet_mindspore()
    quiet_optuna()
    run.devices.bind(rank)
    import mindspore as ms
    ms.set_context(mode=ms.GRAPH_MODE)
    cfg, latency = run.on_device(run.devices.of(rank))
    study = open_study(cfg, create=False)
    fail_dead_trials(study)
    seed = cfg.seed + 1009 * rank + len(study.get_trials(deepcopy=False))
    study.sampler = make_sampler(cfg.sampler, seed)
    pruner = cfg.goal.pruner()
    if pruner is not None:
        study.pruner = pruner
    if train_fn is None:
        from trainer import train as train_fn
    progress = TrialProgress(cfg.trials, finished_count(study)) if show_progress else None
    evaluator = Evaluator(cfg, run.space, run.proxy, run.recipe, train_fn, latency, cfg.trials, worker_id(),
                          on_epoch=progress.epoch if progress else None, device_turn=training_turns(cfg),
                          accuracy=accuracy_source(run))
    rules = StopRules(cfg.trials, progress)
    try:
        if finished_count(study) < cfg.trials:
            # a proxy-trained trial builds and drops a network: collect after it; a supernet score allocates
            # little, and a full collection over the loaded supernet cost more than the score itself
            study.optimize(evaluator, callbacks=[rules], catch=(Exception,),
                           gc_after_trial=cfg.accuracy.source != "supernet")
    finally:
        if progress is not None:
            progress.close()
    if rules.failures >= MAX_CONSECUTIVE_FAILURES:
        raise SearchFailed(f"{rules.failures} trials in a row failed; last: {rules.last_error}")


def accuracy_source(run: SearchRun) -> "Callable | None":
    """The supernet's scorer when the config scores with one (made in each worker: it holds networks);
    None for proxy training, the evaluator's own."""
    if run.cfg.accuracy.source != "supernet":
        return None
    from .supernet.scoring import SupernetAccuracy, scorer_for
    from .supernet.training import supernet_recipe
    return SupernetAccuracy(scorer_for(run.cfg, run.proxy, supernet_recipe(run.cfg)), run.cfg.supernet.noise_fraction)


def _worker_process(run: SearchRun, rank: int, errors: Any) -> None:
    """A spawned worker: its error goes to ``errors`` as one line and the process exits 1 (no traceback)."""
    try:
        run_worker(run, rank, False)
    except Exception as exc:  # noqa: BLE001 - the parent reports it as one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        errors.put(f"worker {rank}: {first}" if isinstance(exc, UsageError)
                   else f"worker {rank}: {type(exc).__name__}: {first}")
        raise SystemExit(1) from None


def _spawn_workers(run: SearchRun, study: optuna.Study, show_progress: bool) -> None:
    """Run ``cfg.workers`` worker processes and show the overall progress from the storage."""
    cfg = run.cfg
    ctx = multiprocessing.get_context("spawn")
    errors = ctx.SimpleQueue()
    procs = [ctx.Process(target=_worker_process, args=(run, rank, errors)) for rank in range(cfg.workers)]
    for p in procs:
        p.start()
    progress = TrialProgress(cfg.trials, finished_count(study)) if show_progress else None
    try:
        while any(p.is_alive() for p in procs):
            if progress is not None:
                progress.set_complete(finished_count(study))
                progress.show_running(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
            time.sleep(1.0)
    finally:
        for p in procs:
            p.join()
        if progress is not None:
            progress.set_complete(finished_count(study))
            progress.close()
    bad = [p.exitcode for p in procs if p.exitcode != 0]
    if bad:
        reasons = []
        while not errors.empty():
            reasons.append(errors.get())
        why = "; ".join(sorted(set(r.split(": ", 1)[1] for r in reasons))) if reasons else \
            f"exit codes {bad}"
        raise SearchFailed(f"{len(bad)} of {cfg.workers} workers stopped: {why}")


def workers_target(cfg: SearchConfig, recipe: Any) -> str:
    """The device target workers train or score on: the proxy recipe's ``device_target`` (the supernet
    recipe's for supernet scores), else MindSpore's default."""
    from mixnet.devices import default_target
    if cfg.accuracy.source == "supernet":
        from .supernet.training import supernet_recipe
        recipe = supernet_recipe(cfg)
    return recipe.device_target or default_target()


def choose_impl_once() -> None:
    """Measure (or read) the ``auto`` MixConv choice here, so workers started next read it from the cache."""
    import mindspore as ms

    from mixnet.impl_select import resolve_impl
    ms.set_context(mode=ms.GRAPH_MODE)
    resolve_impl("auto")


def run_search(cfg: SearchConfig, show_progress: bool = True, train_fn: Callable | None = None,
               latency_fn: LatencySource | None = None) -> optuna.Study:
    """Run (or resume) the search of ``cfg`` until its study holds ``cfg.trials`` finished trials.

    The space, the data split, the proxy recipe, the latency source (or ``latency_fn``) and the
    workers' devices are made and checked once, before any data is written or any device time is
    spent, and handed to the workers. The ``auto`` MixConv choice is measured on worker 0's device.
    """
    quiet_optuna()
    space = SearchSpace.from_yaml(cfg.space)
    if cfg.accuracy.source == "supernet":
        from .supernet.scoring import check_trained
        check_trained(cfg, space)
    latency = latency_fn or latency_source(cfg.latency, space, cfg.out_dir, cfg.storage.remote_url, cfg.source)
    recipe = proxy_train_config(cfg)
    devices = worker_devices(cfg.devices, cfg.workers, workers_target(cfg, recipe), cfg.source)
    devices.bind(0)   # this process is worker 0, or makes the auto MixConv choice for the workers
    plan = plan_proxy_data(cfg.data)
    proxy = proxy_data_of(plan, cfg.out_dir)
    recipe = on_proxy_data(recipe, proxy)
    study = open_study(cfg, create=True)
    prepare_proxy_data(cfg.data, cfg.out_dir, plan)
    if recipe.mixconv_impl == "auto" and cfg.workers > 1:
        choose_impl_once()
    if cfg.baseline:
        enqueue_baseline(study, space)
    run = SearchRun(cfg, space, proxy, recipe, latency, devices)
    if cfg.workers == 1:
        run_worker(run, 0, show_progress, train_fn)
    else:
        _spawn_workers(run, study, show_progress)
    return study
