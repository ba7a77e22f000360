"""Reader for MNIST-style idx files (MNIST, Fashion-MNIST, KMNIST ...).

The directory holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each possibly gzipped (``.gz``) and
possibly spelled with a dot before ``idx`` (``train-images.idx3-ubyte``).

An idx file starts with a big-endian magic number ``0x0000TTDD`` (``TT`` the element type,
0x08 for uint8; ``DD`` the number of dimensions), then one big-endian uint32 per dimension, then
the elements.
"""

from __future__ import annotations

import gzip
import logging
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from nas.data.dataset import FloatArray, LabelArray
from nas.data.raw import RawData, describe_exception, labels_from, scale_to_unit
from nas.errors import DataError

__all__ = ["IDX_IMAGES_MAGIC", "IDX_LABELS_MAGIC", "find_idx_files", "read_idx", "read_idx_file"]

logger = logging.getLogger(__name__)

IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801

_ROLES = {
    "train_images": ("train-images", "idx3-ubyte"),
    "train_labels": ("train-labels", "idx1-ubyte"),
    "test_images": ("t10k-images", "idx3-ubyte"),
    "test_labels": ("t10k-labels", "idx1-ubyte"),
}


def _candidates(stem: str, kind: str) -> list[str]:
    names = [f"{stem}-{kind}", f"{stem}.{kind}"]
    return names + [f"{name}.gz" for name in names]


def find_idx_files(directory: Path) -> dict[str, Path | None]:
    """Map each role (``train_images``, ...) to its file in ``directory``, or None if absent."""
    found: dict[str, Path | None] = {}
    for role, (stem, kind) in _ROLES.items():
        found[role] = next(
            (directory / name for name in _candidates(stem, kind) if (directory / name).is_file()),
            None,
        )
    return found


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"{path}: cannot read the file ({describe_exception(exc)}); "
            f"replace it with a fresh copy"
        ) from exc


def read_idx_file(path: Path, *, expected_magic: int) -> np.ndarray:
    """Parse one idx file and return its uint8 elements shaped as the header says."""
    content = _read_bytes(path)
    expected_dimensions = expected_magic & 0xFF
    header_size = 4 + 4 * expected_dimensions
    if len(content) < 4:
        raise DataError(
            f"{path}: truncated idx file ({len(content)} bytes, no header); "
            f"replace it with a fresh copy"
        )
    (magic,) = struct.unpack(">I", content[:4])
    if magic != expected_magic:
        raise DataError(
            f"{path}: wrong idx magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
            f"(uint8, {expected_dimensions}-D); is this the right file, and is it decompressed "
            f"or named .gz?"
        )
    if len(content) < header_size:
        raise DataError(
            f"{path}: truncated idx header ({len(content)} of {header_size} bytes); "
            f"replace the file with a fresh copy"
        )
    shape = struct.unpack(f">{expected_dimensions}I", content[4:header_size])
    expected_size = math.prod(shape)
    actual_size = len(content) - header_size
    if actual_size != expected_size:
        problem = "truncated" if actual_size < expected_size else "has trailing data"
        raise DataError(
            f"{path}: idx file {problem}: header says {'x'.join(map(str, shape))} = "
            f"{expected_size} bytes of data, found {actual_size}; replace it with a fresh copy"
        )
    return np.frombuffer(content, dtype=np.uint8, offset=header_size).reshape(shape)


def _read_pair(images_path: Path, labels_path: Path) -> tuple[FloatArray, LabelArray]:
    images = read_idx_file(images_path, expected_magic=IDX_IMAGES_MAGIC)
    labels = read_idx_file(labels_path, expected_magic=IDX_LABELS_MAGIC)
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images_path}: {images.shape[0]} images but {labels_path.name} has "
            f"{labels.shape[0]} labels; the files must come from the same release"
        )
    scaled = scale_to_unit(images[:, np.newaxis, :, :], location=str(images_path))
    return scaled, labels_from(labels, location=str(labels_path))


def read_idx(directory: Path) -> RawData:
    """Read the four MNIST idx files in ``directory``."""
    files = find_idx_files(directory)
    missing = [_candidates(*_ROLES[role])[0] for role, path in files.items() if path is None]
    if missing:
        raise DataError(
            f"{directory}: MNIST directory lacks {', '.join(missing)} (optionally .gz); "
            f"add all four idx files"
        )
    train_images, train_labels = files["train_images"], files["train_labels"]
    test_images, test_labels = files["test_images"], files["test_labels"]
    assert train_images and train_labels and test_images and test_labels
    x_train, y_train = _read_pair(train_images, train_labels)
    x_test, y_test = _read_pair(test_images, test_labels)
    logger.info(
        "read idx files from %s: %d train and %d test images of %dx%d",
        directory,
        len(y_train),
        len(y_test),
        x_train.shape[2],
        x_train.shape[3],
    )
    return RawData(
        format="mnist-idx",
        location=str(directory),
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
    )
