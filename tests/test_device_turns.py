"""Device turns: a latency timing waits for running work and keeps new work out; work shares."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from search.latency.device_turns import DeviceTurns, device_name

WAIT = 0.3


def holder(turn, entered: threading.Event, release: threading.Event) -> threading.Thread:
    """A thread that enters ``turn()``, signals ``entered``, and leaves once ``release`` is set."""
    def run() -> None:
        with turn():
            entered.set()
            release.wait(10)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_timing_waits_for_running_work_and_work_waits_for_timing(tmp_path: Path) -> None:
    worker, timer, late = (DeviceTurns("CPU", tmp_path) for _ in range(3))
    work_in, work_out = threading.Event(), threading.Event()
    working = holder(worker.work, work_in, work_out)
    assert work_in.wait(5)
    timing_in, timing_out = threading.Event(), threading.Event()
    timing = holder(timer.timing, timing_in, timing_out)
    assert not timing_in.wait(WAIT), "a timing must not start while work runs"
    late_in, late_out = threading.Event(), threading.Event()
    late_work = holder(late.work, late_in, late_out)
    assert not late_in.wait(WAIT), "new work must not start while a timing waits"
    work_out.set()
    assert timing_in.wait(5), "the timing starts once the running work is done"
    assert not late_in.wait(WAIT), "work waits while the timing runs"
    timing_out.set()
    assert late_in.wait(5)
    late_out.set()
    for thread in (working, timing, late_work):
        thread.join(5)


def test_work_turns_share_the_device(tmp_path: Path) -> None:
    first, second = DeviceTurns("CPU", tmp_path), DeviceTurns("CPU", tmp_path)
    started = time.perf_counter()
    with first.work(), second.work():
        pass
    assert time.perf_counter() - started < WAIT


def test_devices_have_their_own_turns(tmp_path: Path) -> None:
    assert device_name("CPU", 3) == "CPU" and device_name("Ascend", 1) == "Ascend:1"
    gpu0, gpu1 = DeviceTurns(device_name("GPU", 0), tmp_path), DeviceTurns(device_name("GPU", 1), tmp_path)
    with gpu0.work(), gpu1.timing():
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["GPU-0.device.lock", "GPU-0.gate.lock",
                                                        "GPU-1.device.lock", "GPU-1.gate.lock"]
