"""The search configuration: one YAML file (``configs/search/*.yaml``), flags override it."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from space.basics.documents import load_mapping
from mixnet.devices import check_device_list
from space.basics.errors import UsageError, unknown_key_error

from .goal import DEFAULT_OBJECTIVES, MNAS_DEFAULTS, METRICS, Goal, goal_of
from .sections import (LATENCY_DEFAULTS, AccuracySection, DataSection, LatencySection, ProxySection, PrunerSection, StorageSection,
                       SupernetSection, VerifySection,
                       check_bool, check_choice, check_int, check_text, is_number)

SAMPLERS = ("tpe", "nsga2", "nsga3", "random")

DEFAULTS: dict[str, Any] = {
    "space": "configs/space/mixnet_s.yaml",
    "data": {"dataset": "digits", "data_dir": "runs/data/digits", "size": 32, "classes": None,
             "images_per_class": None, "holdout": 0.2, "seed": 0},
    "proxy": {"config": "configs/train/digits.yaml", "overrides": {}, "seeds": 1, "noise_sd": None},
    "verify": {"config": None, "overrides": {}, "seeds": 2, "epochs_factor": 3, "max_genomes": None},
    "accuracy": {"source": "proxy", "supernet": None},
    "supernet": {"dir": None, "overrides": {}, "sampling": "fair", "sandwich": False, "calibration_batches": 8,
                 "score_images": None, "score_batch": 256, "noise_sd": None, "expansion_one": "own",
                 "kernel_transform": False},
    "latency": dict(LATENCY_DEFAULTS),
    "mode": "pareto",
    "objectives": list(DEFAULT_OBJECTIVES),
    "mnas": dict(MNAS_DEFAULTS),
    "pruner": {"type": "none", "eta": 3, "min_epochs": 1, "rungs": None},
    "constraints": {},
    "sampler": "tpe",
    "seed": 0,
    "trials": 12,
    "workers": 1,
    # the workers' device ids on their target (the proxy recipe's device_target, else MindSpore's default):
    # a list, or all (every one of the host; for the CPU one per core); worker i binds devices[i % len(devices)];
    # null: every worker on the target's default device (id 0)
    "devices": None,
    "storage": None,
    "study": "mixnet-search",
    "out": "runs/search",
    "baseline": True,
}


@dataclass(frozen=True)
class SearchConfig:
    """A search configuration made of frozen parts, each checked once when the config is loaded.

    ``doc`` is the merged document (defaults, the file, the overrides), as stored with the study.
    """

    doc: dict[str, Any]
    source: str
    space: str
    out_dir: Path
    data: DataSection
    proxy: ProxySection
    verify: VerifySection
    accuracy: AccuracySection
    supernet: SupernetSection
    latency: LatencySection
    goal: Goal
    pruner: PrunerSection
    storage: StorageSection
    constraints: dict[str, float]
    sampler: str
    seed: int
    trials: int
    workers: int
    devices: "tuple[int, ...] | str | None"
    baseline: bool

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the merged document."""
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


def _check_search(doc: dict, source: str) -> None:
    """Raise a UsageError for a bad top-level value (the sections check their own)."""
    check_text(doc["space"], f"{source}: space")
    check_text(doc["out"], f"{source}: out")
    check_bool(doc["baseline"], f"{source}: baseline")
    check_choice(doc["sampler"], SAMPLERS, f"{source}: sampler")
    check_int(doc["trials"], f"{source}: trials", 1)
    check_int(doc["workers"], f"{source}: workers", 1)
    check_int(doc["seed"], f"{source}: seed", 0)
    check_device_list(doc["devices"], f"{source}: devices")
    if not isinstance(doc["constraints"], dict):
        raise UsageError(f"{source}: constraints must map a metric to its maximum")
    for metric, limit in doc["constraints"].items():
        check_choice(metric, tuple(m for m in METRICS if m != "accuracy"), f"{source}: constraint on metric")
        if not is_number(limit) or limit <= 0:
            raise UsageError(f"{source}: constraint {metric} {limit!r} - must be a positive number")


def build_search_config(doc: dict[str, Any], source: str) -> SearchConfig:
    """The frozen parts of a merged document, each checked as it is made; nothing is read or written
    (except that the LUT file named must exist)."""
    _check_search(doc, source)
    proxy, verify = ProxySection.build(doc["proxy"], source), VerifySection.build(doc["verify"], source)
    goal = goal_of(doc["mode"], doc["objectives"], doc["mnas"], source)
    data = DataSection.build(doc["data"], source)
    latency = LatencySection.build(doc["latency"], source)
    out_dir = Path(doc["out"])
    accuracy = AccuracySection.build(doc["accuracy"], source)
    pruner = PrunerSection.build(doc["pruner"], doc["mode"], accuracy.source, source)
    supernet = SupernetSection.build(dict(doc["supernet"], dir=accuracy.supernet or doc["supernet"]["dir"]), out_dir,
                                     source)
    storage = StorageSection.build(doc["storage"], doc["study"], out_dir, latency, source)
    return SearchConfig(doc=doc, source=source, space=doc["space"], out_dir=out_dir, data=data, proxy=proxy,
                        verify=verify, accuracy=accuracy, supernet=supernet, latency=latency, goal=goal, pruner=pruner,
                        storage=storage,
                        constraints=dict(doc["constraints"]), sampler=doc["sampler"], seed=doc["seed"],
                        trials=doc["trials"], workers=doc["workers"],
                        devices=tuple(doc["devices"]) if isinstance(doc["devices"], list) else doc["devices"],
                        baseline=doc["baseline"])


def load_search_config(path: "str | Path | None", overrides: dict[str, Any] | None = None) -> SearchConfig:
    """Read a search YAML (or only the defaults), apply top-level ``overrides``, check and build the parts."""
    given: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        given = load_mapping(path, "search config")
    doc = _merge(DEFAULTS, given, source)
    for key, value in (overrides or {}).items():
        if value is not None:
            doc[key] = value
    return build_search_config(doc, source)
