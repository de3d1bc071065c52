"""Shared test helpers: quiet MindSpore, graph mode, running the CLI as a user would, and the order and
turns of tests when pytest-xdist runs them on two workers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from mixnet.quiet import quiet_mindspore
from search.latency.device_turns import DeviceTurns

quiet_mindspore()

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules holding end-to-end runs (``slow``) first, so that two workers start on the longest files
    and finish together; the order within a module is kept."""
    slow = {item.module.__name__ for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.module.__name__ not in slow)


@contextmanager
def test_turn(alone: bool) -> Iterator[None]:
    """Under pytest-xdist, a test that compares measured times (``timing``) runs while no other test
    runs, the others share the machine: the device turns latency timing takes, on a name of this run."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None:
        yield
        return
    turns = DeviceTurns(f"mixnas-tests-{run}", folder=Path(tempfile.gettempdir()))
    try:
        with turns.timing() if alone else turns.work():
            yield
    finally:
        turns.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    """Fixtures are set up in a shared turn, a ``timing`` test's too (a build is no timing)."""
    with test_turn(False):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Each test runs in its turn: alone if it is marked ``timing``."""
    with test_turn(item.get_closest_marker("timing") is not None):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: "pytest.Item | None") -> Iterator[None]:
    """Fixtures are torn down in a shared turn."""
    with test_turn(False):
        yield


@pytest.fixture(scope="session", autouse=True)
def graph_mode() -> None:
    """Every test runs MindSpore in graph mode on the CPU unless it says otherwise."""
    import mindspore as ms
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_device("CPU")


def free_port() -> int:
    """A TCP port nobody listens on right now, on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args: str, cwd: "Path | None" = None, timeout: float = 600,
            env: "dict[str, str] | None" = None) -> subprocess.CompletedProcess:
    """Run ``python search.py ARGS`` in a fresh process (``env`` added to the environment) and capture its output."""
    env = dict(os.environ, GLOG_v="3", PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, str(ROOT / "search.py"), *args], cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env)


def assert_user_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """A one-line error on stderr containing ``fragments``, exit status 2, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
