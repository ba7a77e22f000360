"""Reader for the CIFAR-10 "python version" batches.

The directory holds ``data_batch_1`` .. ``data_batch_5`` (any non-empty subset), ``test_batch``
and optionally ``batches.meta``, either directly or inside a ``cifar-10-batches-py``
sub-directory. Each batch is a pickled dict with ``data`` (uint8, N x 3072, CHW order) and
``labels`` (list of ints); keys may be bytes (files pickled by Python 2) or str.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from nas.data.dataset import FloatArray, LabelArray
from nas.data.raw import RawData, labels_from, scale_to_unit
from nas.data.safe_pickle import load_pickle
from nas.errors import DataError

__all__ = ["CIFAR_SUBDIRECTORY", "find_cifar_directory", "read_cifar"]

logger = logging.getLogger(__name__)

CIFAR_SUBDIRECTORY = "cifar-10-batches-py"
_TRAIN_BATCH = re.compile(r"^data_batch_[1-9][0-9]*$")
_TEST_BATCH = "test_batch"
_META = "batches.meta"
_SIDE = 32
_CHANNELS = 3


def _looks_like_cifar(directory: Path) -> bool:
    return (directory / _TEST_BATCH).is_file() or any(
        _TRAIN_BATCH.match(entry.name) and entry.is_file() for entry in directory.iterdir()
    )


def find_cifar_directory(root: Path) -> Path | None:
    """The directory under ``root`` holding CIFAR batches, or None if there is none."""
    for candidate in (root, root / CIFAR_SUBDIRECTORY):
        if candidate.is_dir() and _looks_like_cifar(candidate):
            return candidate
    return None


def _field(batch: dict[Any, Any], key: str) -> Any:
    for candidate in (key.encode("ascii"), key):
        if candidate in batch:
            return batch[candidate]
    return None


def _read_batch(path: Path) -> tuple[FloatArray, LabelArray]:
    location = str(path)
    batch = load_pickle(path)
    if not isinstance(batch, dict):
        raise DataError(
            f"{location}: expected a pickled dict with 'data' and 'labels', "
            f"got {type(batch).__name__}; is this a CIFAR-10 python batch?"
        )
    data = _field(batch, "data")
    labels = _field(batch, "labels")
    if data is None or labels is None:
        keys = sorted(str(key) for key in batch)
        raise DataError(
            f"{location}: CIFAR batch lacks 'data' or 'labels' (found keys {keys}); "
            f"is this a CIFAR-10 python batch (CIFAR-100 uses 'fine_labels')?"
        )
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        description = (
            f"{data.dtype} array of shape {data.shape}"
            if isinstance(data, np.ndarray)
            else type(data).__name__
        )
        raise DataError(
            f"{location}: 'data' must be a uint8 array of shape (N, 3072), got {description}"
        )
    if data.shape[1] != _CHANNELS * _SIDE * _SIDE:
        raise DataError(
            f"{location}: 'data' rows must hold 3072 values (3x32x32), got {data.shape[1]}"
        )
    label_array = labels_from(labels, location=location)
    if label_array.shape[0] != data.shape[0]:
        raise DataError(
            f"{location}: {data.shape[0]} images but {label_array.shape[0]} labels; "
            f"the batch is corrupt, replace it with a fresh copy"
        )
    images = scale_to_unit(data.reshape(-1, _CHANNELS, _SIDE, _SIDE), location=location)
    return images, label_array


def _read_class_names(path: Path) -> tuple[str, ...] | None:
    if not path.is_file():
        return None
    meta = load_pickle(path)
    names = _field(meta, "label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list | tuple) or not names:
        raise DataError(
            f"{path}: expected a pickled dict with a non-empty 'label_names' list; "
            f"fix or delete the file (class names then default to 0, 1, ...)"
        )
    decoded = tuple(
        name.decode("utf-8", errors="replace") if isinstance(name, bytes) else str(name)
        for name in names
    )
    return decoded


def read_cifar(directory: Path) -> RawData:
    """Read the CIFAR batches in ``directory`` (as found by :func:`find_cifar_directory`)."""
    train_paths = sorted(
        (entry for entry in directory.iterdir() if _TRAIN_BATCH.match(entry.name)),
        key=lambda entry: int(entry.name.rsplit("_", 1)[1]),
    )
    test_path = directory / _TEST_BATCH
    if not train_paths:
        raise DataError(
            f"{directory}: CIFAR directory has no data_batch_1 .. data_batch_5; "
            f"add at least one train batch"
        )
    if not test_path.is_file():
        raise DataError(
            f"{directory}: CIFAR directory has no test_batch; add it next to the data_batch files"
        )
    train_parts = [_read_batch(path) for path in train_paths]
    x_test, y_test = _read_batch(test_path)
    class_names = _read_class_names(directory / _META)
    x_train = np.concatenate([images for images, _ in train_parts])
    y_train = np.concatenate([labels for _, labels in train_parts])
    logger.info(
        "read CIFAR batches from %s: %d train images in %d batches, %d test images",
        directory,
        len(y_train),
        len(train_paths),
        len(y_test),
    )
    return RawData(
        format="cifar",
        location=str(directory),
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=class_names,
    )
