"""Latency measured on another host: a request queue in an SQL database.

Search hosts put a request (genome, target, protocol) in the table ``mixnas_latency_requests``;
``search.py latency serve`` on the device host claims one, measures it and writes the result back.
The table lives in the study's own SQLAlchemy storage (or any SQLAlchemy URL), so it needs no
server of its own and reaches every host the study reaches (PostgreSQL for many hosts).

A request is keyed by genome and target (backend, device, batch, resolution, threads), so a genome
asked for by several searches is measured once, and a finished request serves every later ask.
A claim is a lease renewed by the server's heartbeat: when a server dies, its lease runs out and
the request goes to the next server that asks (or to the restarted one).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import sqlalchemy as sa

from space.basics.errors import UsageError
from space.genome import Genome

from .protocol import LatencyResult
from .target import LatencyTarget

TABLE = "mixnas_latency_requests"
PENDING, LEASED, DONE, FAILED = "pending", "leased", "done", "failed"
POLL_S = 0.5

_META = sa.MetaData()
REQUESTS = sa.Table(
    TABLE, _META,
    sa.Column("id", sa.String(512), primary_key=True),
    sa.Column("genome", sa.Text, nullable=False),
    sa.Column("backend", sa.String(32), nullable=False),
    sa.Column("device", sa.String(32), nullable=False),
    sa.Column("batch", sa.Integer, nullable=False),
    sa.Column("resolution", sa.Integer, nullable=False),
    sa.Column("threads", sa.Integer, nullable=False),
    sa.Column("warmup", sa.Integer, nullable=False),
    sa.Column("repeats", sa.Integer, nullable=False),
    sa.Column("min_span_s", sa.Float, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(256)),
    sa.Column("lease_until", sa.Float),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("measurements", sa.Integer, nullable=False, default=0),
    sa.Column("result", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("updated", sa.Float, nullable=False),
)


@dataclass(frozen=True)
class Request:
    """One claimed request: what to measure and with which protocol."""

    id: str
    genome: str
    target: LatencyTarget
    warmup: int
    repeats: int
    min_span_s: float


def request_id(genome: Genome, target: LatencyTarget) -> str:
    """The key of a request: genome key and the target's backend, device, batch, resolution, threads."""
    return (f"{genome.key()}|{target.backend}|{target.device}|{target.batch}|{target.resolution}|"
            f"{target.thread_count}")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type when empty)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class LatencyQueue:
    """The request table behind one SQLAlchemy URL (created at first use)."""

    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if url.startswith("sqlite:"):
            kwargs = {"connect_args": {"timeout": 60}}
        try:
            folder = sqlite_folder(url)
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
            self.engine = sa.create_engine(url, **kwargs)
            if url.startswith("sqlite:"):
                sa.event.listen(self.engine, "connect", _sqlite_wal)
            _create_table(self.engine)
        except Exception as exc:  # noqa: BLE001 - any driver error means the queue cannot be reached
            raise UsageError(f"latency queue '{url}' cannot be opened: {first_line(exc)}") from None

    # search side

    def ask(self, genome: Genome, target: LatencyTarget, warmup: int, repeats: int, min_span_s: float) -> str:
        """Queue a measurement of ``genome`` on ``target`` unless one (with enough runs) is queued or done."""
        rid, now = request_id(genome, target), time.time()
        protocol = {"warmup": warmup, "repeats": repeats, "min_span_s": float(min_span_s)}
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(REQUESTS).where(REQUESTS.c.id == rid)).mappings().first()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(REQUESTS.insert().values(
                            id=rid, genome=genome.to_string(), backend=target.backend, device=target.device,
                            batch=target.batch, resolution=target.resolution, threads=target.thread_count,
                            state=PENDING, attempts=0, measurements=0, created=now, updated=now, **protocol))
                except sa.exc.IntegrityError:
                    pass
            elif row["state"] == FAILED or (row["state"] == DONE and row["repeats"] < repeats):
                conn.execute(REQUESTS.update().where(REQUESTS.c.id == rid).values(
                    state=PENDING, owner=None, lease_until=None, error=None, updated=now,
                    warmup=max(warmup, row["warmup"]), repeats=max(repeats, row["repeats"]),
                    min_span_s=max(float(min_span_s), row["min_span_s"])))
        return rid

    def status(self, rid: str) -> dict[str, Any]:
        """The request's row."""
        with self.engine.connect() as conn:
            return dict(conn.execute(sa.select(REQUESTS).where(REQUESTS.c.id == rid)).mappings().one())

    def waiting(self, target: LatencyTarget) -> int:
        """Requests for ``target``'s backend and device that no live server holds."""
        now = time.time()
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(REQUESTS).where(
                REQUESTS.c.backend == target.backend, REQUESTS.c.device == target.device,
                self._claimable(now))).scalar_one()

    def wait(self, genome: Genome, target: LatencyTarget, warmup: int, repeats: int, min_span_s: float,
             timeout_s: float, on_wait: "Callable[[str], None] | None" = None) -> LatencyResult:
        """Ask for ``genome`` and wait for its result.

        The timeout counts from the last sign of life: the ask, or a server's heartbeat on the
        request; it raises a UsageError naming what was waited for. A measurement that failed on the
        server raises its one-line reason.
        """
        rid = self.ask(genome, target, warmup, repeats, min_span_s)
        alive, told = time.time(), False
        while True:
            row = self.status(rid)
            if row["state"] == DONE and row["repeats"] >= repeats:
                return result_from_json(row["result"])
            if row["state"] == FAILED:
                raise UsageError(f"latency server failed on {genome.key()}: {row['error']}")
            now = time.time()
            if row["state"] == LEASED and (row["lease_until"] or 0) > now:
                alive = now
            elif now - alive > timeout_s:
                raise UsageError(f"no latency server measured {genome.key()} for {describe(target)} within "
                                 f"latency.remote_timeout_s {timeout_s:g} s - start one with 'search.py latency "
                                 f"serve --queue {self.url} --backend {target.backend} --device {target.device}'")
            elif not told and now - alive > min(2.0, timeout_s / 2) and on_wait is not None:
                on_wait(f"waiting for a latency server for {describe(target)} on {self.url} "
                        f"({self.waiting(target)} request(s) unclaimed)")
                told = True
            time.sleep(POLL_S)

    # server side

    @staticmethod
    def _claimable(now: float) -> Any:
        """Rows no live server holds: pending, or leased with an expired lease."""
        return sa.or_(REQUESTS.c.state == PENDING,
                      sa.and_(REQUESTS.c.state == LEASED, REQUESTS.c.lease_until < now))

    def claim(self, owner: str, target: LatencyTarget, lease_s: float) -> "Request | None":
        """Take the oldest claimable request for ``target``'s backend, device and threads, or None."""
        now = time.time()
        with self.engine.connect() as conn:
            ids = conn.execute(sa.select(REQUESTS.c.id).where(
                REQUESTS.c.backend == target.backend, REQUESTS.c.device == target.device,
                REQUESTS.c.threads == target.thread_count, self._claimable(now),
            ).order_by(REQUESTS.c.created).limit(8)).scalars().all()
        for rid in ids:
            with self.engine.begin() as conn:
                taken = conn.execute(REQUESTS.update().where(REQUESTS.c.id == rid, self._claimable(now)).values(
                    state=LEASED, owner=owner, lease_until=time.time() + lease_s, updated=time.time(),
                    attempts=REQUESTS.c.attempts + 1)).rowcount
                if taken != 1:
                    continue
                row = conn.execute(sa.select(REQUESTS).where(REQUESTS.c.id == rid)).mappings().one()
            measured = LatencyTarget(backend=target.backend, device=target.device, batch=row["batch"],
                                     resolution=row["resolution"], device_id=target.device_id,
                                     threads=target.threads)
            return Request(id=rid, genome=row["genome"], target=measured, warmup=row["warmup"],
                           repeats=row["repeats"], min_span_s=row["min_span_s"])
        return None

    def renew(self, rid: str, owner: str, lease_s: float) -> bool:
        """Extend this owner's lease; False when the request is no longer this owner's."""
        with self.engine.begin() as conn:
            return conn.execute(REQUESTS.update().where(
                REQUESTS.c.id == rid, REQUESTS.c.owner == owner, REQUESTS.c.state == LEASED).values(
                lease_until=time.time() + lease_s, updated=time.time())).rowcount == 1

    def complete(self, rid: str, owner: str, result: LatencyResult) -> None:
        """Store the result of this owner's request."""
        with self.engine.begin() as conn:
            conn.execute(REQUESTS.update().where(REQUESTS.c.id == rid, REQUESTS.c.owner == owner).values(
                state=DONE, result=json.dumps(asdict(result), sort_keys=True), owner=None, lease_until=None,
                measurements=REQUESTS.c.measurements + (0 if result.cached else 1), updated=time.time()))

    def fail(self, rid: str, owner: str, error: str) -> None:
        """Mark this owner's request failed with a one-line reason."""
        with self.engine.begin() as conn:
            conn.execute(REQUESTS.update().where(REQUESTS.c.id == rid, REQUESTS.c.owner == owner).values(
                state=FAILED, error=error, owner=None, lease_until=None, updated=time.time()))

    def rows(self) -> list[dict[str, Any]]:
        """Every request, oldest first."""
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(REQUESTS).order_by(REQUESTS.c.created)).mappings()]

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()


def _create_table(engine: sa.Engine) -> None:
    """The request table, unless it exists; a process that created it at the same moment is no error."""
    try:
        _META.create_all(engine, checkfirst=True)
    except sa.exc.DBAPIError:
        if not sa.inspect(engine).has_table(TABLE):
            raise


def describe(target: LatencyTarget) -> str:
    """``onnxruntime/CPU, batch 1, 224 px, 1 thread(s)``."""
    return (f"{target.backend}/{target.device}, batch {target.batch}, {target.resolution} px, "
            f"{target.thread_count} thread(s)")


def result_from_json(text: str) -> LatencyResult:
    """A LatencyResult from its stored JSON (marked as not measured by this call)."""
    doc = json.loads(text)
    doc["cached"] = True
    return LatencyResult(**doc)


def sqlite_folder(url: str) -> "Path | None":
    """The folder of an SQLite database file URL (None for other databases and in-memory SQLite)."""
    if not url.startswith("sqlite:") or ":///" not in url:
        return None
    path = url.split(":///", 1)[1]
    return None if not path or path == ":memory:" else Path(path).parent


def _sqlite_wal(dbapi_conn: Any, _record: Any) -> None:
    """WAL journal and a busy timeout on every SQLite connection, for readers beside a writer."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.close()
