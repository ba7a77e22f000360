"""Fashion-MNIST by name: the four idx files where Debian's ``dataset-fashion-mnist`` package
puts them, or in the directory that ``NAS_FASHION_MNIST`` names.

Fashion-MNIST (70,000 28x28 grayscale images of clothing, 10 classes, 10,000 of them a fixed
test set) is the default data set: unlike the bundled digits, its subnetworks differ in
accuracy by more than the test set's resolution, so a search has something to choose.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from nas.data.idx import find_idx_files, read_idx
from nas.data.raw import RawData
from nas.errors import DataError

__all__ = [
    "CLASS_NAMES",
    "DEBIAN_DIRECTORY",
    "ENVIRONMENT_VARIABLE",
    "find_fashion_mnist",
    "read_fashion_mnist",
]

ENVIRONMENT_VARIABLE = "NAS_FASHION_MNIST"
DEBIAN_DIRECTORY = Path("/usr/share/datasets/fashion-mnist")

CLASS_NAMES = (
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)


def find_fashion_mnist() -> Path:
    """The directory holding Fashion-MNIST's idx files: ``$NAS_FASHION_MNIST`` when set, else
    Debian's location; a :class:`DataError` that says how to supply them when neither has any."""
    configured = os.environ.get(ENVIRONMENT_VARIABLE)
    if configured:
        directory = Path(configured).expanduser()
        if not directory.is_dir():
            raise DataError(
                f"{ENVIRONMENT_VARIABLE}={configured}: no such directory; point it at a "
                f"directory holding the four Fashion-MNIST idx files, or unset it"
            )
        return directory
    if DEBIAN_DIRECTORY.is_dir() and any(find_idx_files(DEBIAN_DIRECTORY).values()):
        return DEBIAN_DIRECTORY
    raise DataError(
        "Fashion-MNIST not found: install it with `apt-get install dataset-fashion-mnist` "
        f"(files in {DEBIAN_DIRECTORY}), or set {ENVIRONMENT_VARIABLE} to a directory holding "
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
        "t10k-labels-idx1-ubyte (.gz or not)"
    )


def read_fashion_mnist() -> RawData:
    """Read Fashion-MNIST from :func:`find_fashion_mnist`'s directory."""
    raw = read_idx(find_fashion_mnist())
    return dataclasses.replace(raw, format="fashion-mnist", class_names=CLASS_NAMES)
