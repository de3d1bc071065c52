"""What a trial stores: one typed record, the only place that names a trial's user attributes.

A search writes a trial's fields as they become known (``store``), so other processes see its
stage and progress in the storage; readers (report, progress, twins, workers) go through
``TrialRecord.from_trial``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Optional

import optuna
from optuna.trial import FrozenTrial, TrialState


@dataclass
class TrialRecord:
    """Every user attribute a trial of a search may hold (None: not stored)."""

    worker: Optional[str] = None            # host:pid of the process evaluating it
    device: Optional[str] = None            # target:id MindSpore reported where it trained or was scored (Ascend:3)
    baseline: bool = False                  # the space's skeleton (MixNet-S), enqueued first
    retry_of: Optional[int] = None          # the trial of a dead worker this one retries
    surplus: bool = False                   # a stop marker: the study had reached its target
    genome: Optional[str] = None            # the deployed network, canonical one-line form
    genome_key: Optional[str] = None
    proxy_genome: Optional[str] = None      # the network proxy training builds
    stage: Optional[str] = None             # latency, training
    latency_ms: Optional[float] = None
    latency_seconds: Optional[float] = None
    params: Optional[int] = None
    madds: Optional[int] = None
    feasible: Optional[bool] = None
    epochs: Optional[int] = None            # proxy epochs over all seeds
    epochs_done: Optional[int] = None
    intermediate_accuracy: Optional[list] = None  # held-out top-1 after each proxy epoch (over the seeds in turn)
    pruned_at_epoch: Optional[int] = None   # the rung at which the pruner stopped it
    accuracy: Optional[float] = None        # held-out top-1 (mean over the proxy seeds), a fraction
    accuracy_source: Optional[str] = None   # proxy (trained) or supernet (shared weights)
    accuracy_se: Optional[float] = None
    accuracy_se_binomial: Optional[float] = None
    accuracy_seeds: Optional[list] = None
    proxy_seeds: Optional[list] = None
    holdout_images: Optional[int] = None
    noise_sd: Optional[float] = None         # the stated one-run noise (proxy.noise_sd or supernet.noise_sd), a fraction
    train_seconds: Optional[float] = None
    score_seconds: Optional[float] = None   # scoring with the supernet's weights
    images_per_second: Optional[float] = None
    reused_from: Optional[int] = None       # the twin whose result this trial copies
    error: Optional[str] = None

    @classmethod
    def from_trial(cls, trial: "FrozenTrial | optuna.Trial") -> "TrialRecord":
        """The record a trial holds (attributes this record does not name are ignored)."""
        attrs = trial.user_attrs
        return cls(**{f.name: attrs[f.name] for f in fields(cls) if f.name in attrs})

    def to_attrs(self) -> dict[str, Any]:
        """The stored fields as user attributes (unset ones left out)."""
        default = TrialRecord()
        return {k: v for k, v in asdict(self).items() if v is not None and v != getattr(default, k)}

    def result(self) -> dict[str, Any]:
        """The measured fields a twin of the same genome copies."""
        return {k: getattr(self, k) for k in RESULT_FIELDS if getattr(self, k) is not None}


FIELD_NAMES = frozenset(f.name for f in fields(TrialRecord))
RESULT_FIELDS = ("accuracy", "accuracy_source", "accuracy_se", "accuracy_se_binomial", "accuracy_seeds", "proxy_seeds",
                 "holdout_images", "noise_sd", "latency_ms", "params", "madds", "feasible", "latency_seconds",
                 "intermediate_accuracy", "pruned_at_epoch")


def store(trial: optuna.Trial, **values: Any) -> None:
    """Write some fields of a running trial's record to the storage: in one transaction where the
    storage is a database that writes them together (``search.storage``), else one by one."""
    for name in values:
        if name not in FIELD_NAMES:
            raise KeyError(f"a trial record has no field '{name}'")
    backend = getattr(trial.storage, "_backend", trial.storage)   # under Optuna's cache, the database
    if len(values) > 1 and hasattr(backend, "set_trial_user_attrs"):
        backend.set_trial_user_attrs(trial._trial_id, values)
        return
    for name, value in values.items():
        trial.set_user_attr(name, value)


def is_finished(trial: FrozenTrial) -> bool:
    """True for a trial that counts toward the study's target: complete, or stopped by a pruner at a rung
    (a surplus stop marker is neither)."""
    return trial.state == TrialState.COMPLETE or (trial.state == TrialState.PRUNED
                                                  and "pruned_at_epoch" in trial.user_attrs)


def has_genome(trial: FrozenTrial) -> bool:
    """True for a trial that sampled a genome (stop markers of surplus trials have none)."""
    return "genome" in trial.user_attrs
