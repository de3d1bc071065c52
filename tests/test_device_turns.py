"""Device turns: a latency timing waits for running work and keeps new work out; work shares.

Every check is on the order of events, never on how long something took: a turn that must wait is
given a moment (GRACE) in which a broken lock would let it in, and a turn that must get in may take
as long as the host needs (TIMEOUT only bounds a hang).
"""

from __future__ import annotations

import threading
from pathlib import Path

from search.latency.device_turns import DeviceTurns, device_name

GRACE = 0.3
TIMEOUT = 60.0


class Log:
    """Events ('enter'/'leave', name) in the order they happened, across threads."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def add(self, what: str, name: str) -> None:
        """Record one event."""
        with self.lock:
            self.events.append((what, name))

    def index(self, what: str, name: str) -> int:
        """Position of an event (it must have happened)."""
        with self.lock:
            return self.events.index((what, name))

    def inside(self) -> set[str]:
        """Names that entered and have not left yet."""
        with self.lock:
            entered = {n for w, n in self.events if w == "enter"}
            return entered - {n for w, n in self.events if w == "leave"}


def holder(log: Log, name: str, turn, release: threading.Event) -> tuple[threading.Thread, threading.Event]:
    """A thread that enters ``turn()``, logs it, and leaves (logging it first) once ``release`` is set."""
    entered = threading.Event()

    def run() -> None:
        with turn():
            log.add("enter", name)
            entered.set()
            release.wait(TIMEOUT)
            log.add("leave", name)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, entered


def test_timing_waits_for_running_work_and_work_waits_for_timing(tmp_path: Path) -> None:
    log = Log()
    worker, timer, late = (DeviceTurns("CPU", tmp_path) for _ in range(3))
    work_out, timing_out, late_out = threading.Event(), threading.Event(), threading.Event()
    working, work_in = holder(log, "work", worker.work, work_out)
    assert work_in.wait(TIMEOUT)
    timing, timing_in = holder(log, "timing", timer.timing, timing_out)
    assert not timing_in.wait(GRACE), "a timing must not start while work runs"
    late_work, late_in = holder(log, "late work", late.work, late_out)
    assert not late_in.wait(GRACE), "new work must not start while a timing waits"
    assert log.inside() == {"work"}
    work_out.set()
    assert timing_in.wait(TIMEOUT), "the timing starts once the running work is done"
    assert not late_in.wait(GRACE), "work waits while the timing runs"
    assert log.inside() == {"timing"}
    timing_out.set()
    assert late_in.wait(TIMEOUT)
    late_out.set()
    for thread in (working, timing, late_work):
        thread.join(TIMEOUT)
    # each turn began only after the one it waited for had ended
    assert log.index("leave", "work") < log.index("enter", "timing") < log.index("leave", "timing") \
        < log.index("enter", "late work")
    for d in (worker, timer, late):
        d.close()


def held_together(log: Log, first: tuple, second: tuple) -> None:
    """Hold ``first`` = (name, turn), then ``second``: both must be inside at once; then release both."""
    (name_a, turn_a), (name_b, turn_b) = first, second
    out_a, out_b = threading.Event(), threading.Event()
    thread_a, in_a = holder(log, name_a, turn_a, out_a)
    assert in_a.wait(TIMEOUT)
    thread_b, in_b = holder(log, name_b, turn_b, out_b)
    assert in_b.wait(TIMEOUT), f"{name_b} enters while {name_a} is held"
    assert log.inside() == {name_a, name_b}
    out_a.set()
    out_b.set()
    for thread in (thread_a, thread_b):
        thread.join(TIMEOUT)


def test_work_turns_share_the_device(tmp_path: Path) -> None:
    log = Log()
    first, second = DeviceTurns("CPU", tmp_path), DeviceTurns("CPU", tmp_path)
    held_together(log, ("first", first.work), ("second", second.work))
    assert log.index("enter", "second") < log.index("leave", "first")


def test_devices_have_their_own_turns(tmp_path: Path) -> None:
    assert device_name("CPU", 3) == "CPU" and device_name("Ascend", 1) == "Ascend:1"
    log = Log()
    gpu0, gpu1 = DeviceTurns(device_name("GPU", 0), tmp_path), DeviceTurns(device_name("GPU", 1), tmp_path)
    held_together(log, ("GPU 0 work", gpu0.work), ("GPU 1 timing", gpu1.timing))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["GPU-0.device.lock", "GPU-0.gate.lock",
                                                        "GPU-1.device.lock", "GPU-1.gate.lock"]
