"""A screenshot of a study in optuna-dashboard, taken in headless Chromium.

Starts optuna-dashboard (the ``dashboard`` extra) on loopback for a study storage, waits until its
HTTP API answers, and has Chromium (Debian's ``chromium`` package) render the study's page to a PNG.

    python bench/dashboard_screenshot.py sqlite:///runs/demo/study.db --out docs/dashboard_demo.png
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    """A TCP port free on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def study_id(port: int, name: "str | None", timeout_s: float = 60.0) -> int:
    """The dashboard's id of the study ``name`` (the first study when None), once the server answers."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as response:
                studies = json.loads(response.read())["study_summaries"]
            break
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"optuna-dashboard did not answer on port {port} within {timeout_s:.0f} s")
            time.sleep(0.3)
    chosen = [s for s in studies if name is None or s["study_name"] == name]
    if not chosen:
        raise SystemExit(f"study '{name}' not found - studies: {', '.join(s['study_name'] for s in studies)}")
    return int(chosen[0]["study_id"])


def main() -> int:
    """Serve the storage, render the study's page, write the PNG."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("storage", help="study storage URL, e.g. sqlite:///runs/demo/study.db")
    parser.add_argument("--study", default=None, help="study name (default: the first)")
    parser.add_argument("--out", default="docs/dashboard_demo.png", help="PNG to write")
    parser.add_argument("--size", default="1400,1000", help="window size in pixels, W,H")
    args = parser.parse_args()
    dashboard = Path(sys.executable).with_name("optuna-dashboard")
    chromium = shutil.which("chromium")
    if not dashboard.is_file() or chromium is None:
        raise SystemExit("needs optuna-dashboard (pip install -e '.[dashboard]') and chromium (apt install chromium)")
    port = free_port()
    server = subprocess.Popen([str(dashboard), args.storage, "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        page = f"http://127.0.0.1:{port}/dashboard/studies/{study_id(port, args.study)}"
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as profile:
            subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={args.size}",
                            "--virtual-time-budget=20000", f"--screenshot={out.resolve()}", page],
                           check=True, capture_output=True, timeout=180)
        print(f"wrote {out} ({page})")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
