"""LUT files under SIGKILL: a killed build leaves no file, a killed write leaves the old file whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, run_cli
from search.latency import LatencyTable
from space.basics.atomic import atomic_path
from space.search_space import SearchSpace
from test_latency_lut import TINY_SPACE

ENV = dict(os.environ, GLOG_v="3", PYTHONPATH=str(ROOT))


def test_a_write_killed_midway_leaves_the_old_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "lut.csv"
    target.write_text("old,complete\n")
    big = 400_000_000
    child = subprocess.Popen([sys.executable, "-c", "import sys; from space.basics.atomic import write_atomic; "
                              f"write_atomic(sys.argv[1], 'x' * {big})", str(target)], cwd=ROOT, env=ENV)
    deadline = time.time() + 120
    caught: list[Path] = []
    while not caught and child.poll() is None and time.time() < deadline:
        caught = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp") and p.stat().st_size > 0]
        time.sleep(0.001)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert caught, "the write finished before it could be killed"
    assert target.read_text() == "old,complete\n"


@pytest.mark.slow
def test_a_killed_lut_build_writes_nothing_and_a_rerun_completes(tmp_path: Path) -> None:
    space_file = tmp_path / "tiny.yaml"
    space_file.write_text(TINY_SPACE)
    out = tmp_path / "lut.csv"
    args = ["lut", "build", "--space", str(space_file), "--backend", "onnxruntime", "--device", "CPU",
            "--resolution", "64", "--warmup", "2", "--repeats", "10", "--calibrate", "2",
            "--cache", str(tmp_path / "cache.sqlite"), "--out", str(out)]
    child = subprocess.Popen([sys.executable, str(ROOT / "search.py"), *args], cwd=ROOT, env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    progress = ""
    while "3/" not in progress:
        chunk = child.stderr.read(1)
        if not chunk:
            raise AssertionError(f"the build ended before 3 parts were measured (exit {child.wait()})")
        progress = (progress + chunk)[-200:]
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert list(tmp_path.glob("lut.csv*")) == [] and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = LatencyTable.load(out)
    assert table.predict(SearchSpace.from_yaml(space_file).skeleton) > 0


def test_a_folder_write_replaces_the_old_folder_or_keeps_the_first_writers(tmp_path: Path) -> None:
    target = tmp_path / "tree"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_path(target, folder=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    with atomic_path(target, folder=True, first_wins=True) as tmp:
        (tmp / "late.txt").write_text("late")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "failed", folder=True) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("the writer failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tree"]
