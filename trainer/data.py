"""ImageFolder data: split checks, per-epoch order and shards, and the MindSpore pipelines.

Each epoch reads ``mindspore.dataset.ImageFolderDataset`` through a ``SubsetSampler`` holding that
epoch's order: a permutation seeded by (seed, epoch), identical on every rank, of which rank ``r``
of ``W`` takes positions ``r, r + W, ...`` (disjoint shards of equal size). Unreadable images are
dropped by a filter and counted; an epoch that comes up short of batches re-reads its first
batches, so every rank runs the same number of steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from space.basics.errors import UsageError

from .image_folder import EXTENSIONS, class_images
from .mixing import BatchMixer, mixing_enabled
from .transforms import EvalTransform, SkipCounter, TrainTransform

@dataclass(frozen=True)
class Split:
    """One ImageFolder split: its folder, class names (sorted) and images per class."""

    root: Path
    classes: tuple[str, ...]
    counts: tuple[int, ...]

    @property
    def size(self) -> int:
        """Number of image files."""
        return sum(self.counts)

    @property
    def class_indexing(self) -> dict[str, int]:
        """Class folder name -> label."""
        return {name: i for i, name in enumerate(self.classes)}


def scan_split(data_dir: str, split: str, key: str) -> Split:
    """Check ``data_dir/split`` is an ImageFolder tree; one-line errors name what is wrong."""
    return split_files(data_dir, split, key)[0]


def split_files(data_dir: str, split: str, key: str) -> tuple[Split, list[str]]:
    """The checked split ``data_dir/split`` (as :func:`scan_split`) and its image paths in the order
    ImageFolderDataset numbers them (classes, then files, sorted): a sampler's index ``i`` reads ``paths[i]``."""
    if not data_dir:
        raise UsageError("data_dir is not set - give --data_dir DIR, a folder holding "
                         "train/ and val/ with one sub-folder of images per class")
    root = Path(data_dir)
    if not root.is_dir():
        raise UsageError(f"data_dir '{data_dir}' not found - give --data_dir DIR, a folder holding "
                         "train/ and val/ class folders")
    path = root / split
    if not path.is_dir():
        present = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise UsageError(f"{key} folder '{path}' not found - data_dir holds: {', '.join(present) or 'no folders'}"
                         f" (set {key} to one of them)")
    files = class_images(path, key)
    return Split(path, tuple(files), tuple(map(len, files.values()))), [p for paths in files.values() for p in paths]


def check_same_classes(train: Split, val: Split) -> None:
    """The validation split must hold the training classes (folder names)."""
    if train.classes != val.classes:
        missing = sorted(set(train.classes) - set(val.classes))
        extra = sorted(set(val.classes) - set(train.classes))
        detail = "; ".join(part for part in (f"missing {', '.join(missing[:5])}" if missing else "",
                                             f"extra {', '.join(extra[:5])}" if extra else "") if part)
        raise UsageError(f"class folders of '{val.root}' differ from '{train.root}': {detail}")


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool, num_samples: "int | None") -> np.ndarray:
    """The image indices of one epoch (the same on every rank)."""
    order = np.random.default_rng([seed, epoch, 0x5EED]).permutation(n) if shuffle else np.arange(n)
    return order[:num_samples] if num_samples else order


def shard(order: np.ndarray, rank: int, world: int) -> np.ndarray:
    """Rank ``rank``'s part of ``order``: every ``world``-th index, all parts of equal length."""
    per_rank = len(order) // world
    return order[rank::world][:per_rank]


def steps_per_epoch(shard_size: int, batch_size: int, drop_remainder: bool) -> int:
    """Training steps in one epoch of a shard."""
    return shard_size // batch_size if drop_remainder else -(-shard_size // batch_size)


class TrainData:
    """The training split of one rank: per-epoch pipelines with a fixed number of steps."""

    def __init__(self, cfg: Any, split: Split, num_classes: int, rank: int, world: int) -> None:
        self.cfg, self.split, self.num_classes = cfg, split, num_classes
        self.rank, self.world = rank, world
        epoch_size = min(split.size, cfg.num_samples) if cfg.num_samples else split.size
        self.shard_size = epoch_size // world
        self.steps = steps_per_epoch(self.shard_size, cfg.batch_size, cfg.drop_remainder)
        if self.steps == 0:
            where = f" per rank ({world} ranks)" if world > 1 else ""
            raise UsageError(f"batch_size {cfg.batch_size} is larger than the {self.shard_size} training images"
                             f"{where} and drop_remainder is True - lower batch_size")
        self.soft_labels = mixing_enabled(cfg)

    def indices(self, epoch: int) -> np.ndarray:
        """The image indices this rank reads in ``epoch``."""
        cfg = self.cfg
        order = epoch_order(self.split.size, cfg.seed, epoch, cfg.shuffle, cfg.num_samples)
        return shard(order, self.rank, self.world)

    def dataset(self, epoch: int, skipped: SkipCounter) -> Any:
        """The MindSpore pipeline of ``epoch``: (image NCHW float32, label int32 or one-hot float32)."""
        import mindspore.dataset as ds
        cfg = self.cfg
        workers = cfg.num_parallel_workers
        data = ds.ImageFolderDataset(str(self.split.root), decode=False, extensions=EXTENSIONS,
                                     class_indexing=self.split.class_indexing,
                                     sampler=ds.SubsetSampler(self.indices(epoch).tolist()),
                                     num_parallel_workers=workers)
        data = data.map(TrainTransform(cfg, epoch, skipped), input_columns=["image"],
                        output_columns=["image", "key"], num_parallel_workers=workers)
        data = data.filter(_readable, input_columns=["image"], num_parallel_workers=workers)
        data = data.batch(cfg.batch_size, drop_remainder=cfg.drop_remainder, num_parallel_workers=workers)
        if self.soft_labels:
            data = data.map(BatchMixer(cfg, epoch, self.num_classes), input_columns=["image", "label", "key"],
                            output_columns=["image", "label", "key"], num_parallel_workers=workers)
        return data.project(["image", "label"])

    def batches(self, epoch: int, skipped: SkipCounter) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Exactly ``steps`` batches of ``epoch``; a short epoch re-reads its first batches."""
        produced = 0
        while produced < self.steps:
            passed = 0
            pass_skipped = SkipCounter() if produced else skipped
            for images, labels in self.dataset(epoch, pass_skipped).create_tuple_iterator(output_numpy=True,
                                                                                          num_epochs=1):
                yield images, labels
                passed += 1
                produced += 1
                if produced == self.steps:
                    return
            if passed == 0:
                raise UsageError(f"no readable images in '{self.split.root}' for rank {self.rank} "
                                 f"({skipped.count} unreadable)")


def _readable(image: np.ndarray) -> bool:
    """Filter predicate: False for the empty image an unreadable file becomes."""
    return image.size > 0


def eval_batches(cfg: Any, split: Split, rank: int, world: int, skipped: SkipCounter
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """This rank's validation images (every ``world``-th, none dropped) in batches of ``batch_size``."""
    import mindspore.dataset as ds
    indices = np.arange(split.size)[rank::world]
    if len(indices) == 0:
        return iter(())
    workers = cfg.num_parallel_workers
    data = ds.ImageFolderDataset(str(split.root), decode=False, extensions=EXTENSIONS,
                                 class_indexing=split.class_indexing, sampler=ds.SubsetSampler(indices.tolist()),
                                 num_parallel_workers=workers)
    data = data.map(EvalTransform(cfg, skipped), input_columns=["image"], num_parallel_workers=workers)
    data = data.filter(_readable, input_columns=["image"], num_parallel_workers=workers)
    data = data.batch(cfg.batch_size, drop_remainder=False, num_parallel_workers=workers)
    return data.create_tuple_iterator(output_numpy=True, num_epochs=1)
