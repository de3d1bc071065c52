"""Workers' devices, identity and liveness: each worker binds its own device id; trials of a dead worker
on this host are failed and retried at once.

Optuna's heartbeat does the same for RDB storages after its grace period, and for workers on other
hosts; journal storages have no heartbeat, so this is their only recovery.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Sequence

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from mixnet.devices import bind_device, check_device_ids
from space.basics.errors import UsageError
from trainer.processes import process_alive

from .record import TrialRecord


@dataclass(frozen=True)
class WorkerDevices:
    """The device target of a search's workers and the device ids they bind: worker ``rank`` binds
    ``ids[rank % len(ids)]`` (with as many workers as ids, worker i runs on the i-th id); without ids
    every worker stays on the target's default device."""

    target: str
    ids: tuple[int, ...] = ()

    def of(self, rank: int) -> "int | None":
        """The device id worker ``rank`` binds (None: the target's default device, left to MindSpore)."""
        return self.ids[rank % len(self.ids)] if self.ids else None

    def bind(self, rank: int) -> None:
        """Bind this process's MindSpore to worker ``rank``'s device, before anything runs on it."""
        if self.ids:
            bind_device(self.target, self.of(rank))


def worker_devices(devices: "Sequence[int] | str | None", workers: int, target: str, where: str) -> WorkerDevices:
    """The devices of ``workers`` workers on ``target`` (the config's ``devices``), checked against the host;
    more devices than workers is a UsageError too (a device would stay idle)."""
    if devices is None:
        return WorkerDevices(target)
    try:
        ids = check_device_ids(target, devices)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
    if workers < len(ids):
        named = f"all ({len(ids)} {target} devices here)" if devices == "all" else str(list(ids))
        raise UsageError(f"{where}: devices {named} - more devices than the {workers} worker(s): set workers: "
                         f"{len(ids)}, or list {workers} device(s)")
    return WorkerDevices(target, ids)


def worker_id() -> str:
    """This process as ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def is_alive(worker: str) -> bool:
    """False only for a worker of this host whose process is gone; other hosts count as alive."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    return process_alive(int(pid))


def fail_dead_trials(study: optuna.Study) -> list[int]:
    """Fail RUNNING trials whose worker on this host died, and enqueue each genome once more.

    Like Optuna's heartbeat with ``RetryHeartbeatStaleTrialCallback(max_retry=1)``: a trial that
    is itself a retry is not retried again.
    """
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        record = TrialRecord.from_trial(t)
        if record.worker is None or is_alive(record.worker) or not fail_trial(study, t):
            continue
        failed.append(t.number)
        retried = RetryHeartbeatStaleTrialCallback.retried_trial_number(t) is not None
        if record.retry_of is None and not retried and t.params:
            again = TrialRecord(retry_of=t.number, baseline=record.baseline)
            study.enqueue_trial(t.params, user_attrs=again.to_attrs())
    return failed


def fail_trial(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Mark another process's running trial FAIL; False when it finished meanwhile.

    Optuna has no public call for a trial this process does not own, so this is the one place
    that reaches into the storage and the trial id.
    """
    try:
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    except RuntimeError:
        return False
    return True
