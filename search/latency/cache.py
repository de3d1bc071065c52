"""A local SQLite cache of latency results, safe for several processes writing at once.

A result is keyed by (genome key, backend, device, batch, resolution, environment key); the
environment key hashes the device model, thread count, MixConv implementation that ran and
MindSpore/ONNX Runtime/CANN versions (``environment.KEY_FIELDS``), so a result is never reused on
other hardware or software.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Iterator

from space.basics.errors import UsageError
from space.genome import Genome

from space.basics.cache import cache_dir

from .environment import env_key
from .protocol import LatencyResult
from .target import LatencyTarget

CACHE_ENV_VAR = "MIXNAS_LATENCY_CACHE"
BUSY_TIMEOUT_S = 60.0
STATS = ("median_ms", "p90_ms", "min_ms", "mean_ms", "cv", "repeats")

SCHEMA = """
CREATE TABLE IF NOT EXISTS latency (
    genome_key TEXT NOT NULL, backend TEXT NOT NULL, device TEXT NOT NULL, batch INTEGER NOT NULL,
    resolution INTEGER NOT NULL, threads INTEGER NOT NULL, env_key TEXT NOT NULL, genome TEXT NOT NULL,
    median_ms REAL NOT NULL, p90_ms REAL NOT NULL, min_ms REAL NOT NULL, mean_ms REAL NOT NULL,
    cv REAL NOT NULL, repeats INTEGER NOT NULL, env TEXT NOT NULL, measured_at REAL NOT NULL,
    PRIMARY KEY (genome_key, backend, device, batch, resolution, env_key)
)
"""


def default_cache_path() -> Path:
    """``$MIXNAS_LATENCY_CACHE``, else ``latency.sqlite`` in the cache folder (``~/.cache/mixnas``)."""
    return Path(os.environ.get(CACHE_ENV_VAR) or cache_dir() / "latency.sqlite").expanduser()


class LatencyCache:
    """Latency results in one SQLite file (WAL journal, busy timeout, one transaction per write)."""

    def __init__(self, path: "str | Path") -> None:
        self.path = Path(path).expanduser()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(self._connect()) as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                with _Transaction(conn):
                    conn.execute(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"latency cache '{self.path}' is not usable: {exc}") from None
        except OSError as exc:
            raise UsageError(f"latency cache '{self.path}' cannot be created: {exc.strerror}") from None

    def _connect(self) -> sqlite3.Connection:
        """A connection in autocommit mode that waits for other writers instead of failing."""
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        conn.row_factory = sqlite3.Row
        return conn

    def get(self, genome: Genome, target: LatencyTarget, env_key: str | None = None,
            min_repeats: int = 1) -> LatencyResult | None:
        """The stored result for ``genome`` on ``target`` with at least ``min_repeats`` runs, or None.

        ``env_key=None`` accepts any software versions and device model (newest first): used for
        results imported from a device host whose versions this host cannot know.
        """
        query = ("SELECT * FROM latency WHERE genome_key=? AND backend=? AND device=? AND batch=? "
                 "AND resolution=? AND threads=? AND repeats>=?")
        args: list = [genome.key(), target.backend, target.device, target.batch, target.resolution,
                      target.thread_count, min_repeats]
        if env_key is not None:
            query += " AND env_key=?"
            args.append(env_key)
        with closing(self._connect()) as conn:
            row = conn.execute(query + " ORDER BY measured_at DESC LIMIT 1", args).fetchone()
        if row is None:
            return None
        return LatencyResult(**{k: row[k] for k in STATS}, env=json.loads(row["env"]), cached=True)

    def put(self, genome: Genome, result: LatencyResult) -> None:
        """Store (or replace) the result for ``genome``; the target is read from ``result.env``."""
        env = result.env
        row = (genome.key(), env["backend"], env["device"], env["batch"], env["resolution"],
               env["threads"], env_key(env), genome.to_string(),
               *(getattr(result, k) for k in STATS), json.dumps(env, sort_keys=True), time.time())
        with closing(self._connect()) as conn, _Transaction(conn):
            conn.execute(f"INSERT OR REPLACE INTO latency VALUES ({', '.join('?' * len(row))})", row)

    def __len__(self) -> int:
        """Number of stored results."""
        with closing(self._connect()) as conn:
            return conn.execute("SELECT COUNT(*) FROM latency").fetchone()[0]

    def __iter__(self) -> Iterator[dict]:
        """Every stored row as a dict, oldest first."""
        with closing(self._connect()) as conn:
            rows = conn.execute("SELECT * FROM latency ORDER BY measured_at").fetchall()
        return iter([dict(r) for r in rows])


class _Transaction:
    """An immediate (write-locked) transaction: committed on success, rolled back on an exception."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
