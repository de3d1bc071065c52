"""Opening Optuna storages from a URL: SQLite/PostgreSQL (RDB, with heartbeat) or a journal file."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import optuna
import sqlalchemy
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from space.basics.errors import UsageError

from space.basics.filelock import file_lock

HEARTBEAT_INTERVAL = 10
GRACE_PERIOD = 40
RDB_PREFIXES = ("sqlite:", "postgresql", "mysql")
JOURNAL_PREFIX = "journal:"
JOURNAL_SUFFIXES = (".log", ".jsonl", ".journal")
SCHEMA_ATTEMPTS = 4


def is_journal(url: str) -> bool:
    """True for a journal-file storage (``journal:PATH`` or a path ending in .log/.jsonl/.journal)."""
    return url.startswith(JOURNAL_PREFIX) or (not url.startswith(RDB_PREFIXES) and url.endswith(JOURNAL_SUFFIXES))


def journal_path(url: str) -> Path:
    """The file behind a journal storage URL."""
    return Path(url[len(JOURNAL_PREFIX):] if url.startswith(JOURNAL_PREFIX) else url)


def sqlite_path(url: str) -> "Path | None":
    """The database file of an SQLite URL (None for an in-memory database)."""
    path = url.split(":///", 1)[1] if ":///" in url else ""
    return None if not path or path == ":memory:" else Path(path)


def _prepare_sqlite(path: Path) -> None:
    """Create the folder of an SQLite file and switch it to WAL (kept in the file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path, timeout=60) as conn:
        conn.execute("PRAGMA journal_mode=WAL")


class BatchedUserAttrs:
    """An RDBStorage mixin: several user attributes of a trial written in one transaction."""

    def set_trial_user_attrs(self, trial_id: int, attrs: dict) -> None:
        """Write every ``key: value`` of ``attrs`` as a user attribute of the trial, one commit for all."""
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session
        with _create_scoped_session(self.scoped_session, True) as session:
            for key, value in attrs.items():
                self._set_trial_attr_without_commit(session, models.TrialUserAttributeModel, trial_id, key, value)


class TrialRDBStorage(BatchedUserAttrs, RDBStorage):
    """An RDBStorage (PostgreSQL, MySQL) that writes a trial's user attributes in batches."""


class SQLiteStorage(BatchedUserAttrs, RDBStorage):
    """An RDBStorage on an SQLite file whose processes take a waiting (enqueued) trial one at a time, under
    ``pop_lock``: SQLite has no row locks, so two processes could both see a trial waiting, both move it to
    RUNNING and both run it (the second then cannot tell it: it is complete)."""

    def __init__(self, url: str, pop_lock: Path, **kwargs) -> None:
        super().__init__(url, **kwargs)
        self.pop_lock = pop_lock

    def set_trial_state_values(self, trial_id: int, state: TrialState, values=None) -> bool:
        """As RDBStorage's (which refuses RUNNING unless the trial is waiting); moving a trial to RUNNING holds
        ``pop_lock``, so that check and the write are one step across processes."""
        if state != TrialState.RUNNING:
            return super().set_trial_state_values(trial_id, state, values)
        with file_lock(self.pop_lock):
            return super().set_trial_state_values(trial_id, state, values)


def _rdb_storage(url: str, heartbeat: bool) -> RDBStorage:
    """A TrialRDBStorage (an SQLiteStorage for an SQLite file); creating a new schema is retried, since
    concurrent first opens can collide."""
    extra = {}
    if heartbeat:
        extra = {"heartbeat_interval": HEARTBEAT_INTERVAL, "grace_period": GRACE_PERIOD,
                 "heartbeat_stale_trial_callback": RetryHeartbeatStaleTrialCallback(max_retry=1)}
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite:") else {"pool_pre_ping": True}
    path = sqlite_path(url) if url.startswith("sqlite:") else None
    attempt = 1
    while True:
        try:
            if path is not None:
                return SQLiteStorage(url, pop_lock=path.with_name(f".{path.name}.pop.lock"), engine_kwargs=engine,
                                     **extra)
            return TrialRDBStorage(url, engine_kwargs=engine, **extra)
        except sqlalchemy.exc.SQLAlchemyError:
            if attempt >= SCHEMA_ATTEMPTS:
                raise
            time.sleep(0.5 * attempt)
            attempt += 1


def check_storage_url(url: str) -> None:
    """Raise a UsageError unless ``url`` names a storage kind this module opens (nothing is opened)."""
    if not (is_journal(url) or url.startswith(RDB_PREFIXES)):
        raise UsageError(f"storage '{url}' - give an SQLAlchemy URL (sqlite:///FILE, postgresql://...) "
                         "or a journal file (journal:FILE or FILE.log)")


def open_storage(url: str, heartbeat: bool = True, must_exist: bool = False) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url``; RDB storages get a heartbeat and one retry of failed trials.

    With ``must_exist`` a storage file (SQLite or journal) that is not there is an error, and none
    is created.
    """
    check_storage_url(url)
    if must_exist:
        path = journal_path(url) if is_journal(url) else sqlite_path(url) if url.startswith("sqlite:") else None
        if path is not None and not path.is_file():
            raise UsageError(f"storage '{url}' not found")
    try:
        if is_journal(url):
            path = journal_path(url)
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        path = sqlite_path(url) if url.startswith("sqlite:") else None
        if path is None:
            return _rdb_storage(url, heartbeat)
        path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(path.with_name(f".{path.name}.lock")):
            _prepare_sqlite(path)
            return _rdb_storage(url, heartbeat)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - any driver error means the URL cannot be opened
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"storage '{url}' cannot be opened: {first}") from None
