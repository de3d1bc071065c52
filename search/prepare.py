"""``run --prepare``: what a search reads before its first trial, made where it is missing.

A search with ``latency.source: lut`` reads a per-block latency table and one with
``accuracy.source: supernet`` a trained supernet; ``search.py lut build`` and ``search.py supernet
train`` make them. Preparing makes both from the config alone (a partly trained supernet resumes),
after checking everything a search checks that does not need them. Before any work it prints its
plan: the phases still to do and the minutes each should take here, estimated from this project's
own measurements (``MEASURED``); after training the supernet, its skeleton's score.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from space.basics.atomic import check_output
from space.search_space import SearchSpace

from .config import SearchConfig
from .proxy_data import ProxyData, plan_proxy_data, proxy_data_of

# Seconds per unit of work, measured on 2 cores with 28 px images by `python search.py` from nothing
# (configs/search/supernet_demo.yaml, 2026-12-05; docs/supernet.md, "Cost on 2 cores"): the latency table
# 245 s for 243 parts (233 blocks and 10 calibration genomes), the supernet 400 s for 16 epochs of 5,441
# images, 1,000 trials 550 s on 2 workers scoring 1,024 held-out images each; and by `python search.py
# verify --config configs/search/supernet_demo.yaml`: 8 reference runs of 12 epochs on the same 5,441
# images in 1,208 s.
MEASURED_CORES = 2
MEASURED_PIXELS = 28 * 28
MEASURED = {"lut part": 245 / 243, "supernet image": 400 / (16 * 5441), "scored image": 550 / (1000 * 1024),
            "trained image": 1208 / (8 * 12 * 5441)}


def expected_seconds(kind: str, count: float, pixels: int = MEASURED_PIXELS, workers: int = 1) -> float:
    """Seconds ``count`` units of ``kind`` (a key of ``MEASURED``) should take on this machine: the measured
    seconds per unit, times the images' ``pixels`` over the measurement's, times the measurement's cores over
    the cores the work gets here (all of them for one process, one each for several ``workers``). Latency-table
    parts are timed one at a time, so their time scales with neither."""
    seconds = MEASURED[kind] * count
    if kind == "lut part":
        return seconds
    cores = os.cpu_count() or 1
    return seconds * pixels / MEASURED_PIXELS * MEASURED_CORES / (cores if workers == 1 else min(workers, cores))


def about(seconds: float) -> str:
    """An estimated duration as a person reads it: ``under 1 min``, ``about 7 min``, ``about 2.5 h``."""
    if seconds < 60:
        return "under 1 min"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"


def took(seconds: float) -> str:
    """A measured duration as a person reads it: ``48 s``, ``6 min 40 s``."""
    seconds = round(seconds)
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60} s"


def phases_line(phases: "dict[str, float]") -> str:
    """One line of what each phase of a run took, and all of them together."""
    parts = ", ".join(f"{name} {took(seconds)}" for name, seconds in phases.items())
    return f"took {took(sum(phases.values()))}: {parts}"


def pixels_of(recipe: Any) -> int:
    """The pixels of one training image of ``recipe``."""
    return int(recipe.image_resize or 0) ** 2 or MEASURED_PIXELS


def plan_lines(cfg: SearchConfig, space: SearchSpace, proxy: ProxyData, lut_missing: bool, supernet_done: int,
               trials_done: int) -> list[str]:
    """What ``run --prepare`` will do: a line a phase still to do, with its estimated time (``proxy``: the proxy
    split; ``supernet_done``: epochs of the supernet already trained; ``trials_done``: finished trials)."""
    from .latency.lut_build import DEFAULT_CALIBRATION, calibration_genomes, lut_parts
    from .recipes import proxy_train_config
    from .supernet.training import supernet_recipe
    phases, n_train = [], proxy.n_train
    if lut_missing:
        target = cfg.latency.target
        parts = len(lut_parts(space, target.resolution)) + len(calibration_genomes(space, DEFAULT_CALIBRATION, 0))
        phases.append((expected_seconds("lut part", parts), f"latency table: {parts} parts timed on "
                       f"{target.backend} {target.device} at {target.resolution} px -> {cfg.latency.lut}"))
    supernet = cfg.accuracy.source == "supernet"
    if supernet:
        recipe = supernet_recipe(cfg)
        epochs = int(recipe.epoch_size) - supernet_done
        if epochs > 0:
            resumed = f" (resuming after epoch {supernet_done})" if supernet_done else ""
            phases.append((expected_seconds("supernet image", epochs * n_train, pixels_of(recipe)),
                           f"supernet: {plural(epochs, 'epoch')} on {n_train:,} images{resumed} -> "
                           f"{cfg.supernet.dir}"))
    trials = cfg.trials - trials_done
    if trials > 0:
        recipe = proxy_train_config(cfg)
        if supernet:
            images = min(cfg.supernet.score_images or proxy.n_holdout, proxy.n_holdout)
            kind, count, how = "scored image", trials * images, f"each scoring {images:,} held-out images"
        else:
            epochs = int(recipe.epoch_size) * cfg.proxy.seeds
            kind, count, how = "trained image", trials * epochs * n_train, f"each training {plural(epochs, 'epoch')}"
        more = f" more ({trials_done:,} of {cfg.trials:,} done)" if trials_done else ""
        phases.append((expected_seconds(kind, count, pixels_of(recipe), cfg.workers),
                       f"search: {plural(trials, 'trial')}{more} on {plural(cfg.workers, 'worker')}, {how}"))
    lines = [f"plan (estimates: this project's times measured on {MEASURED_CORES} cores, scaled to this config's "
             f"sizes and the {plural(os.cpu_count() or 1, 'core')} here):"]
    lines += [f"  {about(seconds):<13} {what}" for seconds, what in phases]
    lines.append(f"  {about(sum(s for s, _ in phases)):<13} in all; then the outputs: trials.csv, pareto.csv, "
                 f"pareto.png and best/ in {cfg.out_dir}")
    return lines


def plural(count: int, noun: str) -> str:
    """``count`` and ``noun``, with an s unless one (``1 epoch``, ``1,000 trials``)."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def verify_step(cfg: SearchConfig, genomes: int) -> str:
    """The ``verify`` command of ``cfg`` with the time its reference runs (``genomes`` x ``verify.seeds``)
    should take here."""
    from .recipes import reference_train_config
    recipe = reference_train_config(cfg)
    runs, epochs = genomes * cfg.verify.seeds, int(recipe.epoch_size)
    n_train = proxy_data_of(plan_proxy_data(cfg.data), cfg.out_dir).n_train
    seconds = expected_seconds("trained image", runs * epochs * n_train, pixels_of(recipe))
    return (f"python search.py verify --config {cfg.source}   # {about(seconds)} (estimate: "
            f"{plural(runs, 'reference run')} of {plural(epochs, 'epoch')} on {n_train:,} images)")


def prepare_search(cfg: SearchConfig, progress: bool = True) -> "dict[str, float]":
    """Build ``cfg``'s latency table if its source is a missing LUT, and train (or resume) its supernet if
    its accuracy source is the supernet; the space, recipes, data, storage and outputs are checked first,
    then the plan is printed. After training the supernet, prints its skeleton's recalibrated score.
    Returns the seconds each phase that ran took (``latency table``, ``supernet``)."""
    from .latency.cache import LatencyCache
    from .latency.lut_build import build_lut
    from .latency.sources import cache_path_of
    from .recipes import proxy_train_config
    from .runner import finished_count, open_study, quiet_optuna
    from .supernet.scoring import SPACE_FILE, check_space
    from .supernet.training import supernet_recipe, train_supernet, trained_epochs, trained_line
    quiet_optuna()
    space = SearchSpace.from_yaml(cfg.space)
    supernet = cfg.accuracy.source == "supernet"
    if supernet:
        cfg.supernet.spec_of(space)
        supernet_recipe(cfg)
        if (cfg.supernet.dir / SPACE_FILE).is_file():
            check_space(space, cfg.supernet.dir, cfg.supernet)
    proxy_train_config(cfg)
    proxy = proxy_data_of(plan_proxy_data(cfg.data), cfg.out_dir)
    study = open_study(cfg, create=True)
    section = cfg.latency
    lut_missing = section.source == "lut" and not Path(section.lut).is_file()
    if lut_missing:
        check_output(section.lut)
    done = trained_epochs(cfg) if supernet else 0
    print("\n".join(plan_lines(cfg, space, proxy, lut_missing, done, finished_count(study))), flush=True)
    phases = {}
    if lut_missing:
        started = time.perf_counter()
        build_lut(space, section.target, section.lut, progress=progress, warmup=section.protocol.warmup,
                  repeats=section.protocol.repeats, cache=LatencyCache(cache_path_of(section, cfg.out_dir)))
        phases["latency table"] = time.perf_counter() - started
    if supernet:
        started = time.perf_counter()
        result = train_supernet(cfg, progress=progress)
        if done < result.epochs:
            phases["supernet"] = time.perf_counter() - started
            print(trained_line(cfg, result), flush=True)
    return phases
