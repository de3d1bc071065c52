"""``latency.source: remote``: searches on this process, ``search.py latency serve`` as its own process.

The server times real ONNX Runtime sessions on the CPU (the device host's code path, with
``--device CPU``); the searches use a stand-in trainer so only latency takes time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import optuna
import pytest

from conftest import ROOT, assert_user_error, run_cli
from search.config import load_search_config
from search.latency import LatencyCache, LatencyTarget
from search.latency.remote import DONE, LEASED, LatencyQueue, request_id, result_from_json
from search.runner import run_search
from space import parse_genome
from test_search import completed, digits_dir, tiny_config  # noqa: F401 - the fixture is shared
from test_search_paths import StubTrain

RESOLUTION = 48
TARGET = LatencyTarget(backend="onnxruntime", device="CPU", resolution=RESOLUTION)


def queue_url(kind: str, tmp_path: Path) -> str:
    """A fresh queue: an SQLite file, or CI's PostgreSQL database with the table emptied."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.db'}"
    url = os.environ.get("MIXNAS_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("no PostgreSQL server: .ci/run starts one and sets MIXNAS_TEST_POSTGRES_URL")
    queue = LatencyQueue(url)
    with queue.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM mixnas_latency_requests")
    queue.close()
    return url


def start_server(url: str, cache: Path, min_span: float = 1.0) -> subprocess.Popen:
    """``search.py latency serve`` in its own process (a 3 s lease, so a dead server's request moves on fast)."""
    env = dict(os.environ, GLOG_v="3", PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, str(ROOT / "search.py"), "latency", "serve", "--queue", url,
                             "--backend", "onnxruntime", "--device", "CPU", "--warmup", "2", "--repeats", "5",
                             "--min-span", str(min_span), "--cache", str(cache), "--lease", "3", "--no-progress"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(server: subprocess.Popen) -> str:
    """Interrupt the server and return its stderr."""
    server.send_signal(signal.SIGINT)
    _out, err = server.communicate(timeout=60)
    return err


def remote_config(tmp_path: Path, digits_dir: Path, url: str, name: str, trials: int = 4, **latency) -> Path:  # noqa: F811
    """A tiny-space search whose latency comes from the queue at ``url``."""
    folder = tmp_path / name
    folder.mkdir()
    return tiny_config(folder, digits_dir, trials=trials, sampler="random", study=name,
                       latency={"source": "remote", "remote": url, "remote_timeout_s": 120, "backend": "onnxruntime",
                                "device": "CPU", "resolution": RESOLUTION, "warmup": 2, "repeats": 5,
                                "min_span_s": 1.0, **latency})


def served_rows(url: str) -> dict[str, dict]:
    """Request id -> row of the queue."""
    queue = LatencyQueue(url)
    try:
        return {r["id"]: r for r in queue.rows()}
    finally:
        queue.close()


def check_trials_use_served_results(study: optuna.Study, rows: dict[str, dict]) -> None:
    """Every finished trial's latency is the served median of its deployed genome."""
    for t in completed(study):
        genome = parse_genome(t.user_attrs["genome"])
        row = rows[request_id(genome, TARGET)]
        assert row["state"] == DONE
        assert t.user_attrs["latency_ms"] == pytest.approx(result_from_json(row["result"]).median_ms)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_search_served_by_one_server(tmp_path: Path, digits_dir: Path, kind: str) -> None:  # noqa: F811
    url = queue_url(kind, tmp_path)
    server = start_server(url, tmp_path / "server_cache.sqlite")
    try:
        cfg = load_search_config(remote_config(tmp_path, digits_dir, url, "one"))
        study = run_search(cfg, show_progress=False, train_fn=StubTrain())
    finally:
        err = stop(server)
    rows = served_rows(url)
    assert len(completed(study)) == 4
    check_trials_use_served_results(study, rows)
    assert {r["measurements"] for r in rows.values()} == {1}, err
    # results land in the server's cache (keyed as every measurement) and in the search's
    assert len(LatencyCache(tmp_path / "server_cache.sqlite")) == len(rows)
    assert len(LatencyCache(cfg.out_dir / "latency_cache.sqlite")) == len(rows)
    env = result_from_json(next(iter(rows.values()))["result"]).env
    assert env["backend"] == "onnxruntime" and env["resolution"] == RESOLUTION and env["threads"] == 1


@pytest.mark.slow
def test_killed_server_loses_nothing_and_measures_nothing_twice(tmp_path: Path, digits_dir: Path) -> None:  # noqa: F811
    url = queue_url("sqlite", tmp_path)
    cache = tmp_path / "server_cache.sqlite"
    cfg = load_search_config(remote_config(tmp_path, digits_dir, url, "killed", trials=3, min_span_s=3.0))
    outcome: dict = {}
    search = threading.Thread(target=lambda: outcome.update(
        study=run_search(cfg, show_progress=False, train_fn=StubTrain())), daemon=True)
    search.start()
    server = start_server(url, cache, min_span=3.0)
    deadline = time.time() + 120
    leased: list[dict] = []
    while time.time() < deadline and not leased:
        time.sleep(0.2)
        leased = [r for r in served_rows(url).values() if r["state"] == LEASED]
    assert leased, "no request was claimed"
    time.sleep(1.0)
    server.send_signal(signal.SIGKILL)
    server.wait(timeout=30)
    killed = served_rows(url)[leased[0]["id"]]
    assert killed["state"] == LEASED and killed["measurements"] == 0
    server = start_server(url, cache, min_span=3.0)
    try:
        search.join(timeout=600)
    finally:
        err = stop(server)
    assert not search.is_alive() and "study" in outcome, err
    rows = served_rows(url)
    assert len(completed(outcome["study"])) == 3
    check_trials_use_served_results(outcome["study"], rows)
    assert {r["measurements"] for r in rows.values()} == {1}
    assert rows[leased[0]["id"]]["attempts"] == 2


@pytest.mark.slow
def test_two_searches_share_one_server(tmp_path: Path, digits_dir: Path) -> None:  # noqa: F811
    url = queue_url("sqlite", tmp_path)
    server = start_server(url, tmp_path / "server_cache.sqlite")
    studies: dict[str, optuna.Study] = {}
    errors: dict[str, str] = {}

    def search(name: str) -> None:
        try:
            cfg = load_search_config(remote_config(tmp_path, digits_dir, url, name))
            studies[name] = run_search(cfg, show_progress=False, train_fn=StubTrain())
        except BaseException:  # reported below, with the server's log
            errors[name] = traceback.format_exc()

    threads = [threading.Thread(target=search, args=(name,), daemon=True) for name in ("first", "second")]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
    finally:
        err = stop(server)
    assert set(studies) == {"first", "second"}, (errors, err)
    rows = served_rows(url)
    for study in studies.values():
        assert len(completed(study)) == 4
        check_trials_use_served_results(study, rows)
    keys = [{t.user_attrs["genome_key"] for t in completed(s)} for s in studies.values()]
    assert keys[0] & keys[1], "both searches start from the space's skeleton"
    assert len(rows) == len(keys[0] | keys[1])
    assert {r["measurements"] for r in rows.values()} == {1}


def test_no_server_is_a_one_line_timeout(tmp_path: Path, digits_dir: Path) -> None:  # noqa: F811
    url = queue_url("sqlite", tmp_path)
    config = remote_config(tmp_path, digits_dir, url, "alone", trials=2, remote_timeout_s=2)
    proc = run_cli("run", "--config", str(config))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "no latency server measured" in last and "2 s" in last, proc.stderr
    assert "waiting for a latency server for onnxruntime/CPU" in proc.stderr
    assert all(r["measurements"] == 0 for r in served_rows(url).values())


def test_serve_bad_input() -> None:
    assert_user_error(run_cli("latency", "serve", "--queue", "sqlite:////nonexistent/q.db", "--device", "TPU"),
                      "unknown device 'TPU'")
    assert_user_error(run_cli("latency", "serve", "--queue", "postgresql+psycopg2://nobody@127.0.0.1:1/none",
                              "--no-cache"), "latency queue", "cannot be opened")
