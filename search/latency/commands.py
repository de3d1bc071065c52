"""``search.py profile``, ``search.py lut build|check|predict`` and ``search.py mindir export|measure|import``."""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from space.basics.errors import UsageError
from space.parse import parse_genome
from space.search_space import SearchSpace

from .cache import LatencyCache, default_cache_path
from .protocol import DEFAULT_REPEATS, DEFAULT_WARMUP, MIN_SPAN_S
from .target import BACKENDS, DEFAULT_THREADS, DEVICES, LatencyTarget


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``profile``, ``lut`` and ``mindir`` subcommands."""
    p = sub.add_parser("profile", help="measure a genome's latency on a device",
                       description="Measure one genome end to end: warm-up, timed runs with the device "
                                   "synchronized around each, median/p90/min/mean/CV and the environment.")
    p.add_argument("spec", help="genome: preset, one-line genome or genome file")
    add_target_args(p)
    add_protocol_args(p)
    add_span_arg(p)
    add_cache_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--blocks", action="store_true",
                   help="time every part (stem, each block, head, classifier) beside the whole network, "
                        "with each part's share, MAdds and ms per GMAdd; writes a CSV and a PNG")
    p.add_argument("--out", help="with --blocks: CSV to write, the PNG beside it "
                                 "(default runs/profile/GENOME_BACKEND_DEVICE_bBATCH_rRESOLUTION.csv)")
    p.set_defaults(func=run_profile)

    lut = sub.add_parser("lut", help="per-block latency lookup table: build, check, predict",
                         description="Build, check and use a per-block latency lookup table.")
    actions = lut.add_subparsers(dest="lut_command", metavar="ACTION", required=True, parser_class=type(lut))
    b = actions.add_parser("build", help="measure every choice of every layer of a space",
                           description="Measure stem, head, classifier and every choice of every layer at "
                                       "its input shape, plus a few whole genomes for the linear correction.")
    b.add_argument("--space", required=True, help="search-space YAML file")
    add_target_args(b)
    add_protocol_args(b)
    b.add_argument("--calibrate", type=int, default=10,
                   help="whole genomes measured to fit the correction (default 10)")
    b.add_argument("--seed", type=int, default=0, help="seed of the calibration genomes (default 0)")
    add_cache_args(b)
    b.add_argument("--out", required=True, help="LUT CSV to write")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.set_defaults(func=run_lut_build)

    c = actions.add_parser("check", help="measure held-out genomes and score the LUT's predictions",
                           description="Measure N random genomes of the space (not the calibration ones) "
                                       "and compare with the LUT: share within +-10%%, MAPE, Kendall tau.")
    c.add_argument("--lut", required=True, help="LUT CSV")
    c.add_argument("--space", required=True, help="search-space YAML file the LUT must be built for")
    c.add_argument("--genomes", type=int, required=True, help="number of held-out genomes")
    c.add_argument("--seed", type=int, default=1, help="seed of the held-out genomes (default 1)")
    add_statistic_arg(c)
    add_expected_target_args(c)
    add_protocol_args(c)
    add_cache_args(c)
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.set_defaults(func=run_lut_check)

    r = actions.add_parser("predict", help="predict a genome's latency from a LUT",
                           description="Predict a genome's latency (ms) from a LUT.")
    r.add_argument("spec", help="genome: preset, one-line genome or genome file")
    r.add_argument("--lut", required=True, help="LUT CSV")
    r.add_argument("--space", help="search-space YAML file the LUT must be built for")
    add_statistic_arg(r)
    add_expected_target_args(r)
    r.add_argument("--json", action="store_true", help="print one JSON object")
    r.set_defaults(func=run_lut_predict)

    mindir = sub.add_parser("mindir", help="offline latency on a device host through MindIR files",
                            description="Export genomes to MindIR with a manifest, measure the manifest "
                                        "on the device host, import the results into the cache.")
    steps = mindir.add_subparsers(dest="mindir_command", metavar="ACTION", required=True,
                                  parser_class=type(mindir))
    e = steps.add_parser("export", help="export genomes to MindIR files and a manifest",
                         description="Export genomes to DIR/<key>.mindir and DIR/manifest.json.")
    e.add_argument("specs", nargs="*", help="genomes: presets, one-line genomes or genome files")
    e.add_argument("--space", help="search-space YAML file to draw --random genomes from")
    e.add_argument("--random", type=int, default=0, help="also export N random genomes of --space")
    e.add_argument("--seed", type=int, default=0, help="seed of the random genomes (default 0)")
    e.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    e.add_argument("--resolution", type=int, default=224, help="input resolution (default 224)")
    e.add_argument("--out", required=True, help="output directory")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.set_defaults(func=run_mindir_export)

    m = steps.add_parser("measure", help="on the device host: time every model of a manifest",
                         description="Time every MindIR of a manifest with mindspore.load + GraphCell on "
                                     "the device and write a results CSV (resumable).")
    m.add_argument("manifest", help="manifest.json (or its directory)")
    m.add_argument("--device", default="Ascend", help=f"one of {', '.join(DEVICES)} (default Ascend)")
    m.add_argument("--device-id", type=int, default=0, help="device number (default 0)")
    m.add_argument("--threads", type=int, default=None, help=f"CPU threads (default {DEFAULT_THREADS})")
    add_protocol_args(m)
    add_span_arg(m)
    m.add_argument("--out", required=True, help="results CSV to write")
    m.add_argument("--no-progress", action="store_true", help="no progress bar")
    m.set_defaults(func=run_mindir_measure)

    i = steps.add_parser("import", help="load a results CSV into the latency cache",
                         description="Load the results CSV of 'mindir measure' into the latency cache; "
                         "every result must show at least --warmup untimed and --repeats timed runs.")
    i.add_argument("results", help="results CSV from 'search.py mindir measure'")
    add_protocol_args(i)
    i.add_argument("--cache", help=f"SQLite cache file (default $MIXNAS_LATENCY_CACHE or {default_cache_path()})")
    i.set_defaults(func=run_mindir_import)


def add_target_args(p: argparse.ArgumentParser) -> None:
    """--backend, --device, --device-id, --batch, --resolution, --threads."""
    p.add_argument("--backend", default="onnxruntime", help=f"one of {', '.join(BACKENDS)} (default onnxruntime)")
    p.add_argument("--device", default="CPU", help=f"one of {', '.join(DEVICES)} (default CPU)")
    p.add_argument("--device-id", type=int, default=0, help="device number (default 0)")
    p.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    p.add_argument("--resolution", type=int, default=224, help="input resolution (default 224)")
    p.add_argument("--threads", type=int, default=None, help=f"CPU threads (default {DEFAULT_THREADS})")


def add_expected_target_args(p: argparse.ArgumentParser) -> None:
    """Optional --backend, --device, --batch, --resolution the LUT must have been built for."""
    p.add_argument("--backend", help="fail unless the LUT was built for this backend")
    p.add_argument("--device", help="fail unless the LUT was built for this device")
    p.add_argument("--batch", type=int, help="fail unless the LUT was built for this batch size")
    p.add_argument("--resolution", type=int, help="fail unless the LUT was built for this resolution")


def add_statistic_arg(p: argparse.ArgumentParser) -> None:
    """--statistic median|min."""
    p.add_argument("--statistic", default="median",
                   help="median (default) or min: the measured value the LUT predicts")


def add_protocol_args(p: argparse.ArgumentParser) -> None:
    """--warmup, --repeats."""
    p.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, help=f"untimed runs (default {DEFAULT_WARMUP})")
    p.add_argument("--repeats", type=int, default=DEFAULT_REPEATS, help=f"timed runs (default {DEFAULT_REPEATS})")


def add_span_arg(p: argparse.ArgumentParser) -> None:
    """--min-span SECONDS."""
    p.add_argument("--min-span", type=float, default=MIN_SPAN_S, metavar="SECONDS",
                   help=f"least time the timed rounds span, so a slow spell of a shared host cannot "
                        f"set them all (default {MIN_SPAN_S:g}; 0 on a dedicated device)")


def add_cache_args(p: argparse.ArgumentParser) -> None:
    """--cache FILE, --no-cache."""
    p.add_argument("--cache", help=f"SQLite cache file (default $MIXNAS_LATENCY_CACHE or {default_cache_path()})")
    p.add_argument("--no-cache", action="store_true", help="always measure; do not read or write the cache")


def device_name(value: str | None) -> str | None:
    """A device name with any capitalization (``ascend``) -> its canonical spelling (``Ascend``)."""
    if value is None:
        return None
    return {d.lower(): d for d in DEVICES}.get(value.lower(), value)


def target_from(args: argparse.Namespace) -> LatencyTarget:
    """The LatencyTarget the flags describe (its values checked when it is made)."""
    return LatencyTarget(backend=args.backend, device=device_name(args.device), batch=args.batch,
                         resolution=args.resolution, device_id=args.device_id, threads=args.threads)


def cache_from(args: argparse.Namespace) -> LatencyCache | None:
    """The cache the flags ask for (None with --no-cache)."""
    if getattr(args, "no_cache", False):
        return None
    return LatencyCache(args.cache or default_cache_path())


def run_profile(args: argparse.Namespace) -> int:
    """Measure one genome and print its statistics (each part's too with ``--blocks``)."""
    from .measure import measure_latency
    genome = parse_genome(args.spec)
    target = target_from(args)
    if args.blocks:
        return run_block_profile(args, genome, target)
    if args.out:
        raise UsageError(f"--out {args.out} - only with --blocks; the whole-network profile prints, "
                         "or use --json")
    result = measure_latency(genome, target, args.warmup, args.repeats, cache_from(args), args.min_span)
    if args.json:
        print(json.dumps(dict(result.to_dict(), backend=target.backend, device=target.device,
                              genome=genome.to_string(), key=genome.key())))
        return 0
    env = result.env
    source = "cache" if result.cached else "measured"
    print(f"{genome.key()} on {target.backend}/{target.device}:{target.device_id} batch {target.batch} "
          f"at {target.resolution}, {env.get('threads')} thread(s) ({source})")
    print(f"median {result.median_ms:.3f} ms  p90 {result.p90_ms:.3f} ms  min {result.min_ms:.3f} ms  "
          f"mean {result.mean_ms:.3f} ms  cv {100 * result.cv:.1f}%  over {result.repeats} runs")
    versions = ", ".join(f"{k} {env[k]}" for k in ("mindspore", "onnxruntime", "cann") if env.get(k))
    print(f"device {env.get('device_name')}; mixconv_impl {env.get('mixconv_impl')}; {versions}")
    return 0


def block_profile_path(args: argparse.Namespace, genome, target: LatencyTarget) -> Path:
    """The CSV ``--out`` names, or the default under ``runs/profile`` (checked writable)."""
    from space.basics.atomic import check_output
    path = Path(args.out or f"runs/profile/{args.spec if args.spec.isidentifier() else genome.key()}_"
                            f"{target.backend}_{target.device}_b{target.batch}_r{target.resolution}.csv")
    if path.suffix != ".csv":
        raise UsageError(f"--out {args.out} - must end in .csv (the PNG is written beside it)")
    check_output(path)
    return path


def run_block_profile(args: argparse.Namespace, genome, target: LatencyTarget) -> int:
    """Time every part of one genome beside the whole network; print the table, write CSV and PNG."""
    import pandas as pd
    from space.basics.atomic import write_atomic
    from .block_profile import profile_blocks, write_chart
    if args.no_cache or args.cache:
        raise UsageError("--cache/--no-cache - a block profile is always measured and never cached")
    path = block_profile_path(args, genome, target)
    profile = profile_blocks(genome, target, args.warmup, args.repeats, args.min_span)
    rows = profile.rows()
    table = pd.DataFrame(rows).astype({"madds": "Int64"})   # counts exact, times to 6 digits
    write_atomic(path, table.to_csv(index=False, float_format="%.6g"))
    write_chart(profile, path.with_suffix(".png"))
    if args.json:
        print(json.dumps({"genome": genome.to_string(), "key": genome.key(), **target.to_dict(),
                          "env": profile.env, "rows": rows, "csv": str(path)}))
        return 0
    print(f"{genome.key()} on {target.backend}/{target.device}:{target.device_id} batch {target.batch} at "
          f"{target.resolution}, {profile.env.get('threads')} thread(s), mixconv_impl "
          f"{profile.env.get('mixconv_impl')}; each part timed alone")
    print(f"{'part':<11}{'input':>14}{'median ms':>11}{'share':>8}{'MAdds':>10}{'ms/GMAdd':>10}")
    *parts, _, network, _ = rows
    for row in parts:
        print(f"{row['part']:<11}{row['in_shape']:>14}{row['median_ms']:>11.3f}{100 * row['share']:>7.1f}%"
              f"{row['madds'] / 1e6:>9.1f}M{row['ms_per_gmadd']:>10.1f}")
    print(f"parts sum {profile.parts_ms:.3f} ms; whole network {profile.whole_ms:.3f} ms "
          f"({network['ms_per_gmadd']:.1f} ms/GMAdd) "
          f"in the same run; overhead (network - parts) {profile.overhead_ms:+.3f} ms "
          f"({100 * profile.overhead_ms / profile.whole_ms:+.1f}%)")
    slow = max(profile.parts, key=lambda p: p.median_ms)
    print(f"wrote {path} and {path.with_suffix('.png')}; the slowest part is {slow.part} "
          f"({100 * slow.median_ms / profile.parts_ms:.0f}%); next: compare another backend with --backend, "
          "or build a LUT for a whole space with 'search.py lut build'")
    return 0


def run_lut_build(args: argparse.Namespace) -> int:
    """Build a LUT and print where it went and how long it took."""
    from space.basics.atomic import check_output
    from .lut_build import build_lut
    check_output(args.out)
    space = SearchSpace.from_yaml(args.space)
    target = target_from(args)
    if args.calibrate < 0:
        raise UsageError(f"--calibrate {args.calibrate} - must be an integer >= 0")
    table = build_lut(space, target, args.out, progress=not args.no_progress, warmup=args.warmup,
                      repeats=args.repeats, calibrate=args.calibrate, seed=args.seed, cache=cache_from(args))
    scale, offset = table.correction
    print(f"wrote {args.out}: {len(table.entries)} entries for space {space.name} on "
          f"{target.backend}/{target.device} at {target.resolution} in {table.meta['build_s']:.0f} s; "
          f"correction {scale:.4f} x sum {offset:+.3f} ms from {len(table.calibration)} genomes")
    return 0


def load_checked_table(args: argparse.Namespace, space: SearchSpace | None):
    """The LUT of ``--lut``, checked against --space and the expected target flags."""
    from .lut import LatencyTable
    table = LatencyTable.load(args.lut, args.statistic)
    table.ensure_matches(space, backend=args.backend, device=device_name(args.device), batch=args.batch,
                         resolution=args.resolution)
    return table


def run_lut_check(args: argparse.Namespace) -> int:
    """Score a LUT on held-out genomes."""
    from .accuracy import check_lut
    if args.genomes < 2:
        raise UsageError(f"--genomes {args.genomes} - must be an integer >= 2")
    table = load_checked_table(args, SearchSpace.from_yaml(args.space))
    report = check_lut(table, args.genomes, args.seed, cache_from(args), args.warmup, args.repeats,
                       progress=not args.no_progress)
    if args.json:
        print(json.dumps(report))
        return 0
    raw = report["uncorrected"]
    print(f"{report['n']} held-out genomes on {table.target.backend}/{table.target.device} at "
          f"{table.target.resolution} ({table.statistic} latency)")
    for name, scores in (("corrected", report), ("plain sum", raw)):
        print(f"{name:>10}: within +-10% {100 * scores['within_10pct']:.1f}%  MAPE {scores['mape']:.2f}%  "
              f"Kendall tau {scores['kendall_tau']:.3f}")
    print("error histogram (corrected): " + "  ".join(f"{k} {v}" for k, v in report["histogram"].items()))
    return 0


def run_lut_predict(args: argparse.Namespace) -> int:
    """Print a genome's predicted latency."""
    space = SearchSpace.from_yaml(args.space) if args.space else None
    table = load_checked_table(args, space)
    genome = parse_genome(args.spec)
    predicted, raw = table.predict(genome), table.predict_raw(genome)
    if args.json:
        print(json.dumps({"predicted_ms": predicted, "raw_ms": raw, "key": genome.key(),
                          "statistic": table.statistic,
                          **{k: v for k, v in table.target.to_dict().items() if k != "device_id"}}))
        return 0
    print(f"{predicted:.3f} ms predicted (plain sum {raw:.3f} ms) on {table.target.backend}/"
          f"{table.target.device} at {table.target.resolution}")
    return 0


def run_mindir_export(args: argparse.Namespace) -> int:
    """Export genomes to MindIR with a manifest."""
    from .offline import export_batch
    genomes = [parse_genome(s) for s in args.specs]
    if args.random:
        if not args.space:
            raise UsageError("--random needs --space FILE to draw genomes from")
        space = SearchSpace.from_yaml(args.space)
        rng = random.Random(args.seed)
        genomes += [space.random_genome(rng) for _ in range(args.random)]
    if not genomes:
        raise UsageError("no genomes to export - give SPEC arguments or --space FILE --random N")
    LatencyTarget(backend="mindir", batch=args.batch, resolution=args.resolution)  # checks batch and resolution
    unique = list({g.key(): g for g in genomes}.values())
    path = export_batch(unique, args.batch, args.resolution, args.out, progress=not args.no_progress)
    print(f"wrote {len(unique)} MindIR files and {path}")
    return 0


def run_mindir_measure(args: argparse.Namespace) -> int:
    """Measure a manifest on this host's device."""
    from .offline import measure_manifest
    rows = measure_manifest(args.manifest, device_name(args.device), args.out, args.device_id, args.threads,
                            args.warmup, args.repeats, args.min_span, progress=not args.no_progress)
    print(f"wrote {len(rows)} results to {args.out}")
    return 0


def run_mindir_import(args: argparse.Namespace) -> int:
    """Import a results CSV into the cache."""
    from .offline import import_results
    cache = LatencyCache(args.cache or default_cache_path())
    count = import_results(args.results, cache, args.warmup, args.repeats)
    print(f"imported {count} results into {cache.path}")
    return 0
