"""Worker identity and liveness, for runs where Optuna's heartbeat is not available (journal files)."""

from __future__ import annotations

import os
import socket

import optuna
from optuna.trial import TrialState

RETRY_ATTR = "retry_of"


def worker_id() -> str:
    """This process as ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def is_alive(worker: str) -> bool:
    """False only for a worker of this host whose process is gone; other hosts count as alive."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_dead_trials(study: optuna.Study) -> list[int]:
    """Fail RUNNING trials whose worker on this host died, and enqueue each genome once more.

    The journal-storage counterpart of Optuna's heartbeat plus ``RetryFailedTrialCallback``
    (max_retry=1): a trial that is itself a retry is not retried again.
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
        if RETRY_ATTR not in t.user_attrs and t.params:
            study.enqueue_trial(t.params, user_attrs={RETRY_ATTR: t.number})
    return failed
