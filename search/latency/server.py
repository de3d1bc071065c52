"""``serve``: the device host's loop that measures queued latency requests.

Each claimed request is measured with the ordinary protocol (through the host's latency cache, so
a genome is never timed twice here) while a heartbeat thread renews its lease.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from typing import Callable

from space.basics.errors import UsageError
from space.parse import parse_genome

from .cache import LatencyCache
from .measure import measure_latency
from .remote import POLL_S, LatencyQueue, Request, first_line
from .target import LatencyTarget

DEFAULT_LEASE_S = 60.0


def server_name() -> str:
    """``host:pid:random``: who holds a lease."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Heartbeat:
    """A thread that renews a request's lease every third of the lease until stopped."""

    def __init__(self, queue: LatencyQueue, request: Request, owner: str, lease_s: float) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(queue, request.id, owner, lease_s), daemon=True)
        self.thread.start()

    def _run(self, queue: LatencyQueue, rid: str, owner: str, lease_s: float) -> None:
        """Renew until stopped or the lease is lost."""
        while not self.stop.wait(lease_s / 3):
            if not queue.renew(rid, owner, lease_s):
                return

    def __enter__(self) -> "Heartbeat":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join()


def serve(queue: LatencyQueue, target: LatencyTarget, warmup: int, repeats: int, min_span_s: float,
          cache: "LatencyCache | None", lease_s: float = DEFAULT_LEASE_S, idle_exit_s: "float | None" = None,
          on_result: "Callable[[Request, str], None]" = lambda r, line: None) -> int:
    """Measure requests for ``target``'s backend, device and threads until idle for ``idle_exit_s``
    (forever when None); returns the number served.

    Each request is measured with at least this server's ``warmup``/``repeats``/``min_span_s``.
    ``on_result(request, line)`` is called after each, with a one-line summary.
    """
    owner = server_name()
    served, idle_since = 0, time.time()
    while idle_exit_s is None or time.time() - idle_since < idle_exit_s:
        request = queue.claim(owner, target, lease_s)
        if request is None:
            time.sleep(POLL_S)
            continue
        with Heartbeat(queue, request, owner, lease_s):
            try:
                result = measure_latency(parse_genome(request.genome), request.target,
                                         warmup=max(warmup, request.warmup), repeats=max(repeats, request.repeats),
                                         cache=cache, min_span_s=max(min_span_s, request.min_span_s))
            except Exception as exc:  # noqa: BLE001 - the request fails with its reason; the server goes on
                reason = str(exc) if isinstance(exc, UsageError) else f"{type(exc).__name__}: {first_line(exc)}"
                queue.fail(request.id, owner, reason)
                on_result(request, f"failed: {reason}")
            else:
                queue.complete(request.id, owner, result)
                on_result(request, f"{result.median_ms:.2f} ms" + (" (cached)" if result.cached else ""))
        served += 1
        idle_since = time.time()
    return served
