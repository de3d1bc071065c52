"""Shared test helpers: quiet MindSpore, graph mode, and running the CLI as a user would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mixnet.quiet import quiet_mindspore

quiet_mindspore()

ROOT = Path(__file__).resolve().parents[1]


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
