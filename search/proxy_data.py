"""The proxy dataset of a search: a class subset of the training split, with a held-out part.

Candidates are trained on ``proxy/train`` and scored on ``proxy/holdout``; both are carved out of
the dataset's *training* images (as MnasNet held out 50K ImageNet training images), so the final
validation split is never used to choose an architecture. Files are symbolic links.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from space.basics.atomic import atomic_path
from space.basics.errors import UsageError
from space.basics.filelock import file_lock
from trainer.image_folder import class_images

from .sections import DataSection

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ProxyData:
    """Where the proxy split lives and what it holds."""

    root: Path
    num_classes: int
    n_train: int
    n_holdout: int


def _class_files(train_dir: Path) -> dict[str, list[str]]:
    """Class folder -> sorted image paths; errors for a missing split, no classes or a class without images."""
    if not train_dir.is_dir():
        raise UsageError(f"dataset split '{train_dir}' not found - expected an ImageFolder tree "
                         "DATA_DIR/train/<class>/<image>")
    return class_images(train_dir, "dataset split")


def _plan(files: dict[str, list[str]], data: DataSection) -> dict[str, dict[str, list[str]]]:
    """Split -> class -> absolute file paths (in the class folder's real path), chosen deterministically
    from ``data['seed']``."""
    names = list(files)
    if data.classes is not None:
        if not isinstance(data.classes, int) or not 2 <= data.classes <= len(names):
            raise UsageError(f"data.classes {data['classes']!r} - must be an integer in 2..{len(names)}")
        names = names[:data.classes]
    rng = random.Random(data.seed)
    plan: dict[str, dict[str, list[str]]] = {"train": {}, "holdout": {}}
    for name in names:
        paths = files[name]
        folder = os.path.realpath(os.path.dirname(paths[0]))
        images = [os.path.join(folder, os.path.basename(p)) for p in paths]
        rng.shuffle(images)
        if data.images_per_class is not None:
            images = images[:data.images_per_class]
        n_holdout = max(1, round(len(images) * data.holdout))
        if len(images) - n_holdout < 1:
            raise UsageError(f"class '{name}' has {len(images)} image(s): too few to hold some out")
        plan["holdout"][name] = sorted(images[:n_holdout])
        plan["train"][name] = sorted(images[n_holdout:])
    return plan


def _write_tree(plan: dict[str, dict[str, list[str]]], root: Path, manifest: dict) -> None:
    """Write the linked tree into a temporary folder, then move it into place: one symbolic link per
    image, no image read or copied."""
    with atomic_path(root, suffix="", folder=True) as tmp:
        for split, classes in plan.items():
            for name, images in classes.items():
                folder = tmp / split / name
                folder.mkdir(parents=True)
                for i, src in enumerate(images):
                    os.symlink(src, os.path.join(folder, f"{i:06d}{os.path.splitext(src)[1]}"))
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))


Plan = dict[str, dict[str, list[str]]]


def plan_proxy_data(data: DataSection) -> Plan:
    """Read and check the ``data`` section's images and choose the split; nothing is written, except
    that a bundled dataset is written to its ``data_dir`` when missing."""
    data_dir = Path(data.data_dir)
    if data.dataset != "imagefolder":
        from trainer.bundled import write_dataset
        write_dataset(data.dataset, data_dir, size=data.size)
    return _plan(_class_files(data_dir / "train"), data)


def proxy_data_of(plan: Plan, out_dir: Path) -> ProxyData:
    """The proxy split ``plan`` makes in ``out_dir`` (nothing is written)."""
    return ProxyData(root=out_dir / "proxy_data", num_classes=len(plan["train"]),
                     n_train=sum(map(len, plan["train"].values())),
                     n_holdout=sum(map(len, plan["holdout"].values())))


def prepare_proxy_data(data: DataSection, out_dir: Path, plan: Plan) -> ProxyData:
    """Make (or reuse) ``out_dir/proxy_data`` holding the split ``plan`` (from ``plan_proxy_data``) of the
    ``data`` section of a search config."""
    digest = hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()[:16]
    root = out_dir / "proxy_data"
    manifest_path = root / MANIFEST
    with file_lock(out_dir / ".proxy_data.lock"):
        current = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        if current.get("digest") != digest:
            _write_tree(plan, root, {"digest": digest, "source": str(Path(data.data_dir).resolve()),
                                     "holdout": data.holdout, "seed": data.seed})
    return proxy_data_of(plan, out_dir)
