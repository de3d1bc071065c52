"""Peak memory of the supernet scorer against the number of held-out images it scores.

Generates an ImageFolder tree of JPEG files (``train/`` for the BatchNorm calibration batches,
``holdout/`` with the largest count of held-out images), then, for each count, scores one genome in a
fresh process: a supernet of the space (random weights; memory does not depend on them) recalibrates
BatchNorm on ``--calibration-batches`` training batches and scores COUNT held-out images in batches
of ``--score-batch``, all read from disk. Each row gives the process's peak resident memory
(``ru_maxrss``), its ratio to the first row's, the memory the held-out images would take if held
(COUNT x 3 x RES x RES float32) and the seconds of the score (compile excluded: a first score of
one batch runs before).

    python bench/scorer_memory.py                             # 200, 2,000, 10,000 images at 224 px
    python bench/scorer_memory.py --counts 200 2000 --resolution 64
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_args(argv: "list[str] | None" = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--counts", type=int, nargs="+", default=[200, 2000, 10000], help="held-out images per row")
    p.add_argument("--resolution", type=int, default=224, help="image_resize (default 224)")
    p.add_argument("--space", default=str(ROOT / "tests" / "data" / "tiny_space.yaml"),
                   help="search space YAML (default the tests' 3-layer space)")
    p.add_argument("--score-batch", type=int, default=256, help="supernet.score_batch (default 256)")
    p.add_argument("--batch", type=int, default=64, help="the recipe's batch_size: calibration batches (default 64)")
    p.add_argument("--calibration-batches", type=int, default=2, help="supernet.calibration_batches (default 2)")
    p.add_argument("--dir", help="parent of the temporary data folder (default the system's)")
    p.add_argument("--one", nargs=2, metavar=("DATA_DIR", "COUNT"), help=argparse.SUPPRESS)  # a row's process
    return p.parse_args(argv)


def write_images(root: Path, per_split: dict[str, int], size: int, classes: int = 10) -> None:
    """``root/<split>/c<k>/<i>.jpg``: ``per_split[split]`` JPEG files of ``size`` px (smooth colour fields,
    a few kB each), spread over ``classes`` class folders."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    for split, count in per_split.items():
        for k in range(classes):
            (root / split / f"c{k}").mkdir(parents=True)
        for i in range(count):
            a, b, c = rng.uniform(0, 255, (3, 3))
            pixels = np.stack([a[j] * ramp[:, None] + b[j] * ramp[None, :] / 2 + c[j] / 4 for j in range(3)], -1)
            image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
            image.save(root / split / f"c{i % classes}" / f"{i:06d}.jpg", quality=90)


def row(args: argparse.Namespace) -> dict:
    """Score one genome on COUNT held-out images of DATA_DIR in this process; its peak memory and seconds."""
    import resource

    from mixnet.quiet import quiet_mindspore
    quiet_mindspore()
    import mindspore as ms

    from mixnet.supernet import Supernet, SupernetSpec
    from search.supernet.scoring import SupernetScorer, scoring_images
    from space.search_space import SearchSpace
    from trainer.config import load_config

    data_dir, count = args.one[0], int(args.one[1])
    ms.set_context(mode=ms.GRAPH_MODE)
    space = SearchSpace.from_yaml(args.space)
    recipe = load_config(ROOT / "configs" / "train" / "digits.yaml",
                         {"data_dir": data_dir, "train_split": "train", "val_split": "holdout", "num_classes": 10,
                          "image_resize": args.resolution, "crop_pct": 0.875, "batch_size": args.batch,
                          "num_parallel_workers": 2})
    net = Supernet(SupernetSpec.of(space, None, 10), impl="split")
    SupernetScorer(net, scoring_images(recipe, args.calibration_batches, 1, args.score_batch)).score(space.skeleton)
    scorer = SupernetScorer(net, scoring_images(recipe, args.calibration_batches, count, args.score_batch))
    started = time.perf_counter()
    scorer.score(space.skeleton)
    seconds = time.perf_counter() - started
    return {"count": scorer.scored, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "seconds": seconds}


def main(argv: "list[str] | None" = None) -> int:
    """Write the images, run one process per count, print the table."""
    args = parse_args(argv)
    if args.one:
        print(json.dumps(row(args)))
        return 0
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        data_dir = Path(tmp) / "data"
        started = time.perf_counter()
        size = round(args.resolution / 0.875)
        write_images(data_dir, {"train": 10 * args.batch * args.calibration_batches, "holdout": max(args.counts)}, size)
        print(f"wrote {max(args.counts):,} held-out and {10 * args.batch * args.calibration_batches:,} training JPEG "
              f"files of {size} px in {time.perf_counter() - started:.0f} s; scoring at {args.resolution} px, "
              f"score_batch {args.score_batch}, {args.calibration_batches} calibration batches of {args.batch}, "
              f"space {Path(args.space).name}")
        print(f"{'held-out images':>16}{'peak RSS MB':>13}{'vs first':>10}{'images if held MB':>19}{'score s':>9}")
        first = None
        for count in args.counts:
            cmd = [sys.executable, __file__, "--one", str(data_dir), str(count), "--resolution", str(args.resolution),
                   "--space", args.space, "--score-batch", str(args.score_batch), "--batch", str(args.batch),
                   "--calibration-batches", str(args.calibration_batches)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stderr[-2000:], file=sys.stderr)
                return 1
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            peak = result["peak_kb"] / 1024
            first = first or peak
            held = result["count"] * 3 * args.resolution ** 2 * 4 / 2 ** 20
            print(f"{result['count']:>16,}{peak:>13,.0f}{peak / first:>10.3f}{held:>19,.0f}{result['seconds']:>9.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
