"""``search.py train``, ``search.py validate`` and ``search.py data DATASET``."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from space.basics.errors import UsageError

from .config import KEYS, close_keys, load_config

DEST = "set_"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train``, ``validate`` and ``data`` subcommands."""
    train = sub.add_parser("train", usage="search.py train [-c FILE] [--json] [--KEY VALUE ...]", help="train a MixNet with a MindCV recipe (standalone or under msrun)",
                           description="Train a MixNet preset or genome with a MindCV-style YAML recipe; every "
                           "config key can be overridden as --KEY VALUE.", allow_abbrev=False)
    train.add_argument("-c", "--config", help="YAML recipe (MindCV keys), e.g. configs/train/digits.yaml")
    train.add_argument("--json", action="store_true", help="print the result as one JSON object")
    add_key_options(train)
    train.set_defaults(func=run_train)
    strict(train)

    validate = sub.add_parser("validate", usage="search.py validate -c FILE --ckpt_path FILE [--json] [--KEY VALUE ...]",
                              help="top-1/top-5 of a checkpoint on the val split",
                              description="Evaluate a checkpoint (MixNAS or MindCV parameter names) on "
                              "data_dir/val_split.", allow_abbrev=False)
    validate.add_argument("-c", "--config", help="YAML recipe (data, image size, model)")
    validate.add_argument("--json", action="store_true", help='print {"top1", "top5", "n"}')
    add_key_options(validate)
    validate.set_defaults(func=run_validate)
    strict(validate)

    from .bundled import DATASETS
    data = sub.add_parser("data", help="write a bundled dataset as an ImageFolder tree")
    kinds = data.add_subparsers(dest="dataset", metavar="DATASET", required=True, parser_class=type(data))
    for name, bundled in DATASETS.items():
        kind = kinds.add_parser(name, help=bundled.about,
                                description=f"Write {bundled.about} as out/train and out/val "
                                "(fixed stratified 80/20 split).")
        kind.add_argument("--out", required=True, help="folder to create")
        kind.add_argument("--size", type=int, default=32, help="image size in pixels (default 32)")
        kind.set_defaults(func=run_data)


def add_key_options(parser: argparse.ArgumentParser) -> None:
    """One ``--KEY VALUE`` option per config key (booleans may omit the value)."""
    group = parser.add_argument_group("config keys (override the YAML file)")
    for key in KEYS:
        extra: dict[str, Any] = {"nargs": "?", "const": "True"} if key.kind == "bool" else {}
        default = "null" if key.default is None else key.default
        group.add_argument(f"--{key.name}", dest=DEST + key.name, default=argparse.SUPPRESS, metavar="VALUE",
                           help=f"{key.help} (default {default})", **extra)


def strict(parser: argparse.ArgumentParser) -> None:
    """Make ``parser`` reject unknown options itself, naming the close config keys."""
    base = type(parser)

    def parse_known_args(self: argparse.ArgumentParser, args: Any = None, namespace: Any = None) -> Any:
        """Parse, then turn the first leftover token into a one-line error."""
        parsed, extras = base.parse_known_args(self, args, namespace)
        for token in extras:
            if token.startswith("--"):
                name = token[2:].split("=", 1)[0]
                close = close_keys(name)
                hint = f"did you mean {', '.join('--' + k for k in close)}?" if close else "see --help for the keys"
                self.error(f"unknown option '--{name}' - {hint}")
            self.error(f"unexpected argument '{token}'")
        return parsed, extras

    parser.__class__ = type("StrictParser", (base,), {"parse_known_args": parse_known_args})


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config keys given on the command line."""
    return {name[len(DEST):]: value for name, value in vars(args).items() if name.startswith(DEST)}


def run_train(args: argparse.Namespace) -> int:
    """Train and print the result (the config is checked before MindSpore is imported)."""
    cfg = load_config(args.config, overrides(args))
    from .loop import train
    result = train(cfg)
    if args.json:
        print(json.dumps({k: (str(v) if v is not None and k in ("metrics_csv", "best_ckpt") else v)
                          for k, v in asdict(result).items()}))
        return 0
    best = f"{result.best_top1:.2f}%" if result.best_top1 is not None else "n/a"
    final = (f"{result.final_top1:.2f}% (top-5 {result.final_top5:.2f}%)" if result.final_top1 is not None
             else "n/a (no val split)")
    print(f"trained {result.epochs} epochs in {result.seconds:.1f}s ({result.images_per_second:.1f} images/s "
          f"after a {result.compile_seconds:.1f}s first step): final top-1 {final}, best {best}")
    if result.best_ckpt is not None:
        print(f"best checkpoint {result.best_ckpt}; metrics {result.metrics_csv}")
    return 0


def run_validate(args: argparse.Namespace) -> int:
    """Evaluate a checkpoint and print top-1/top-5."""
    cfg = load_config(args.config, overrides(args))
    if not cfg.ckpt_path:
        raise UsageError("validate needs --ckpt_path FILE (a checkpoint to evaluate)")
    from .validate import evaluate
    metrics = evaluate(cfg, cfg.ckpt_path)
    if args.json:
        print(json.dumps(metrics))
    else:
        print(f"top-1 {metrics['top1']:.2f}%  top-5 {metrics['top5']:.2f}%  on {metrics['n']} images")
    return 0


def run_data(args: argparse.Namespace) -> int:
    """Write a bundled dataset's tree and say where."""
    from .bundled import manifest_path, write_dataset
    out = write_dataset(args.dataset, args.out, size=args.size)
    manifest = json.loads(manifest_path(out, args.dataset).read_text())
    print(f"{out}: {manifest['train']} train + {manifest['val']} val images, {manifest['classes']} classes, "
          f"{manifest['size']}x{manifest['size']} px")
    return 0
