"""The built-in ``digits`` data set: scikit-learn's bundled 8x8 handwritten digits.

1,797 grayscale images with values 0..16 in 10 classes; it ships with scikit-learn, so it
needs no download.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.datasets import load_digits

from nas.data.raw import RawData, labels_from

__all__ = ["DIGITS_MAX_VALUE", "read_digits"]

logger = logging.getLogger(__name__)

DIGITS_MAX_VALUE = 16.0


def read_digits() -> RawData:
    """Load the digits as one [0, 1]-scaled 1x8x8 split, to be divided by seed."""
    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float32)[:, np.newaxis, :, :]
    images /= np.float32(DIGITS_MAX_VALUE)
    labels = labels_from(bunch.target, location="digits")
    class_names = tuple(str(name) for name in bunch.target_names)
    logger.info("read digits from scikit-learn: %d images of 8x8", len(labels))
    return RawData(
        format="digits",
        location="digits",
        x_train=images,
        y_train=labels,
        class_names=class_names,
    )
