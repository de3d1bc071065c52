"""The search configuration: one YAML file (``configs/search/*.yaml``), flags override it."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from space.basics.documents import load_mapping
from space.basics.errors import UsageError, unknown_key_error
from trainer.bundled import DATASETS as BUNDLED
from trainer.bundled import check_available

from .goal import METRICS, Goal, goal_of

SAMPLERS = ("tpe", "nsga2", "nsga3", "gp", "random")
MODES = ("pareto", "mnas")
LATENCY_SOURCES = ("measured", "lut", "remote")
DATASETS = (*BUNDLED, "imagefolder")

DEFAULTS: dict[str, Any] = {
    "space": "configs/space/mixnet_s.yaml",
    "data": {"dataset": "digits", "data_dir": "runs/data/digits", "size": 32, "classes": None,
             "images_per_class": None, "holdout": 0.2, "seed": 0},
    "proxy": {"config": "configs/train/digits.yaml", "overrides": {}, "seeds": 1, "noise_sd": None},
    "verify": {"config": None, "overrides": {}, "seeds": 2, "epochs_factor": 3},
    "latency": {"source": "measured", "backend": "onnxruntime", "device": "CPU", "device_id": 0,
                "batch": 1, "resolution": 224, "warmup": 10, "repeats": 50, "min_span_s": 5.0,
                "threads": None,
                "lut": None, "cache": None, "remote": None, "remote_timeout_s": 600.0},
    "mode": "pareto",
    "objectives": ["accuracy", "latency_ms"],
    "mnas": {"target_ms": None, "w": -0.07, "hard": False},
    "constraints": {},
    "sampler": "tpe",
    "seed": 0,
    "trials": 12,
    "workers": 1,
    "storage": None,
    "study": "mixnet-search",
    "out": "runs/search",
    "baseline": True,
}


@dataclass
class SearchConfig:
    """A validated search configuration (sections as dicts, scalars as attributes)."""

    doc: dict[str, Any]
    source: str

    def __getattr__(self, name: str) -> Any:
        """Top-level keys as attributes (``cfg.trials``, ``cfg.latency``)."""
        try:
            return self.__dict__["doc"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def out_dir(self) -> Path:
        """The output folder."""
        return Path(self.doc["out"])

    @property
    def storage_url(self) -> str:
        """The storage URL; by default an SQLite file in the output folder."""
        return self.doc["storage"] or f"sqlite:///{(self.out_dir / 'study.db').as_posix()}"

    @property
    def remote_url(self) -> str:
        """Where remote latency requests are queued: ``latency.remote``, else the study's SQL storage."""
        return self.doc["latency"]["remote"] or self.storage_url

    @property
    def goal(self) -> Goal:
        """What the search optimizes: the Pareto front of ``objectives`` or MnasNet's reward."""
        return goal_of(self.doc["mode"], self.doc["objectives"], self.doc["mnas"])

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the configuration."""
        return copy.deepcopy(self.doc)


FREE_FORM = ("constraints", "overrides")


def _merge(defaults: dict, given: dict, where: str) -> dict:
    """Defaults updated by ``given`` section by section; unknown keys raise a UsageError."""
    out = copy.deepcopy(defaults)
    for key, value in given.items():
        if key not in defaults:
            raise unknown_key_error(str(key), tuple(defaults), where)
        if key in FREE_FORM:
            if not isinstance(value or {}, dict):
                raise UsageError(f"{where}: '{key}' must be a mapping")
            out[key] = dict(value or {})
        elif isinstance(defaults[key], dict):
            if not isinstance(value, dict):
                raise UsageError(f"{where}: '{key}' must be a mapping")
            out[key] = _merge(defaults[key], value, f"{where}: {key}")
        else:
            out[key] = value
    return out


def _check_choice(value: Any, allowed: tuple, what: str) -> None:
    """Raise a UsageError when ``value`` is not one of ``allowed``."""
    if value not in allowed:
        raise UsageError(f"{what} '{value}' - allowed: {', '.join(map(str, allowed))}")


def _check_int(value: Any, what: str, minimum: int) -> None:
    """Raise a UsageError unless ``value`` is an integer >= ``minimum``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise UsageError(f"{what} {value!r} - must be an integer >= {minimum}")


def _check_text(value: Any, what: str, nullable: bool = False) -> None:
    """Raise a UsageError unless ``value`` is a non-empty string (or None when ``nullable``)."""
    if value is None and nullable:
        return
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{what} {value!r} - must be a non-empty path or name" + (" or null" if nullable else ""))


def _check_bool(value: Any, what: str) -> None:
    """Raise a UsageError unless ``value`` is true or false."""
    if not isinstance(value, bool):
        raise UsageError(f"{what} {value!r} - must be true or false")


def latency_target_of(lat: dict[str, Any]) -> Any:
    """The LatencyTarget a ``latency`` section names (values checked, device availability not)."""
    from .latency.target import LatencyTarget, validate_target
    target = LatencyTarget(backend=lat["backend"], device=lat["device"], batch=lat["batch"],
                           resolution=lat["resolution"], device_id=lat["device_id"], threads=lat["threads"])
    validate_target(target)
    return target


def _check_latency(lat: dict[str, Any], source: str) -> None:
    """Raise a UsageError for any bad ``latency`` value, whatever the source."""
    from .latency.protocol import check_protocol
    _check_choice(lat["source"], LATENCY_SOURCES, f"{source}: latency.source")
    try:
        latency_target_of(lat)
        check_protocol(lat["warmup"], lat["repeats"], lat["min_span_s"])
    except UsageError as exc:
        raise UsageError(f"{source}: latency: {exc}") from None
    _check_text(lat["cache"], f"{source}: latency.cache", nullable=True)
    _check_text(lat["lut"], f"{source}: latency.lut", nullable=True)
    _check_text(lat["remote"], f"{source}: latency.remote", nullable=True)
    timeout = lat["remote_timeout_s"]
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout > 0:
        raise UsageError(f"{source}: latency.remote_timeout_s {timeout!r} - must be a positive number of seconds")
    if lat["source"] == "lut":
        if not lat["lut"]:
            raise UsageError(f"{source}: latency.source is 'lut' but latency.lut names no table file")
        if not Path(lat["lut"]).is_file():
            raise UsageError(f"{source}: latency.lut '{lat['lut']}' not found - build one with "
                             "'search.py lut build'")


def _check_data(data: dict[str, Any], source: str) -> None:
    """Raise a UsageError for any bad ``data`` value."""
    _check_choice(data["dataset"], DATASETS, f"{source}: data.dataset")
    if data["dataset"] in BUNDLED:
        try:
            check_available(data["dataset"])
        except UsageError as exc:
            raise UsageError(f"{source}: data.dataset '{data['dataset']}': {exc}") from None
    _check_text(data["data_dir"], f"{source}: data.data_dir")
    _check_int(data["size"], f"{source}: data.size", 8)
    _check_int(data["seed"], f"{source}: data.seed", 0)
    for key in ("classes", "images_per_class"):
        if data[key] is not None:
            _check_int(data[key], f"{source}: data.{key} (or null)", 2)
    holdout = data["holdout"]
    if not isinstance(holdout, (int, float)) or isinstance(holdout, bool) or not 0 < holdout < 1:
        raise UsageError(f"{source}: data.holdout {holdout!r} - must be a fraction in (0, 1)")


def _check_mnas(mnas: dict[str, Any], source: str, needed: bool) -> None:
    """Raise a UsageError for a bad ``mnas`` value (the target is required in mnas mode)."""
    target, w = mnas["target_ms"], mnas["w"]
    if needed or target is not None:
        if not isinstance(target, (int, float)) or isinstance(target, bool) or target <= 0:
            raise UsageError(f"{source}: mnas.target_ms {target!r} - mnas mode needs a positive latency target")
    if not isinstance(w, (int, float)) or isinstance(w, bool) or not -1 <= w <= 0:
        raise UsageError(f"{source}: mnas.w {w!r} - must be a number in [-1, 0] (MnasNet: -0.07)")
    _check_bool(mnas["hard"], f"{source}: mnas.hard")


def _check_proxy(proxy: dict[str, Any], source: str) -> None:
    """Raise a UsageError for a bad ``proxy`` value (the recipe itself is checked when it is read)."""
    _check_text(proxy["config"], f"{source}: proxy.config")
    _check_int(proxy["seeds"], f"{source}: proxy.seeds", 1)
    noise = proxy["noise_sd"]
    if noise is not None and (not isinstance(noise, (int, float)) or isinstance(noise, bool) or not 0 <= noise < 100):
        raise UsageError(f"{source}: proxy.noise_sd {noise!r} - must be null or one run's sd in top-1 points, "
                         "as 'search.py proxy check' reports it")


def _check_verify(verify: dict[str, Any], source: str) -> None:
    """Raise a UsageError for a bad ``verify`` value (the reference recipe file is checked when it is read)."""
    _check_text(verify["config"], f"{source}: verify.config", nullable=True)
    _check_int(verify["seeds"], f"{source}: verify.seeds", 1)
    _check_int(verify["epochs_factor"], f"{source}: verify.epochs_factor", 1)


def validate(doc: dict, source: str) -> None:
    """Raise a UsageError naming the first value that is not allowed; nothing is read or written."""
    from .storage import check_storage_url, is_journal
    _check_text(doc["space"], f"{source}: space")
    _check_text(doc["out"], f"{source}: out")
    _check_proxy(doc["proxy"], source)
    _check_verify(doc["verify"], source)
    _check_bool(doc["baseline"], f"{source}: baseline")
    _check_choice(doc["mode"], MODES, f"{source}: mode")
    _check_choice(doc["sampler"], SAMPLERS, f"{source}: sampler")
    _check_int(doc["trials"], f"{source}: trials", 1)
    _check_int(doc["workers"], f"{source}: workers", 1)
    _check_int(doc["seed"], f"{source}: seed", 0)
    objectives = doc["objectives"]
    if not isinstance(objectives, list) or not objectives:
        raise UsageError(f"{source}: objectives must be a list from: {', '.join(METRICS)}")
    for metric in objectives:
        _check_choice(metric, tuple(METRICS), f"{source}: objective")
    if doc["mode"] == "pareto" and "accuracy" not in objectives:
        raise UsageError(f"{source}: objectives {objectives} - a pareto search needs 'accuracy'")
    if not isinstance(doc["constraints"], dict):
        raise UsageError(f"{source}: constraints must map a metric to its maximum")
    for metric, limit in doc["constraints"].items():
        _check_choice(metric, tuple(m for m in METRICS if m != "accuracy"), f"{source}: constraint on metric")
        if not isinstance(limit, (int, float)) or isinstance(limit, bool) or limit <= 0:
            raise UsageError(f"{source}: constraint {metric} {limit!r} - must be a positive number")
    _check_data(doc["data"], source)
    _check_mnas(doc["mnas"], source, needed=doc["mode"] == "mnas")
    _check_latency(doc["latency"], source)
    if not isinstance(doc["study"], str) or not doc["study"]:
        raise UsageError(f"{source}: study {doc['study']!r} - must be a non-empty name")
    if doc["storage"] is not None:
        _check_text(doc["storage"], f"{source}: storage", nullable=True)
        check_storage_url(doc["storage"])
    if doc["latency"]["source"] == "remote" and doc["latency"]["remote"] is None and doc["storage"] is not None \
            and is_journal(doc["storage"]):
        raise UsageError(f"{source}: latency.source 'remote' queues requests in an SQL database: the storage "
                         f"'{doc['storage']}' is a journal file - give latency.remote (an SQLAlchemy URL)")


def load_search_config(path: "str | Path | None", overrides: dict[str, Any] | None = None) -> SearchConfig:
    """Read a search YAML (or only the defaults), apply top-level ``overrides``, validate."""
    given: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        given = load_mapping(path, "search config")
    doc = _merge(DEFAULTS, given, source)
    for key, value in (overrides or {}).items():
        if value is not None:
            doc[key] = value
    validate(doc, source)
    return SearchConfig(doc, source)
