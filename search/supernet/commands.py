"""``search.py supernet train``, ``supernet check`` and ``supernet extract``."""

from __future__ import annotations

import argparse
from pathlib import Path

from space.basics.atomic import atomic_path

from ..commands import DEMO_CONFIG, add_check_arguments


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``supernet`` subcommand and its actions."""
    parser = sub.add_parser("supernet", help="weight-sharing supernet of a search space: train, extract",
                            description="Train the supernet of a search config's space, or extract a genome's "
                            "stand-alone network from it.")
    actions = parser.add_subparsers(dest="supernet_command", metavar="ACTION", required=True,
                                    parser_class=type(parser))
    t = actions.add_parser("train", help="train (or resume) the supernet with the config's data and proxy recipe",
                           description="Train the supernet: one genome per step (supernet.sampling: fair or "
                           "uniform; supernet.sandwich), then MixNet-S's sub-network scored with BatchNorm recalibrated; checkpoints, "
                           "best.ckpt and metrics.csv in supernet.dir (default OUT/supernet); resumes.")
    t.add_argument("--config", default=DEMO_CONFIG, help=f"search config YAML (default {DEMO_CONFIG})")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=run_train)
    c = actions.add_parser("check", help="supernet scores against stand-alone reference training",
                           description="Score MixNet-S and genomes sampled from the space with supernets trained "
                           "at different seeds and train them stand-alone with the reference recipe; report "
                           "supernet-to-supernet and supernet-vs-reference Kendall tau, Spearman rho, top-third "
                           "overlap and seconds per genome (resumable; reuses proxy check's reference runs).")
    add_check_arguments(c, "supernet_check")
    c.add_argument("--supernets", type=int, default=2, help="supernets at the recipe's seed, seed+1, ... (default 2)")
    c.set_defaults(func=run_check)
    e = actions.add_parser("extract", help="write a genome's stand-alone checkpoint from the trained supernet",
                           description="Write the MindCV-named checkpoint of GENOME's stand-alone network (at the "
                           "proxy's width and classes) with the supernet's weights.")
    e.add_argument("genome", metavar="GENOME", help="preset, one-line genome or genome file (a point of the space)")
    e.add_argument("--config", default=DEMO_CONFIG, help=f"search config YAML (default {DEMO_CONFIG})")
    e.add_argument("--ckpt", help="supernet checkpoint (default supernet.dir/best.ckpt)")
    e.add_argument("--out", required=True, help="output checkpoint file")
    e.set_defaults(func=run_extract)


def run_train(args: argparse.Namespace) -> int:
    """Train the supernet and print where it is, with MixNet-S's score as a search would score it (rank 0 only)."""
    from ..config import load_search_config
    cfg = load_search_config(args.config)   # checked before MindSpore is imported
    from trainer.distributed import current_ranks

    from .training import supernet_recipe, train_supernet, trained_line
    result = train_supernet(cfg, progress=not args.no_progress)
    if current_ranks(supernet_recipe(cfg)).is_main:
        print(trained_line(cfg, result))
    return 0


def run_check(args: argparse.Namespace) -> int:
    """Check the supernet's fidelity and print (or emit as JSON) the report."""
    import json

    from ..config import load_search_config
    cfg = load_search_config(args.config)
    from .check import describe, supernet_check
    report = supernet_check(cfg, genomes=args.genomes, supernets=args.supernets, reference=args.reference,
                            reference_seeds=args.reference_seeds, seed=args.seed, sampling=args.sampling,
                            out=Path(args.out) if args.out else None, progress=not args.no_progress)
    print(json.dumps(report) if args.json else describe(report))
    return 0


def run_extract(args: argparse.Namespace) -> int:
    """Write the stand-alone checkpoint of a genome."""
    from space import parse_genome

    from ..config import load_search_config
    cfg = load_search_config(args.config)
    genome = parse_genome(args.genome)
    import mindspore as ms

    from .scoring import load_supernet
    net = load_supernet(cfg, Path(args.ckpt) if args.ckpt else None)
    from mixnet.supernet import extract
    standalone = extract(net, genome)
    with atomic_path(args.out, suffix=".ckpt") as tmp:
        ms.save_checkpoint(standalone, str(tmp))
    print(f"wrote {args.out}: {net.spec.trained(genome).to_string()}")
    return 0
