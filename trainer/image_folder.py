"""Scanning an ImageFolder split: one sub-folder of image files per class."""

from __future__ import annotations

import os
from pathlib import Path

from space.basics.errors import UsageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm")
EXTENSIONS = sorted({s for ext in IMAGE_SUFFIXES for s in (ext, ext.upper())})


def is_image(name: str) -> bool:
    """Whether a file name has one of the image suffixes MindSpore's ImageFolderDataset reads."""
    return name.endswith(tuple(EXTENSIONS))


def class_images(path: Path, what: str) -> dict[str, list[Path]]:
    """Class folder name -> its image files, both sorted, for the split folder ``path`` (a folder that
    exists); ``what`` names the split in the one-line errors for no classes or a class with no images."""
    classes = sorted(entry.name for entry in os.scandir(path) if entry.is_dir())
    if not classes:
        raise UsageError(f"{what} '{path}' has no class folders - expected one sub-folder of images per class")
    files = {}
    for name in classes:
        images = sorted(Path(entry.path) for entry in os.scandir(path / name) if entry.is_file() and is_image(entry.name))
        if not images:
            raise UsageError(f"class folder '{path / name}' holds no images ({', '.join(IMAGE_SUFFIXES)})")
        files[name] = images
    return files
