"""The training recipes of a search: the proxy's, the reference's, their seeds, and the network they train."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from space import Genome
from space.basics.errors import UsageError

from .config import SearchConfig
from .proxy_data import ProxyData


def training_turns(cfg: SearchConfig) -> "Callable[[], Any] | None":
    """Shared device turns for proxy training when latency is timed on the device that trains.

    Workers of this machine then never train while one of them times a latency.
    """
    import mindspore as ms
    lat = cfg.latency
    if lat.source != "measured" or lat.target.device != ms.get_context("device_target"):
        return None
    from .latency.device_turns import DeviceTurns
    return DeviceTurns.on(lat.target.device, lat.target.device_id).work


def _split_overrides(cfg: SearchConfig, folder: str) -> dict[str, Any]:
    """The overrides that point a recipe at the proxy split's folders (train on ``train``, score on
    ``holdout``); :func:`on_proxy_data` says where the split is."""
    return {"train_split": "train", "val_split": "holdout", "ckpt_save_dir": str(cfg.out_dir / folder)}


def on_proxy_data(recipe: Any, proxy: ProxyData) -> Any:
    """``recipe`` reading the proxy split ``proxy`` (its folder and its number of classes)."""
    return recipe.replace(data_dir=str(proxy.root), num_classes=proxy.num_classes)


def proxy_train_config(cfg: SearchConfig) -> Any:
    """The training config of a proxy run: the recipe file plus overrides, checked; placed on the
    proxy split by :func:`on_proxy_data`. A search that prunes validates after every epoch."""
    from trainer.config import load_config
    prunes = cfg.pruner.type != "none" or cfg.goal.pruner() is not None
    every_epoch = {"val_while_train": True, "val_interval": 1} if prunes else {}
    overrides = dict(cfg.proxy.overrides, **every_epoch, **_split_overrides(cfg, "proxy_ckpt"))
    try:
        return load_config(cfg.proxy.config, overrides)
    except UsageError as exc:
        raise UsageError(f"{cfg.source}: proxy: {exc}") from None


def reference_train_config(cfg: SearchConfig, recipe: "str | None" = None) -> Any:
    """The reference recipe the proxy stands for (``proxy check``, ``verify``), checked; placed on the
    proxy split by :func:`on_proxy_data`.

    ``recipe`` (or ``verify.config``) names a recipe file, used with ``verify.overrides``; without
    one it is the proxy's own recipe trained ``verify.epochs_factor`` times longer (the added
    epochs extend any decay phase), then ``verify.overrides``.
    """
    from trainer.config import load_config
    recipe = recipe or cfg.verify.config
    where = f"{cfg.source}: reference recipe"
    if recipe is not None:
        if not Path(recipe).is_file():
            raise UsageError(f"{where} '{recipe}' not found")
        path, overrides = recipe, dict(cfg.verify.overrides)
    else:
        base = proxy_train_config(cfg)
        factor = cfg.verify.epochs_factor
        longer = {"epoch_size": base.epoch_size * factor}
        if base.decay_epochs is not None:
            longer["decay_epochs"] = base.decay_epochs + longer["epoch_size"] - base.epoch_size
        path, overrides = cfg.proxy.config, {**cfg.proxy.overrides, **longer, **cfg.verify.overrides}
    overrides.update(_split_overrides(cfg, "reference_ckpt"))
    try:
        return load_config(path, overrides)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None


def seeded(train_cfg: Any, seeds: int) -> list[Any]:
    """``seeds`` copies of a recipe at seeds ``seed``, ``seed + 1``, ...: the same set for every genome,
    so comparisons between genomes are paired by seed."""
    return [train_cfg.replace(seed=train_cfg.seed + i) for i in range(seeds)]


def reference_seeded(train_cfg: Any, seeds: int, skip: int = 0) -> list[Any]:
    """``seeds`` copies of a reference recipe at the seeds below its own, after ``skip`` of them (``seed - 1 -
    skip``, ``seed - 2 - skip``, ...); UsageError when that would go below 0.

    Proxy runs train at the seed and above (:func:`seeded`), so no reference run starts from a proxy
    run's initialization and data order: shared, they lift the proxy's agreement with the reference
    and carry the lucky seed a search picked a genome at into its verified accuracy.
    """
    check_reference_seeds(train_cfg, skip + seeds)
    return [train_cfg.replace(seed=int(train_cfg.seed) - 1 - skip - i) for i in range(seeds)]


def check_reference_seeds(train_cfg: Any, count: int) -> None:
    """Raise UsageError unless the reference recipe ``train_cfg`` leaves ``count`` seeds below its own (>= 0)."""
    lowest = int(train_cfg.seed) - count
    if lowest < 0:
        raise UsageError(f"reference recipe seed {train_cfg.seed}: {count} reference seed(s) below it would "
                         f"reach {lowest} - give it a seed >= {count}")


def trained_network(genome: Genome, train_cfg: Any, num_classes: int) -> Genome:
    """The network a proxy or reference run builds for the deployed ``genome``: the proxy data's
    classes and the recipe's width."""
    width = train_cfg.width
    return genome.with_changes(num_classes=num_classes, **({"width": width} if width else {}))
