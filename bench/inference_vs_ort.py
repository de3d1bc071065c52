"""MixNet inference on our default MindSpore path against ONNX Runtime on our own ONNX export, side by side.

For each thread count (one process each: MindSpore fixes its CPU thread count per process) and each
batch, both runners are built on the same CPU with the same thread count (MindSpore's kernel threads
and our C++ kernels' threads; ONNX Runtime's intra-op threads), warmed up, then timed in turns of
``--turn`` calls, ``--rounds`` calls each in all, so load from other processes hits both alike. Each
turn starts with ``--settle`` seconds of untimed calls: after a run ONNX Runtime's intra-op threads
keep spinning for tens of milliseconds (its default, for the next run's latency), and on 2 cores that
takes a core from whichever runner comes next; a deployed network runs with no other engine beside it. Ours is the network
``mixconv_impl: auto`` picks on this device, as ``search.py profile --backend mindspore`` measures it;
ONNX Runtime runs the ``split`` network exported by MindSpore's ONNX exporter, as
``search.py profile --backend onnxruntime`` does. Medians with their interquartile range.

    python bench/inference_vs_ort.py                         # MixNet-S at 224, batch 1 and 8, 1 and 2 threads
    python bench/inference_vs_ort.py --threads 1 --batch 1   # one cell of the table
    python bench/inference_vs_ort.py --json                  # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_args(argv: "list[str] | None" = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mixnet_s", help="a genome spec: mixnet_s, mixnet_m, mixnet_l, a file")
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=60, help="timed calls of each runner, in turns")
    p.add_argument("--turn", type=int, default=10, help="timed calls of a runner in a row")
    p.add_argument("--settle", type=float, default=0.15,
                   help="seconds of untimed calls that start each turn (the other engine's threads go idle)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)   # a child process: one thread count
    return p.parse_args(argv)


def runners(model: str, resolution: int, batch: int, threads: int) -> dict:
    """Our MindSpore runner and ONNX Runtime's, for the genome at ``batch`` on ``threads`` CPU threads."""
    from mixnet import create_model
    from search.latency.measure import prepare_cell
    from search.latency.target import LatencyTarget, network_impl
    from space import parse_genome
    genome = parse_genome(model)
    made = {}
    for backend in ("mindspore", "onnxruntime"):
        target = LatencyTarget(backend=backend, device="CPU", batch=batch, resolution=resolution, threads=threads)
        impl = network_impl(target)
        runner = prepare_cell(create_model(genome, mixconv_impl=impl), target.input_shape, target)
        made[backend] = (impl, runner)
    return made


def race(made: dict, warmup: int, rounds: int, turn: int, settle: float) -> dict:
    """Median and interquartile range (ms) of each runner, called in turns of ``turn`` timed calls, each
    turn after ``settle`` seconds of untimed ones."""
    def call(runner) -> float:
        start = time.perf_counter()
        runner.run()
        runner.synchronize()
        return 1e3 * (time.perf_counter() - start)

    for _, runner in made.values():
        for _ in range(warmup):
            call(runner)
    times = {name: [] for name in made}
    while min(len(t) for t in times.values()) < rounds:
        for name, (_, runner) in made.items():
            until = time.perf_counter() + settle
            while time.perf_counter() < until:
                call(runner)
            times[name] += [call(runner) for _ in range(min(turn, rounds - len(times[name])))]
    return {name: {"impl": made[name][0], "median_ms": float(np.median(t)),
                   "q1_ms": float(np.percentile(t, 25)), "q3_ms": float(np.percentile(t, 75))}
            for name, t in times.items()}


def one_thread_count(args: argparse.Namespace) -> list[dict]:
    """Every batch at the single thread count of ``args`` (this process's)."""
    from mixnet.quiet import quiet_mindspore
    quiet_mindspore()
    threads = args.threads[0]
    rows = []
    for batch in args.batch:
        result = race(runners(args.model, args.resolution, batch, threads), args.warmup, args.rounds,
                      args.turn, args.settle)
        rows.append({"threads": threads, "batch": batch, **result,
                     "ours_over_ort": result["mindspore"]["median_ms"] / result["onnxruntime"]["median_ms"]})
    return rows


def run(args: argparse.Namespace) -> list[dict]:
    """One child process per thread count; their rows in order."""
    rows = []
    for threads in args.threads:
        command = [sys.executable, __file__, "--one", "--json", "--model", args.model, "--resolution",
                   str(args.resolution), "--threads", str(threads), "--rounds", str(args.rounds), "--warmup",
                   str(args.warmup), "--turn", str(args.turn), "--settle", str(args.settle),
                   "--batch", *map(str, args.batch)]
        proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            raise SystemExit(f"threads {threads}: {proc.stderr.strip().splitlines()[-1:]}")
        rows += json.loads(proc.stdout)
    return rows


def print_table(rows: list[dict], args: argparse.Namespace) -> None:
    """The comparison as a table, then how to read it."""
    print(f"{args.model} at {args.resolution} px on this CPU, {args.rounds} calls each in turns of {args.turn} "
          f"after {args.settle:g} s untimed; median ms (interquartile range)")
    print(f"{'threads':>7} {'batch':>5} {'ours ms':>9} {'IQR':>15} {'impl':>8} {'ORT ms':>9} {'IQR':>15} {'ours/ORT':>9}")
    for r in rows:
        ours, ort = r["mindspore"], r["onnxruntime"]
        print(f"{r['threads']:>7} {r['batch']:>5} {ours['median_ms']:>9.2f} {ours['q1_ms']:>7.2f}-{ours['q3_ms']:<7.2f} "
              f"{ours['impl']:>8} {ort['median_ms']:>9.2f} {ort['q1_ms']:>7.2f}-{ort['q3_ms']:<7.2f} "
              f"{r['ours_over_ort']:>8.2f}x")
    print("ours / ORT above 1: ONNX Runtime is faster on this CPU; per block: python search.py profile "
          f"{args.model} --blocks --backend mindspore")


def main(argv: "list[str] | None" = None) -> None:
    """Run the comparison and print it."""
    args = parse_args(argv)
    rows = one_thread_count(args) if args.one else run(args)
    if args.json:
        print(json.dumps(rows))
    else:
        print_table(rows, args)


if __name__ == "__main__":
    main()
