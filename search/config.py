"""The search configuration: one YAML file (``configs/search/*.yaml``), flags override it."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from space.codecs.document import unknown_key_error
from space.errors import UsageError

SAMPLERS = ("tpe", "nsga2", "nsga3", "gp", "random")
MODES = ("pareto", "mnas")
METRICS = {"accuracy": "maximize", "latency_ms": "minimize", "params": "minimize", "madds": "minimize"}
LATENCY_SOURCES = ("measured", "lut")
DATASETS = ("digits", "imagefolder")

DEFAULTS: dict[str, Any] = {
    "space": "configs/space/mixnet_s.yaml",
    "data": {"dataset": "digits", "data_dir": "runs/data/digits", "size": 32, "classes": None,
             "images_per_class": None, "holdout": 0.2, "seed": 0},
    "proxy": {"config": "configs/train/digits.yaml", "overrides": {}},
    "latency": {"source": "measured", "backend": "onnxruntime", "device": "CPU", "device_id": 0,
                "batch": 1, "resolution": 224, "warmup": 10, "repeats": 50, "min_span_s": 5.0,
                "threads": None,
                "lut": None, "cache": None},
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
    def directions(self) -> list[str]:
        """Optuna directions of the study's objectives."""
        if self.doc["mode"] == "mnas":
            return ["maximize"]
        return [METRICS[m] for m in self.doc["objectives"]]

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


def validate(doc: dict, source: str) -> None:
    """Raise a UsageError naming the first value that is not allowed."""
    _check_choice(doc["mode"], MODES, f"{source}: mode")
    _check_choice(doc["sampler"], SAMPLERS, f"{source}: sampler")
    _check_choice(doc["data"]["dataset"], DATASETS, f"{source}: data.dataset")
    _check_choice(doc["latency"]["source"], LATENCY_SOURCES, f"{source}: latency.source")
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
    holdout = doc["data"]["holdout"]
    if not isinstance(holdout, (int, float)) or not 0 < holdout < 1:
        raise UsageError(f"{source}: data.holdout {holdout!r} - must be a fraction in (0, 1)")
    if doc["mode"] == "mnas":
        target = doc["mnas"]["target_ms"]
        if not isinstance(target, (int, float)) or target <= 0:
            raise UsageError(f"{source}: mnas.target_ms {target!r} - mnas mode needs a positive latency target")
    if doc["latency"]["source"] == "lut" and not doc["latency"]["lut"]:
        raise UsageError(f"{source}: latency.source is 'lut' but latency.lut names no table file")
    if not isinstance(doc["study"], str) or not doc["study"]:
        raise UsageError(f"{source}: study {doc['study']!r} - must be a non-empty name")


def load_search_config(path: "str | Path | None", overrides: dict[str, Any] | None = None) -> SearchConfig:
    """Read a search YAML (or only the defaults), apply top-level ``overrides``, validate."""
    given: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise UsageError(f"search config '{path}' not found")
        try:
            given = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise UsageError(f"search config '{path}' is not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(given, dict):
            raise UsageError(f"search config '{path}' must be a mapping of keys")
    doc = _merge(DEFAULTS, given, source)
    for key, value in (overrides or {}).items():
        if value is not None:
            doc[key] = value
    validate(doc, source)
    return SearchConfig(doc, source)
