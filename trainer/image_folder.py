"""Scanning an ImageFolder split: one sub-folder of image files per class."""

from __future__ import annotations

import os
from pathlib import Path

from space.basics.errors import UsageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm")
EXTENSIONS = sorted({s for ext in IMAGE_SUFFIXES for s in (ext, ext.upper())})
_ENDINGS = tuple(EXTENSIONS)


def is_image(name: str) -> bool:
    """Whether a file name has one of the image suffixes MindSpore's ImageFolderDataset reads."""
    return name.endswith(_ENDINGS)


def class_images(path: "str | Path", what: str) -> dict[str, list[str]]:
    """Class folder name -> the paths of its image files, both sorted, for the split folder ``path`` (a
    folder that exists); ``what`` names the split in the one-line errors for no classes or a class with no
    images. One directory listing per class: the file type comes from the listing, so a regular file costs
    no system call of its own (a symbolic link is followed: one ``stat``)."""
    with os.scandir(path) as entries:
        classes = sorted(entry.name for entry in entries if entry.is_dir())
    if not classes:
        raise UsageError(f"{what} '{path}' has no class folders - expected one sub-folder of images per class")
    files = {}
    for name in classes:
        with os.scandir(os.path.join(path, name)) as entries:
            images = sorted(entry.path for entry in entries if is_image(entry.name) and entry.is_file())
        if not images:
            raise UsageError(f"class folder '{Path(path) / name}' holds no images ({', '.join(IMAGE_SUFFIXES)})")
        files[name] = images
    return files
