"""The parts of a search configuration, each frozen and checked once, when it is made from its section.

A bad value raises a UsageError naming the config file, the key and what is allowed; nothing
downstream checks a part again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from space.basics.errors import UsageError
from trainer.bundled import DATASETS as BUNDLED
from trainer.bundled import check_available

from .latency.protocol import TimingProtocol
from .latency.target import LatencyTarget

if TYPE_CHECKING:
    from mixnet.supernet import SupernetSpec
    from space.search_space import SearchSpace

LATENCY_SOURCES = ("measured", "lut", "remote")
LATENCY_DEFAULTS: dict[str, Any] = {
    "source": "measured", "backend": "onnxruntime", "device": "CPU", "device_id": 0, "batch": 1,
    "resolution": 224, "warmup": 10, "repeats": 50, "min_span_s": 5.0, "threads": None,
    "lut": None, "cache": None, "remote": None, "remote_timeout_s": 600.0}
# The keys of the latency section that each source never reads (a LUT source reads warmup, repeats and
# cache when run --prepare builds its missing table): a value other than the default is refused.
LATENCY_UNREAD = {"measured": ("lut", "remote", "remote_timeout_s"),
                  "lut": ("min_span_s", "remote", "remote_timeout_s"),
                  "remote": ("lut",)}
DATASETS = (*BUNDLED, "imagefolder")


def check_choice(value: Any, allowed: tuple, what: str) -> None:
    """Raise a UsageError when ``value`` is not one of ``allowed``."""
    if value not in allowed:
        raise UsageError(f"{what} '{value}' - allowed: {', '.join(map(str, allowed))}")


def check_int(value: Any, what: str, minimum: int) -> None:
    """Raise a UsageError unless ``value`` is an integer >= ``minimum``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise UsageError(f"{what} {value!r} - must be an integer >= {minimum}")


def check_text(value: Any, what: str, nullable: bool = False) -> None:
    """Raise a UsageError unless ``value`` is a non-empty string (or None when ``nullable``)."""
    if value is None and nullable:
        return
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{what} {value!r} - must be a non-empty path or name" + (" or null" if nullable else ""))


def check_bool(value: Any, what: str) -> None:
    """Raise a UsageError unless ``value`` is true or false."""
    if not isinstance(value, bool):
        raise UsageError(f"{what} {value!r} - must be true or false")


def is_number(value: Any) -> bool:
    """True for an int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_noise_sd(value: Any, what: str, check: str) -> None:
    """Raise a UsageError unless ``value`` is null or a run noise in top-1 points, as ``check`` reports it."""
    if value is not None and (not is_number(value) or not 0 <= value < 100):
        raise UsageError(f"{what} {value!r} - must be null or one run's sd in top-1 points, as 'search.py {check}' "
                         "reports it")


def noise_fraction(points: "float | None") -> "float | None":
    """A stated run noise in points as a fraction of images (None when not stated)."""
    return None if points is None else points / 100.0


@dataclass(frozen=True)
class DataSection:
    """Where the proxy's images come from and how they are split into train and held-out images."""

    dataset: str
    data_dir: str
    size: int
    classes: int | None
    images_per_class: int | None
    holdout: float
    seed: int

    @classmethod
    def build(cls, doc: dict[str, Any], source: str) -> "DataSection":
        """The ``data`` section, checked (a bundled dataset's package must be installed)."""
        check_choice(doc["dataset"], DATASETS, f"{source}: data.dataset")
        if doc["dataset"] in BUNDLED:
            try:
                check_available(doc["dataset"])
            except UsageError as exc:
                raise UsageError(f"{source}: data.dataset '{doc['dataset']}': {exc}") from None
        check_text(doc["data_dir"], f"{source}: data.data_dir")
        check_int(doc["size"], f"{source}: data.size", 8)
        check_int(doc["seed"], f"{source}: data.seed", 0)
        for key in ("classes", "images_per_class"):
            if doc[key] is not None:
                check_int(doc[key], f"{source}: data.{key} (or null)", 2)
        if not is_number(doc["holdout"]) or not 0 < doc["holdout"] < 1:
            raise UsageError(f"{source}: data.holdout {doc['holdout']!r} - must be a fraction in (0, 1)")
        return cls(**doc)


@dataclass(frozen=True)
class ProxySection:
    """The proxy recipe (a training config file plus overrides), its seeds and its stated run noise."""

    config: str
    overrides: dict
    seeds: int
    noise_sd: float | None

    @classmethod
    def build(cls, doc: dict[str, Any], source: str) -> "ProxySection":
        """The ``proxy`` section, checked (the recipe itself is checked when it is read)."""
        check_text(doc["config"], f"{source}: proxy.config")
        check_int(doc["seeds"], f"{source}: proxy.seeds", 1)
        check_noise_sd(doc["noise_sd"], f"{source}: proxy.noise_sd", "proxy check")
        return cls(**doc)

    @property
    def noise_fraction(self) -> float | None:
        """The stated run noise as a fraction of images (None when not stated)."""
        return noise_fraction(self.noise_sd)


@dataclass(frozen=True)
class VerifySection:
    """The reference recipe that verifies a front: a file, or the proxy's trained longer; its seeds; and at
    most how many front genomes it retrains (``max_genomes``; None: the whole front)."""

    config: str | None
    overrides: dict
    seeds: int
    epochs_factor: int
    max_genomes: int | None

    @classmethod
    def build(cls, doc: dict[str, Any], source: str) -> "VerifySection":
        """The ``verify`` section, checked (the reference recipe file is checked when it is read)."""
        check_text(doc["config"], f"{source}: verify.config", nullable=True)
        check_int(doc["seeds"], f"{source}: verify.seeds", 1)
        check_int(doc["epochs_factor"], f"{source}: verify.epochs_factor", 1)
        if doc["max_genomes"] is not None:
            check_int(doc["max_genomes"], f"{source}: verify.max_genomes", 1)
        return cls(**doc)


PRUNER_TYPES = ("none", "mo_halving")


@dataclass(frozen=True)
class PrunerSection:
    """Early stopping of proxy training: ``mo_halving`` stops a trial at a rung (an epoch count) unless its
    intermediate accuracy and costs are among the best 1/eta, by Pareto rank, of the trials that reached it."""

    type: str
    eta: int
    min_epochs: int
    rungs: tuple[int, ...] | None

    @classmethod
    def build(cls, doc: dict[str, Any], mode: str, accuracy_source: str, source: str) -> "PrunerSection":
        """The ``pruner`` section, checked against the search's mode and accuracy source."""
        check_choice(doc["type"], PRUNER_TYPES, f"{source}: pruner.type")
        check_int(doc["eta"], f"{source}: pruner.eta", 2)
        check_int(doc["min_epochs"], f"{source}: pruner.min_epochs", 1)
        rungs = doc["rungs"]
        if rungs is not None and (not isinstance(rungs, list) or not rungs
                                  or any(not isinstance(r, int) or isinstance(r, bool) or r < 1 for r in rungs)
                                  or rungs != sorted(set(rungs))):
            raise UsageError(f"{source}: pruner.rungs {rungs!r} - must be null or increasing epoch counts >= 1")
        if doc["type"] == "mo_halving" and mode != "pareto":
            raise UsageError(f"{source}: pruner.type 'mo_halving' is for mode 'pareto' (mode '{mode}' prunes with "
                             "a median pruner)")
        if doc["type"] == "mo_halving" and accuracy_source != "proxy":
            raise UsageError(f"{source}: pruner.type 'mo_halving' stops proxy training - accuracy.source "
                             f"'{accuracy_source}' trains nothing per trial")
        return cls(doc["type"], doc["eta"], doc["min_epochs"], tuple(rungs) if rungs else None)

    def rungs_for(self, epochs: int) -> tuple[int, ...]:
        """The rungs within a trial of ``epochs`` epochs (the last epoch is no rung: the trial is done)."""
        if self.rungs is not None:
            return tuple(r for r in self.rungs if r < epochs)
        rungs, rung = [], self.min_epochs
        while rung < epochs:
            rungs.append(rung)
            rung *= self.eta
        return tuple(rungs)


ACCURACY_SOURCES = ("proxy", "supernet")


@dataclass(frozen=True)
class AccuracySection:
    """Where a trial's accuracy comes from: proxy training, or a trained supernet's weights (its folder)."""

    source: str
    supernet: Path | None

    @classmethod
    def build(cls, doc: dict[str, Any], source: str) -> "AccuracySection":
        """The ``accuracy`` section, checked (the supernet itself is checked when the search starts)."""
        check_choice(doc["source"], ACCURACY_SOURCES, f"{source}: accuracy.source")
        check_text(doc["supernet"], f"{source}: accuracy.supernet", nullable=True)
        return cls(doc["source"], Path(doc["supernet"]) if doc["supernet"] else None)


@dataclass(frozen=True)
class SupernetSection:
    """The supernet of the space: where it is trained, its recipe changes, how steps choose genomes,
    how many training batches recalibrate BatchNorm before a genome is scored, on how many of the
    held-out images (``score_images``; None: all) in steps of how many (``score_batch``), the stated
    noise of one supernet's scores (``noise_sd``: the paired run noise that ``supernet check``
    reports, in points), whether expansion 1 has weights of its own (``expansion_one``: own or
    shared) and whether smaller kernels are transformed centres of larger ones (``kernel_transform``,
    Once-for-All's)."""

    dir: Path
    overrides: dict
    sampling: str
    sandwich: bool
    calibration_batches: int
    score_images: int | None
    score_batch: int
    noise_sd: float | None
    expansion_one: str
    kernel_transform: bool

    @classmethod
    def build(cls, doc: dict[str, Any], out_dir: Path, source: str) -> "SupernetSection":
        """The ``supernet`` section, checked (its folder defaults to ``out/supernet``)."""
        from mixnet.supernet.choices import EXPANSION_ONE

        from .supernet.sampling import RULES
        check_text(doc["dir"], f"{source}: supernet.dir", nullable=True)
        check_choice(doc["sampling"], RULES, f"{source}: supernet.sampling")
        check_choice(doc["expansion_one"], EXPANSION_ONE, f"{source}: supernet.expansion_one")
        check_bool(doc["sandwich"], f"{source}: supernet.sandwich")
        check_bool(doc["kernel_transform"], f"{source}: supernet.kernel_transform")
        check_int(doc["calibration_batches"], f"{source}: supernet.calibration_batches", 1)
        if doc["score_images"] is not None:
            check_int(doc["score_images"], f"{source}: supernet.score_images", 1)
        check_int(doc["score_batch"], f"{source}: supernet.score_batch", 1)
        check_noise_sd(doc["noise_sd"], f"{source}: supernet.noise_sd", "supernet check")
        return cls(dir=Path(doc["dir"]) if doc["dir"] else out_dir / "supernet", overrides=dict(doc["overrides"]),
                   sampling=doc["sampling"], sandwich=doc["sandwich"], calibration_batches=doc["calibration_batches"],
                   score_images=doc["score_images"], score_batch=doc["score_batch"], noise_sd=doc["noise_sd"],
                   expansion_one=doc["expansion_one"], kernel_transform=doc["kernel_transform"])

    @property
    def noise_fraction(self) -> float | None:
        """The stated noise of a supernet's score as a fraction of images (None when not stated)."""
        return noise_fraction(self.noise_sd)

    @property
    def sharing(self) -> dict[str, Any]:
        """The keys that decide which weights the supernet holds (a trained supernet records them)."""
        return {"expansion_one": self.expansion_one, "kernel_transform": self.kernel_transform}

    def spec_of(self, space: SearchSpace, width: "float | None" = None,
                num_classes: "int | None" = None) -> SupernetSpec:
        """The ``SupernetSpec`` of ``space`` this section describes (width and classes: the skeleton's unless given)."""
        from mixnet.supernet import SupernetSpec
        return SupernetSpec.of(space, width, num_classes, **self.sharing)


@dataclass(frozen=True)
class LatencySection:
    """Where latencies come from (measured, a LUT, a device host), on which target, timed how."""

    source: str
    target: LatencyTarget
    protocol: TimingProtocol
    lut: str | None
    cache: str | None
    remote: str | None
    remote_timeout_s: float

    @classmethod
    def build(cls, doc: dict[str, Any], source: str) -> "LatencySection":
        """The ``latency`` section, checked: values of the target and the protocol, and that a LUT source names
        a table file (read, and matched to the space, when a search starts)."""
        check_choice(doc["source"], LATENCY_SOURCES, f"{source}: latency.source")
        try:
            target = LatencyTarget(backend=doc["backend"], device=doc["device"], batch=doc["batch"],
                                   resolution=doc["resolution"], device_id=doc["device_id"], threads=doc["threads"])
            protocol = TimingProtocol(doc["warmup"], doc["repeats"], doc["min_span_s"])
        except UsageError as exc:
            raise UsageError(f"{source}: latency: {exc}") from None
        for key in ("cache", "lut", "remote"):
            check_text(doc[key], f"{source}: latency.{key}", nullable=True)
        timeout = doc["remote_timeout_s"]
        if not is_number(timeout) or not timeout > 0:
            raise UsageError(f"{source}: latency.remote_timeout_s {timeout!r} - must be a positive number of seconds")
        if doc["source"] == "lut":
            if not doc["lut"]:
                raise UsageError(f"{source}: latency.source is 'lut' but latency.lut names no table file")
        for key in LATENCY_UNREAD[doc["source"]]:
            if doc[key] != LATENCY_DEFAULTS[key]:
                raise UsageError(f"{source}: latency.{key} {doc[key]!r} is not used with latency.source "
                                 f"'{doc['source']}' - remove it, or choose the source that uses it")
        return cls(source=doc["source"], target=target, protocol=protocol, lut=doc["lut"], cache=doc["cache"],
                   remote=doc["remote"], remote_timeout_s=float(timeout))


@dataclass(frozen=True)
class StorageSection:
    """The Optuna storage and study name, and the queue of remote latency requests."""

    url: str
    study: str
    remote_url: str

    @classmethod
    def build(cls, storage: Any, study: Any, out_dir: Path, latency: LatencySection, source: str) -> "StorageSection":
        """The storage URL (by default an SQLite file in the output folder), checked; the remote queue
        is ``latency.remote``, else the study's storage, which must then be an SQL database."""
        from .storage import check_storage_url, is_journal
        if not isinstance(study, str) or not study:
            raise UsageError(f"{source}: study {study!r} - must be a non-empty name")
        if storage is not None:
            check_text(storage, f"{source}: storage", nullable=True)
            check_storage_url(storage)
        if latency.source == "remote" and latency.remote is None and storage is not None and is_journal(storage):
            raise UsageError(f"{source}: latency.source 'remote' queues requests in an SQL database: the storage "
                             f"'{storage}' is a journal file - give latency.remote (an SQLAlchemy URL)")
        url = storage or f"sqlite:///{(out_dir / 'study.db').as_posix()}"
        return cls(url=url, study=study, remote_url=latency.remote or url)
