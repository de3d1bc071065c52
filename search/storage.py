"""Opening Optuna storages from a URL: SQLite/PostgreSQL (RDB, with heartbeat) or a journal file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import optuna
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend

from space.errors import UsageError

HEARTBEAT_INTERVAL = 10
GRACE_PERIOD = 40
RDB_PREFIXES = ("sqlite:", "postgresql", "mysql")
JOURNAL_PREFIX = "journal:"
JOURNAL_SUFFIXES = (".log", ".jsonl", ".journal")


def is_journal(url: str) -> bool:
    """True for a journal-file storage (``journal:PATH`` or a path ending in .log/.jsonl/.journal)."""
    return url.startswith(JOURNAL_PREFIX) or (not url.startswith(RDB_PREFIXES) and url.endswith(JOURNAL_SUFFIXES))


def journal_path(url: str) -> Path:
    """The file behind a journal storage URL."""
    return Path(url[len(JOURNAL_PREFIX):] if url.startswith(JOURNAL_PREFIX) else url)


def _prepare_sqlite(url: str) -> None:
    """Create the folder of an SQLite file and switch it to WAL (kept in the file)."""
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if not path or path == ":memory:":
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path, timeout=60) as conn:
        conn.execute("PRAGMA journal_mode=WAL")


def open_storage(url: str, heartbeat: bool = True) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url``; RDB storages get a heartbeat and one retry of failed trials."""
    try:
        if is_journal(url):
            path = journal_path(url)
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        if url.startswith(RDB_PREFIXES):
            if url.startswith("sqlite:"):
                _prepare_sqlite(url)
            extra = {}
            if heartbeat:
                extra = {"heartbeat_interval": HEARTBEAT_INTERVAL, "grace_period": GRACE_PERIOD,
                         "heartbeat_stale_trial_callback": RetryHeartbeatStaleTrialCallback(max_retry=1)}
            engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite:") else {"pool_pre_ping": True}
            return RDBStorage(url, engine_kwargs=engine, **extra)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - any driver error means the URL cannot be opened
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"storage '{url}' cannot be opened: {first}") from None
    raise UsageError(f"storage '{url}' - give an SQLAlchemy URL (sqlite:///FILE, postgresql://...) "
                     "or a journal file (journal:FILE or FILE.log)")
