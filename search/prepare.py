"""``run --prepare``: what a search reads before its first trial, made where it is missing.

A search with ``latency.source: lut`` reads a per-block latency table and one with
``accuracy.source: supernet`` a trained supernet; ``search.py lut build`` and ``search.py supernet
train`` make them. Preparing makes both from the config alone (a partly trained supernet resumes),
after checking everything a search checks that does not need them.
"""

from __future__ import annotations

from pathlib import Path

from space.basics.atomic import check_output
from space.search_space import SearchSpace

from .config import SearchConfig


def prepare_search(cfg: SearchConfig, progress: bool = True) -> None:
    """Build ``cfg``'s latency table if its source is a missing LUT, and train (or resume) its supernet if
    its accuracy source is the supernet; the space, recipes, data, storage and outputs are checked first."""
    from .latency.cache import LatencyCache
    from .latency.lut_build import build_lut
    from .latency.sources import cache_path_of
    from .proxy_data import plan_proxy_data
    from .recipes import proxy_train_config
    from .runner import open_study, quiet_optuna
    from .supernet.scoring import SPACE_FILE, check_space
    from .supernet.training import supernet_recipe, train_supernet
    quiet_optuna()
    space = SearchSpace.from_yaml(cfg.space)
    supernet = cfg.accuracy.source == "supernet"
    if supernet:
        cfg.supernet.spec_of(space)
        supernet_recipe(cfg)
        if (cfg.supernet.dir / SPACE_FILE).is_file():
            check_space(space, cfg.supernet.dir, cfg.supernet)
    proxy_train_config(cfg)
    plan_proxy_data(cfg.data)
    open_study(cfg, create=True)
    section = cfg.latency
    if section.source == "lut" and not Path(section.lut).is_file():
        check_output(section.lut)
        build_lut(space, section.target, section.lut, progress=progress, warmup=section.protocol.warmup,
                  repeats=section.protocol.repeats, cache=LatencyCache(cache_path_of(section, cfg.out_dir)))
    if supernet:
        train_supernet(cfg, progress=progress)
