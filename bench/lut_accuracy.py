"""Benchmark: how well the per-block LUT predicts measured latency on the ONNX Runtime CPU backend.

Builds the LUT of a space (default: configs/space/mixnet_s.yaml at 224, batch 1, one thread),
then measures held-out random genomes end to end and prints the share within +-10%, MAPE and
Kendall tau, for the plain sum and for the calibrated prediction, with the time each step took.
The scores are for the median latency (the protocol's); the same measurements are also scored
on the fastest run (``min``), which load from other processes on a shared host disturbs less.
Nothing is reused from earlier runs: measurements go to a fresh cache in a temporary directory.

    python bench/lut_accuracy.py [--genomes 50] [--out runs/bench/lut_mixnet_s_ort.csv] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mixnet.quiet import quiet_mindspore  # noqa: E402

quiet_mindspore()

from search.latency import LatencyCache, LatencyTable, LatencyTarget, build_lut  # noqa: E402
from search.latency.accuracy import check_lut  # noqa: E402
from space.search_space import SearchSpace  # noqa: E402


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default=str(ROOT / "configs" / "space" / "mixnet_s.yaml"))
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--device", default="CPU")
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--genomes", type=int, default=50, help="held-out genomes (default 50)")
    p.add_argument("--calibrate", type=int, default=10, help="calibration genomes (default 10)")
    p.add_argument("--seed", type=int, default=1, help="seed of the held-out genomes (default 1)")
    p.add_argument("--out", default=str(ROOT / "runs" / "bench" / "lut_mixnet_s_ort.csv"), help="LUT CSV")
    p.add_argument("--report", default=None, help="also write the full JSON report here")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    return p.parse_args()


def main() -> int:
    """Build, check, print."""
    args = parse_args()
    space = SearchSpace.from_yaml(args.space)
    target = LatencyTarget(backend=args.backend, device=args.device, resolution=args.resolution,
                           threads=args.threads)
    with tempfile.TemporaryDirectory(prefix="mixnas-bench-") as tmp:
        cache = LatencyCache(Path(tmp) / "latency.sqlite")
        start = time.perf_counter()
        table = build_lut(space, target, args.out, calibrate=args.calibrate, cache=cache)
        build_s = time.perf_counter() - start
        start = time.perf_counter()
        report = check_lut(table, args.genomes, seed=args.seed, cache=cache)
        check_s = time.perf_counter() - start
        by_min = check_lut(LatencyTable.load(args.out, "min"), args.genomes, seed=args.seed, cache=cache,
                           progress=False)
    raw = report["uncorrected"]
    stable = sum(bool(row["stable"]) for row in report["genomes"])
    summary = {"space": space.name, "backend": target.backend, "device": target.device,
               "resolution": target.resolution, "threads": target.thread_count,
               "lut_entries": len(table.entries), "calibration_genomes": len(table.calibration),
               "lut_build_s": round(build_s, 1), "check_s": round(check_s, 1), "n": report["n"],
               "within_10pct": report["within_10pct"], "mape": report["mape"],
               "kendall_tau": report["kendall_tau"], "histogram": report["histogram"],
               "uncorrected": {k: raw[k] for k in ("within_10pct", "mape", "kendall_tau", "histogram")},
               "correction": report["correction"], "stable_measurements": stable,
               "min_statistic": {k: by_min[k] for k in ("within_10pct", "mape", "kendall_tau")}
               | {"uncorrected": {k: by_min["uncorrected"][k] for k in ("within_10pct", "mape", "kendall_tau")}},
               "device_name": table.meta["env"]["device_name"]}
    if args.report:
        Path(args.report).write_text(json.dumps(dict(summary, genomes=report["genomes"]), indent=1))
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"space {space.name} on {target.backend}/{target.device} ({summary['device_name']}), "
          f"{target.resolution}x{target.resolution}, batch 1, {target.thread_count} thread(s)")
    print(f"LUT build: {len(table.entries)} entries ({len(table.calibration)} calibration genomes) in "
          f"{build_s:.0f} s; check of {report['n']} held-out genomes in {check_s:.0f} s")
    rows = (("plain sum", raw), ("corrected", report), ("min, plain", by_min["uncorrected"]),
            ("min, corr.", by_min))
    for name, scores in rows:
        print(f"{name:>10}: within_10pct {scores['within_10pct']:.3f}  mape {scores['mape']:.2f}%  "
              f"kendall_tau {scores['kendall_tau']:.3f}")
    print(f"{stable} of {report['n']} held-out measurements stable (two quietest rounds within 3%)")
    c = report["correction"]
    print(f"correction: measured = {c['scale']:.4f} x sum {c['offset_ms']:+.3f} ms")
    print("error histogram (corrected): " + "  ".join(f"{k} {v}" for k, v in report["histogram"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
