"""Reader for a directory of images with one sub-directory per class.

``root/<class name>/*.png`` (also ``.jpg``, ``.jpeg``, ``.bmp``, ``.gif``). Class names are the
sorted sub-directory names. Each image is resized with Pillow as it is read, so large images
never pile up in memory.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from nas.data.dataset import FloatArray
from nas.data.raw import RawData, describe_exception
from nas.errors import DataError

__all__ = ["GRAYSCALE_MODES", "IMAGE_SUFFIXES", "image_files", "read_image_folder"]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif"})
GRAYSCALE_MODES = frozenset({"1", "L", "LA"})


def image_files(directory: Path) -> list[Path]:
    """The image files directly inside ``directory``, sorted by name."""
    return sorted(
        entry
        for entry in directory.iterdir()
        if entry.is_file()
        and entry.suffix.lower() in IMAGE_SUFFIXES
        and not entry.name.startswith(".")
    )


def class_directories(root: Path) -> list[Path]:
    """The non-hidden sub-directories of ``root``, sorted by name."""
    return sorted(
        entry for entry in root.iterdir() if entry.is_dir() and not entry.name.startswith(".")
    )


def _image_mode(path: Path) -> str:
    try:
        with Image.open(path) as image:
            return str(image.mode)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(
            f"{path}: not a readable image ({describe_exception(exc)}); delete or replace the file"
        ) from exc


def _load_image(path: Path, *, mode: str, resolution: int) -> FloatArray:
    try:
        with Image.open(path) as image:
            image.draft(mode, (resolution, resolution))
            converted = image.convert(mode)
            if converted.size != (resolution, resolution):
                converted = converted.resize((resolution, resolution), Image.Resampling.BILINEAR)
            pixels = np.asarray(converted, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(
            f"{path}: cannot decode the image ({describe_exception(exc)}); "
            f"delete or replace the file"
        ) from exc
    if pixels.ndim == 2:
        pixels = pixels[np.newaxis, :, :]
    else:
        pixels = pixels.transpose(2, 0, 1)
    scaled = pixels.astype(np.float32)
    scaled /= np.float32(255.0)
    return scaled


def read_image_folder(root: Path, *, resolution: int, grayscale: bool | None) -> RawData:
    """Read ``root/<class>/<image>`` files, resized to ``resolution`` x ``resolution``.

    ``grayscale=None`` reads 1 channel if every image is grayscale (mode 1, L or LA), else RGB.
    """
    classes = class_directories(root)
    if not classes:
        if image_files(root):
            raise DataError(
                f"{root}: images lie directly in the directory; put them in one "
                f"sub-directory per class (e.g. {root}/cat/, {root}/dog/)"
            )
        raise DataError(
            f"{root}: no class sub-directories; expected {root}/<class name>/<image files>"
        )
    if len(classes) < 2:
        raise DataError(
            f"{root}: only one class sub-directory ({classes[0].name}); "
            f"image classification needs at least 2 classes"
        )
    files_per_class: list[list[Path]] = []
    for directory in classes:
        files = image_files(directory)
        if not files:
            suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
            raise DataError(
                f"{directory}: class folder holds no images ({suffixes}); "
                f"add images or remove the folder"
            )
        files_per_class.append(files)
    loose = image_files(root)
    if loose:
        logger.warning(
            "%s: ignoring %d image(s) outside the class sub-directories", root, len(loose)
        )
    if grayscale is None:
        grayscale = all(
            _image_mode(path) in GRAYSCALE_MODES for files in files_per_class for path in files
        )
    mode = "L" if grayscale else "RGB"
    channels = 1 if grayscale else 3
    total = sum(len(files) for files in files_per_class)
    images = np.empty((total, channels, resolution, resolution), np.float32)
    labels = np.empty(total, np.int64)
    position = 0
    for class_index, files in enumerate(files_per_class):
        for path in files:
            images[position] = _load_image(path, mode=mode, resolution=resolution)
            labels[position] = class_index
            position += 1
    logger.info(
        "read image folder %s: %d images in %d classes, %s at %dx%d",
        root,
        total,
        len(classes),
        mode,
        resolution,
        resolution,
    )
    return RawData(
        format="image-folder",
        location=str(root),
        x_train=images,
        y_train=labels,
        class_names=tuple(directory.name for directory in classes),
    )
