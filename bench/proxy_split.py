"""Planning and linking the proxy split of an ImageNet-sized ImageFolder tree: seconds and bytes written.

Generates, under a temporary folder, a tree of tiny JPEG files (``train/`` with CLASSES x IMAGES, a
smaller ``val/`` the proxy split never reads), then times ``plan_proxy_data`` (scan and choose) and
``prepare_proxy_data`` (write the linked ``proxy_data`` tree) in this process: wall, user and system
seconds (the system time is the kernel making one link per image, and grows on a busy machine), and
the bytes the step caused to be written (``/proc/self/io`` write_bytes: file and directory pages it
dirtied). Then the disk space of the output tree (``du``): its images are symbolic links, so it holds
directories and link targets, nothing of the size of the images. A second ``prepare`` (same plan)
checks the tree is reused.

    python bench/proxy_split.py                     # 1,000 classes x 100 training images
    python bench/proxy_split.py --classes 100 --images 100
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402

from search.proxy_data import plan_proxy_data, prepare_proxy_data  # noqa: E402
from search.sections import DataSection  # noqa: E402


def parse_args(argv: "list[str] | None" = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--classes", type=int, default=1000, help="class folders (default 1,000)")
    p.add_argument("--images", type=int, default=100, help="training images per class (default 100)")
    p.add_argument("--val-images", type=int, default=10, help="validation images per class (default 10)")
    p.add_argument("--holdout", type=float, default=0.1, help="data.holdout (default 0.1)")
    p.add_argument("--dir", help="parent of the temporary folder (default the system's)")
    return p.parse_args(argv)


def tiny_jpeg() -> bytes:
    """The bytes of an 8 x 8 JPEG."""
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (120, 30, 200)).save(out, "JPEG")
    return out.getvalue()


def write_tree(root: Path, classes: int, per_class: dict[str, int]) -> int:
    """``root/<split>/n<class>/<image>.JPEG`` for each split's count per class; the number of files."""
    body = tiny_jpeg()
    count = 0
    for split, images in per_class.items():
        for c in range(classes):
            folder = root / split / f"n{c:08d}"
            folder.mkdir(parents=True)
            for i in range(images):
                with open(folder / f"n{c:08d}_{i}.JPEG", "wb") as f:
                    f.write(body)
            count += images
    return count


def written_bytes() -> int:
    """This process's storage writes so far (``/proc/self/io`` write_bytes: counted when a page is dirtied)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError("/proc/self/io has no write_bytes")


def disk_bytes(path: Path) -> tuple[int, int]:
    """(apparent size, disk space) of ``path``'s tree in bytes (``du``; links are not followed)."""
    def du(*flags: str) -> int:
        out = subprocess.run(["du", "-s", *flags, str(path)], capture_output=True, text=True, check=True).stdout
        return int(out.split()[0])
    return du("-b"), du("-B1")


def entry_kinds(path: Path) -> dict[str, int]:
    """How many symbolic links, regular files and folders ``path``'s tree holds (links not followed)."""
    kinds = {"links": 0, "files": 0, "folders": 0}
    for folder, dirs, files in os.walk(path):
        kinds["folders"] += len(dirs)
        for name in files:
            kinds["links" if os.path.islink(os.path.join(folder, name)) else "files"] += 1
    return kinds


def measured(step: Callable[..., Any], *args: Any) -> tuple[Any, tuple[float, float, float, int]]:
    """``step(*args)`` and its (wall seconds, user CPU seconds, system CPU seconds, bytes written)."""
    before, usage = written_bytes(), resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = step(*args)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    return result, (wall, after.ru_utime - usage.ru_utime, after.ru_stime - usage.ru_stime, written_bytes() - before)


def main(argv: "list[str] | None" = None) -> int:
    """Generate the tree, plan and link its proxy split, print the table."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        data_dir, out_dir = Path(tmp) / "imagenet", Path(tmp) / "out"
        started = time.perf_counter()
        files = write_tree(data_dir, args.classes, {"train": args.images, "val": args.val_images})
        print(f"generated {files:,} JPEG files of {len(tiny_jpeg())} bytes ({args.classes:,} classes x "
              f"{args.images} train + {args.val_images} val) in {time.perf_counter() - started:.1f} s under {tmp}")
        data = DataSection(dataset="imagefolder", data_dir=str(data_dir), size=224, classes=None,
                           images_per_class=None, holdout=args.holdout, seed=0)
        plan, planning = measured(plan_proxy_data, data)
        proxy, linking = measured(prepare_proxy_data, data, out_dir, plan)
        _, again = measured(prepare_proxy_data, data, out_dir, plan)
        apparent, on_disk = disk_bytes(out_dir / "proxy_data")
        print(f"proxy split: {proxy.n_train:,} train + {proxy.n_holdout:,} held-out links, "
              f"{proxy.num_classes:,} classes")
        print(f"{'step':<28}{'wall s':>8}{'user s':>8}{'system s':>10}{'bytes written':>16}")
        for name, (wall, user, system, written) in (("plan (scan + choose)", planning),
                                                    ("link (write proxy_data)", linking),
                                                    ("prepare again (reused)", again)):
            print(f"{name:<28}{wall:>8.2f}{user:>8.2f}{system:>10.2f}{written:>16,}")
        kinds = entry_kinds(out_dir / "proxy_data")
        print(f"output tree: {kinds['links']:,} symbolic links, {kinds['files']} regular file(s) (the manifest), "
              f"{kinds['folders']:,} folders; {apparent:,} bytes apparent, {on_disk:,} bytes on disk (the "
              f"{files:,} images take {disk_bytes(data_dir)[1]:,})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
