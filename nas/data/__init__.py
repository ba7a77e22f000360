"""Image classification data: built-in digits, CIFAR-10 batches, MNIST idx, image folders, npz.

Use :func:`load_dataset` to get a :class:`Dataset` (normalised train/val/test numpy arrays) and
:func:`batches` to iterate over mini-batches.
"""

from __future__ import annotations

from nas.data import fashion_mnist
from nas.data.batching import batches, epoch_images
from nas.data.dataset import (
    MAX_RESOLUTION,
    MIN_RESOLUTION,
    Dataset,
    check_resolution,
    resize_images,
)
from nas.data.loading import ACCEPTED_FORMATS, DATASET_NAMES, LoadOptions, load_dataset
from nas.data.safe_pickle import SafeUnpickler, load_pickle

__all__ = [
    "ACCEPTED_FORMATS",
    "DATASET_NAMES",
    "MAX_RESOLUTION",
    "MIN_RESOLUTION",
    "Dataset",
    "LoadOptions",
    "SafeUnpickler",
    "batches",
    "check_resolution",
    "epoch_images",
    "fashion_mnist",
    "load_dataset",
    "load_pickle",
    "resize_images",
]
