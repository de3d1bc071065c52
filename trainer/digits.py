"""scikit-learn's bundled handwritten digits (1,797 real 8x8 scans, 10 classes) as an ImageFolder tree.

``out/train/<digit>/NNNN.png`` and ``out/val/<digit>/NNNN.png``: a fixed stratified 80/20 split
(1,437 / 360 images), each scan scaled from 0-16 to 0-255 and resized to ``size`` px (bicubic), RGB.
Nothing is downloaded: the scans ship inside scikit-learn.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

from space.errors import UsageError

MANIFEST = "digits.json"
VAL_FRACTION = 0.2


def write_digits(out: "str | Path", size: int = 32, seed: int = 0) -> Path:
    """Write the digits tree to ``out`` (idempotent; built in a temp folder, then renamed)."""
    if not isinstance(size, int) or isinstance(size, bool) or not 8 <= size <= 1024:
        raise UsageError(f"--size {size!r} - must be an integer in [8, 1024]")
    out = Path(out)
    wanted = {"source": "sklearn.datasets.load_digits", "size": size, "seed": seed}
    if _matches(out, wanted):
        return out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out '{out}' exists and is not a digits tree of size {size} - "
                         "give an empty or new folder")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    index = np.arange(len(digits.target))
    train_idx, val_idx = train_test_split(index, test_size=VAL_FRACTION, stratify=digits.target, random_state=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        counts = {}
        for split, chosen in (("train", train_idx), ("val", val_idx)):
            for i in sorted(chosen):
                label = int(digits.target[i])
                folder = tmp / split / str(label)
                folder.mkdir(parents=True, exist_ok=True)
                pixels = np.clip(np.rint(digits.images[i] * (255.0 / 16.0)), 0, 255).astype(np.uint8)
                img = Image.fromarray(pixels, "L").resize((size, size), Image.Resampling.BICUBIC)
                img.convert("RGB").save(folder / f"{i:04d}.png")
            counts[split] = len(chosen)
        (tmp / MANIFEST).write_text(json.dumps(dict(wanted, **counts, classes=10), indent=1))
        if out.is_dir():
            out.rmdir()
        try:
            os.rename(tmp, out)
        except OSError:
            if not _matches(out, wanted):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def _matches(out: Path, wanted: dict) -> bool:
    """True when ``out`` already holds the digits tree described by ``wanted``."""
    manifest = out / MANIFEST
    if not manifest.is_file():
        return False
    try:
        recorded = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return False
    return all(recorded.get(k) == v for k, v in wanted.items())
