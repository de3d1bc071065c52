"""``search.py run``, ``report``, ``proxy check``, ``verify`` and ``export``."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from space.basics.atomic import atomic_path
from space.basics.errors import UsageError
from space.search_space import GENOME_SAMPLINGS

DEMO_CONFIG = "configs/search/supernet_demo.yaml"
EXPORT_FORMATS = ("MINDIR", "ONNX")
SUFFIX = {"MINDIR": ".mindir", "ONNX": ".onnx"}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``run``, ``report`` and ``export`` subcommands."""
    p = sub.add_parser("run", help="run or resume an architecture search",
                       description="Run (or resume) a search; flags override the config file.")
    p.add_argument("--config", default=DEMO_CONFIG, help=f"search config YAML (default {DEMO_CONFIG})")
    p.add_argument("--out", help="output folder")
    p.add_argument("--trials", type=int, help="target number of finished trials in the study")
    p.add_argument("--storage", help="SQLAlchemy URL (sqlite:///..., postgresql://...) or journal file")
    p.add_argument("--study", help="study name")
    p.add_argument("--workers", type=int, help="worker processes on this machine")
    p.add_argument("--seed", type=int, help="sampler seed")
    p.add_argument("--sampler", help="tpe, nsga2, nsga3 or random")
    p.add_argument("--prepare", action="store_true", help="first build the config's latency table and train its "
                   "supernet where they are missing (latency.source lut, accuracy.source supernet)")
    p.set_defaults(func=run)

    p = sub.add_parser("report", help="write trials.csv, pareto.csv/png and best/ from a storage")
    p.add_argument("--storage", required=True, help="storage URL or journal file")
    p.add_argument("--study", required=True, help="study name")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=report)

    proxy = sub.add_parser("proxy", help="accuracy proxy: check its fidelity",
                           description="Measure how well a search config's accuracy proxy ranks genomes.")
    actions = proxy.add_subparsers(dest="proxy_command", metavar="ACTION", required=True, parser_class=type(proxy))
    c = actions.add_parser("check", help="train genomes with the proxy at seeds and with the reference recipe",
                           description="Train MixNet-S and genomes sampled from the space K times with the proxy "
                           "and with the reference recipe; report seed-to-seed Kendall tau, run noise against the "
                           "spread between genomes, and proxy-vs-reference Kendall tau, Spearman rho and top-third "
                           "overlap. Resumable: finished trainings are kept in OUT/runs.csv.")
    add_check_arguments(c, "proxy_check")
    c.add_argument("--genome", action="append", metavar="SPEC",
                   help="check these genomes instead of sampled ones (repeat; a genome given twice is "
                   "trained at fresh seeds for each copy)")
    c.add_argument("--seeds", type=int, default=2, help="proxy trainings per genome, paired seeds (default 2)")
    c.set_defaults(func=run_proxy_check)

    v = sub.add_parser("verify", help="retrain the Pareto front and MixNet-S with the reference recipe",
                       description="Retrain the study's Pareto front and MixNet-S with the reference recipe at K "
                       "seeds (resumable) and write OUT/verified.csv and OUT/verified.png.")
    v.add_argument("--config", default=DEMO_CONFIG, help=f"search config YAML (default {DEMO_CONFIG})")
    v.add_argument("--seeds", type=int, help="trainings per genome (default verify.seeds)")
    v.add_argument("--reference", help="reference recipe YAML (default as in 'proxy check')")
    v.add_argument("--storage", help="storage URL of the study (default the config's)")
    v.add_argument("--study", help="study name (default the config's)")
    v.add_argument("--out", help="output folder (default the config's out)")
    v.add_argument("--json", action="store_true", help="print the table as JSON records")
    v.add_argument("--no-progress", action="store_true", help="no progress bar")
    v.set_defaults(func=run_verify)

    p = sub.add_parser("export", help="export a genome (optionally with weights) to MindIR or ONNX")
    p.add_argument("spec", help="preset, one-line genome or genome file")
    p.add_argument("--format", type=str.upper, choices=EXPORT_FORMATS, default="MINDIR")
    p.add_argument("--ckpt_path", help="checkpoint with the weights (default: random init)")
    p.add_argument("--num_classes", type=int, help="classifier size (default: the genome's)")
    p.add_argument("--resolution", type=int, default=224, help="input size (default 224)")
    p.add_argument("--batch", type=int, default=1, help="batch size of the exported graph")
    p.add_argument("--out", required=True, help="output file")
    p.set_defaults(func=export)


def add_check_arguments(parser: argparse.ArgumentParser, folder: str) -> None:
    """The flags every fidelity check takes (``proxy check``, ``supernet check``); ``folder``: its output."""
    parser.add_argument("--config", default=DEMO_CONFIG, help=f"search config YAML (default {DEMO_CONFIG})")
    parser.add_argument("--genomes", type=int, default=12, help="genomes, MixNet-S included (default 12)")
    parser.add_argument("--reference", help="reference recipe YAML (default: verify.config, else the proxy's "
                        "recipe trained verify.epochs_factor times longer)")
    parser.add_argument("--reference-seeds", type=int, default=1, help="reference trainings per genome (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampled genomes (default 0)")
    parser.add_argument("--sampling", default=GENOME_SAMPLINGS[0], help="how genomes are drawn: uniform (random "
                        "genomes, all near the space's middle size) or spread (graded from the smallest genome "
                        f"of the space to the largest) (default {GENOME_SAMPLINGS[0]})")
    parser.add_argument("--out", help=f"output folder (default OUT/{folder} of the config)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run the search and write its outputs."""
    from .config import load_search_config
    from .prepare import phases_line, verify_step
    from .report import VERIFY_COMMAND, summary, trials_frame, write_outputs
    from .runner import run_search
    from .verify import candidates
    overrides = {"out": args.out, "trials": args.trials, "storage": args.storage, "study": args.study,
                 "workers": args.workers, "seed": args.seed, "sampler": args.sampler}
    cfg = load_search_config(args.config, overrides)
    phases = {}
    if args.prepare:
        from .prepare import prepare_search
        phases = prepare_search(cfg)
    started = time.perf_counter()
    study = run_search(cfg)
    front = write_outputs(study, cfg.out_dir, cfg.goal.front_objectives)
    frame = trials_frame(study)
    command = VERIFY_COMMAND if front.empty else verify_step(cfg, len(candidates(cfg, frame)))
    if args.prepare:
        workers = f"{cfg.workers} worker{'s' if cfg.workers > 1 else ''}"
        print(phases_line({**phases, f"trials on {workers}": time.perf_counter() - started}))
    print(summary(frame, front, cfg.out_dir, command))
    return 0


def report(args: argparse.Namespace) -> int:
    """Regenerate the outputs of a stored study."""
    from .goal import front_objectives_of
    from .report import VERIFY_COMMAND, summary, trials_frame, write_outputs
    from .runner import quiet_optuna
    from .storage import open_storage
    import optuna
    quiet_optuna()
    storage = open_storage(args.storage, heartbeat=False, must_exist=True)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if args.study not in names:
        raise UsageError(f"study '{args.study}' not found in '{args.storage}' - studies: {', '.join(names) or 'none'}")
    study = optuna.load_study(study_name=args.study, storage=storage)
    objectives = front_objectives_of(study.user_attrs.get("objectives", ["accuracy", "latency_ms"]))
    out = Path(args.out)
    front = write_outputs(study, out, objectives)
    command = f"{VERIFY_COMMAND} --storage {args.storage} --study {args.study} --out {out}"
    print(summary(trials_frame(study), front, out, command))
    return 0


def run_proxy_check(args: argparse.Namespace) -> int:
    """Check a config's accuracy proxy and print (or emit as JSON) the report."""
    import json

    from space import parse_genome

    from .config import load_search_config
    from .proxy_check import describe, proxy_check
    cfg = load_search_config(args.config)
    explicit = [parse_genome(spec) for spec in args.genome] if args.genome else None
    report = proxy_check(cfg, genomes=args.genomes, seeds=args.seeds, reference=args.reference,
                         reference_seeds=args.reference_seeds, seed=args.seed, sampling=args.sampling,
                         explicit=explicit,
                         out=Path(args.out) if args.out else None, progress=not args.no_progress)
    print(json.dumps(report) if args.json else describe(report))
    return 0


def run_verify(args: argparse.Namespace) -> int:
    """Retrain the front and MixNet-S with the reference recipe and print the table."""
    from .config import load_search_config
    from .verify import describe, verify
    cfg = load_search_config(args.config, {"storage": args.storage, "study": args.study})
    table = verify(cfg, seeds=args.seeds, reference=args.reference, out=Path(args.out) if args.out else None,
                   progress=not args.no_progress)
    print(table.to_json(orient="records") if args.json else describe(table))
    return 0


def export(args: argparse.Namespace) -> int:
    """Export a genome to a MindIR or ONNX file (written under a temporary name, then renamed).

    The exported graph uses standard operators only (the ``split`` MixConv), so it runs in any
    ONNX runtime and compiles for any MindSpore device.
    """
    import mindspore as ms
    import numpy as np
    from mixnet import create_model
    from mixnet.checkpoint import load_weights
    if args.resolution < 32 or args.batch < 1:
        raise UsageError(f"--resolution {args.resolution} / --batch {args.batch} - need resolution >= 32, batch >= 1")
    out = Path(args.out)
    if not out.parent.is_dir():
        raise UsageError(f"output folder '{out.parent}' does not exist")
    if not os.access(out.parent, os.W_OK):
        raise UsageError(f"output folder '{out.parent}' is not writable")
    net = create_model(args.spec, num_classes=args.num_classes, mixconv_impl="split")
    if args.ckpt_path:
        load_weights(net, args.ckpt_path)
    net.set_train(False)
    x = ms.Tensor(np.zeros((args.batch, 3, args.resolution, args.resolution), np.float32))
    with atomic_path(out, suffix=SUFFIX[args.format]) as tmp:  # the exporters keep a name with their suffix
        if args.format == "ONNX":
            import mindspore.onnx
            mindspore.onnx.export(net, x, file_name=str(tmp), input_names=["images"], output_names=["logits"])
        else:
            ms.export(net, x, file_name=str(tmp), file_format="MINDIR")
    print(f"wrote {out} ({args.format}, input {args.batch}x3x{args.resolution}x{args.resolution})")
    return 0
