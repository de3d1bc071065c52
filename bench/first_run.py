"""A new user's first search, timed phase by phase: ``python search.py`` in a fresh copy of this checkout
with empty caches (no kernels built, no ``auto`` choice, no latency cache, no data, no LUT, no supernet).

The copy holds the files git tracks, as a clone would; the caches point into it, so nothing of this
host's earlier runs is reused. Prints what the run printed last (its ``took`` line: each phase and the
total) beside the wall time of the whole process, import and data preparation included.

    python bench/first_run.py                                          # the default search (about 20 min)
    python bench/first_run.py --config tests/data/tiny_supernet.yaml   # the same steps at test size
    python bench/first_run.py --keep DIR                               # keep the copy in DIR
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: "list[str] | None" = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", help="run 'run --prepare --config CONFIG' instead of bare search.py (a path in the "
                                    "checkout)")
    p.add_argument("--keep", help="make the copy in this new folder and keep it")
    return p.parse_args(argv)


def fresh_copy(folder: Path) -> None:
    """The files git tracks in this checkout, copied under ``folder``."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)


def first_run(folder: Path, config: "str | None") -> tuple[float, subprocess.CompletedProcess]:
    """Wall seconds and the finished process of the first search in ``folder``, with empty caches."""
    cache = folder / ".cache"
    env = {k: v for k, v in os.environ.items() if k not in ("GLOG_v", "MIXNAS_CACHE_DIR")}
    env.update(XDG_CACHE_HOME=str(cache), MIXNAS_CACHE_DIR=str(cache / "mixnas"))
    command = [sys.executable, "search.py"] + (["run", "--prepare", "--config", config] if config else [])
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=folder, env=env, stdout=subprocess.PIPE, text=True)
    return time.perf_counter() - started, proc


def main(argv: "list[str] | None" = None) -> None:
    """Copy, run, print the phases."""
    args = parse_args(argv)
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mixnas-first-run-"))
    folder.mkdir(parents=True, exist_ok=not args.keep)
    try:
        fresh_copy(folder)
        wall, proc = first_run(folder, args.config)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    took = [line for line in proc.stdout.splitlines() if line.startswith("took ")]
    if proc.returncode != 0 or not took:
        raise SystemExit(f"the first run exited {proc.returncode} without its 'took' line")
    print(f"first run of {args.config or 'python search.py'} in a fresh copy with empty caches, {os.cpu_count()} "
          f"CPU(s): {wall:.0f} s wall")
    print(took[0])
    print("next: the same phases on another host with this command; per block: python search.py profile "
          "mixnet_s --blocks")


if __name__ == "__main__":
    main()
