"""Worker identity and liveness: trials of a dead worker on this host are failed and retried at once.

Optuna's heartbeat does the same for RDB storages after its grace period, and for workers on other
hosts; journal storages have no heartbeat, so this is their only recovery.
"""

from __future__ import annotations

import os
import socket

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from trainer.processes import process_alive

RETRY_ATTR = "retry_of"


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
    storage = study._storage
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if is_alive(t.user_attrs.get("worker", "")) or "worker" not in t.user_attrs:
            continue
        try:
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except RuntimeError:
            continue
        failed.append(t.number)
        retried = RetryHeartbeatStaleTrialCallback.retried_trial_number(t) is not None
        first_time = RETRY_ATTR not in t.user_attrs and not retried
        if first_time and t.params:
            attrs = {RETRY_ATTR: t.number, **({"baseline": True} if t.user_attrs.get("baseline") else {})}
            study.enqueue_trial(t.params, user_attrs=attrs)
    return failed
