"""What a trial is measured with: the latency source and the proxy-training recipe."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

from space import Genome
from space.basics.errors import UsageError

from .config import SearchConfig, latency_target_of
from .proxy_data import ProxyData


def latency_target(cfg: SearchConfig) -> Any:
    """The LatencyTarget of the config's ``latency`` section (checked against this machine, with its protocol).

    ``mindir`` on a device this host lacks is allowed: the search then reads results imported
    with ``search.py mindir import`` from its latency cache, and a genome without one fails its trial.
    """
    from .latency.target import absent_but_importable
    target = latency_target_of(cfg.latency)
    try:
        absent_but_importable(target)
    except UsageError as exc:
        raise UsageError(f"{cfg.source}: latency: {exc}") from None
    return target


def make_latency_fn(cfg: SearchConfig) -> Callable[[Genome], float]:
    """Genome -> latency in ms: measured on the target (cached), or predicted from a LUT built for
    the config's space and latency target (checked here, once)."""
    lat = cfg.latency
    if lat["source"] == "lut":
        from space.search_space import SearchSpace

        from .latency import LatencyTable
        table = LatencyTable.load(lat["lut"])
        try:
            table.ensure_matches(SearchSpace.from_yaml(cfg.space), backend=lat["backend"], device=lat["device"],
                                 batch=lat["batch"], resolution=lat["resolution"])
        except UsageError as exc:
            raise UsageError(f"{cfg.source}: latency.lut '{lat['lut']}': {exc}") from None
        return table.predict
    from .latency import LatencyCache, measure_latency
    if lat["source"] == "remote":
        return remote_latency_fn(cfg)
    target = latency_target(cfg)
    cache = LatencyCache(lat["cache"] or cfg.out_dir / "latency_cache.sqlite")

    def measured(genome: Genome) -> float:
        """Median latency of ``genome`` on the target."""
        return measure_latency(genome, target, warmup=lat["warmup"], repeats=lat["repeats"],
                               cache=cache, min_span_s=lat["min_span_s"]).median_ms

    return measured


def remote_latency_fn(cfg: SearchConfig) -> Callable[[Genome], float]:
    """Genome -> median latency (ms) measured by a ``search.py latency serve`` host through the queue
    at ``cfg.remote_url`` (opened here, so an unreachable queue fails before any work); results are
    also kept in this host's latency cache."""
    from tqdm import tqdm

    from .latency import LatencyCache
    from .latency.remote import LatencyQueue
    lat = cfg.latency
    target = latency_target_of(lat)
    queue = LatencyQueue(cfg.remote_url)
    cache = LatencyCache(lat["cache"] or cfg.out_dir / "latency_cache.sqlite")

    def remote(genome: Genome) -> float:
        """Median latency of ``genome`` on the serving device."""
        result = queue.wait(genome, target, lat["warmup"], lat["repeats"], lat["min_span_s"],
                            lat["remote_timeout_s"], on_wait=lambda line: tqdm.write(line, file=sys.stderr))
        cache.put(genome, result)
        return result.median_ms

    return remote


def training_turns(cfg: SearchConfig) -> "Callable[[], Any] | None":
    """Shared device turns for proxy training when latency is timed on the device that trains.

    Workers of this machine then never train while one of them times a latency.
    """
    import mindspore as ms
    lat = cfg.latency
    if lat["source"] != "measured" or lat["device"] != ms.get_context("device_target"):
        return None
    from .latency.device_turns import DeviceTurns
    return DeviceTurns.on(lat["device"], lat["device_id"]).work


def _split_overrides(cfg: SearchConfig, proxy: "ProxyData | None", folder: str) -> dict[str, Any]:
    """The overrides that point a recipe at the proxy split (train on ``train``, score on ``holdout``)."""
    overrides: dict[str, Any] = {"train_split": "train", "val_split": "holdout",
                                 "ckpt_save_dir": str(cfg.out_dir / folder)}
    if proxy is not None:
        overrides.update(data_dir=str(proxy.root), num_classes=proxy.num_classes)
    return overrides


def proxy_train_config(cfg: SearchConfig, proxy: "ProxyData | None" = None) -> Any:
    """The training config of a proxy run: the recipe file plus overrides, on the proxy split.

    Without ``proxy`` the recipe is only checked (its data settings are filled in later).
    """
    from trainer.config import load_config
    overrides = dict(cfg.proxy["overrides"], **_split_overrides(cfg, proxy, "proxy_ckpt"))
    try:
        return load_config(cfg.proxy["config"], overrides)
    except UsageError as exc:
        raise UsageError(f"{cfg.source}: proxy: {exc}") from None


def reference_train_config(cfg: SearchConfig, proxy: "ProxyData | None" = None,
                           recipe: "str | None" = None) -> Any:
    """The reference recipe the proxy stands for (``proxy check``, ``verify``), on the proxy split.

    ``recipe`` (or ``verify.config``) names a recipe file, used with ``verify.overrides``; without
    one it is the proxy's own recipe trained ``verify.epochs_factor`` times longer (the added
    epochs extend any decay phase), then ``verify.overrides``.
    """
    from trainer.config import load_config
    recipe = recipe or cfg.verify["config"]
    where = f"{cfg.source}: reference recipe"
    if recipe is not None:
        if not Path(recipe).is_file():
            raise UsageError(f"{where} '{recipe}' not found")
        path, overrides = recipe, dict(cfg.verify["overrides"])
    else:
        base = proxy_train_config(cfg)
        factor = cfg.verify["epochs_factor"]
        longer = {"epoch_size": base.epoch_size * factor}
        if base.decay_epochs is not None:
            longer["decay_epochs"] = base.decay_epochs + longer["epoch_size"] - base.epoch_size
        path, overrides = cfg.proxy["config"], {**cfg.proxy["overrides"], **longer, **cfg.verify["overrides"]}
    overrides.update(_split_overrides(cfg, proxy, "reference_ckpt"))
    try:
        return load_config(path, overrides)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None


def seeded(train_cfg: Any, seeds: int) -> list[Any]:
    """``seeds`` copies of a recipe at seeds ``seed``, ``seed + 1``, ...: the same set for every genome,
    so comparisons between genomes are paired by seed."""
    return [train_cfg.replace(seed=train_cfg.seed + i) for i in range(seeds)]


def trained_network(genome: Genome, train_cfg: Any, num_classes: int) -> Genome:
    """The network a proxy or reference run builds for the deployed ``genome``: the proxy data's
    classes and the recipe's width."""
    width = train_cfg.width
    return genome.with_changes(num_classes=num_classes, **({"width": width} if width else {}))
