"""Seeded, stratified train/validation/test splits and per-channel normalisation."""

from __future__ import annotations

import logging
import math

import numpy as np
import numpy.typing as npt
from sklearn.model_selection import train_test_split

from nas.data.dataset import FloatArray
from nas.errors import DataError

__all__ = [
    "STD_FLOOR",
    "channel_statistics",
    "holdout_count",
    "normalise",
    "split_off",
]

logger = logging.getLogger(__name__)

IndexArray = npt.NDArray[np.int64]

STD_FLOOR = 1e-6
# Absorbs float noise such as 0.1 * 30 == 3.0000000000000004 before rounding up.
_ROUNDING_SLACK = 1e-9


def holdout_count(total: int, fraction: float) -> int:
    """How many of ``total`` samples a split of ``fraction`` gets (rounded up, like sklearn)."""
    return math.ceil(total * fraction - _ROUNDING_SLACK)


def _can_stratify(labels: np.ndarray, holdout: int) -> bool:
    counts = np.bincount(labels)
    present = int(np.count_nonzero(counts))
    keep = len(labels) - holdout
    return bool(counts[counts > 0].min() >= 2) and holdout >= present and keep >= present


def split_off(
    labels: np.ndarray, *, holdout: int, seed: int, location: str, what: str
) -> tuple[IndexArray, IndexArray]:
    """Split ``range(len(labels))`` into ``(kept, held_out)`` with ``holdout`` held out.

    Stratified by label when every class can appear on both sides; otherwise (tiny data sets)
    a plain seeded shuffle, with a warning. Deterministic for a given ``seed``.
    """
    total = len(labels)
    if holdout < 1 or total - holdout < 1:
        raise DataError(
            f"{location}: too few samples ({total}) to split off {what} and keep at least one "
            f"for training; add data or lower val_fraction/test_fraction"
        )
    indices = np.arange(total, dtype=np.int64)
    stratify = labels if _can_stratify(labels, holdout) else None
    if stratify is None:
        logger.warning(
            "%s: too few samples per class to stratify the %s split (%d of %d); "
            "splitting at random instead",
            location,
            what,
            holdout,
            total,
        )
    kept, held_out = train_test_split(
        indices, test_size=holdout, random_state=seed, shuffle=True, stratify=stratify
    )
    return np.sort(kept), np.sort(held_out)


def channel_statistics(images: FloatArray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation (floored at :data:`STD_FLOOR`) of NCHW images."""
    means: list[float] = []
    stds: list[float] = []
    for channel in range(images.shape[1]):
        values = images[:, channel]
        mean = float(values.mean(dtype=np.float64))
        std = float(values.std(dtype=np.float64))
        means.append(mean)
        stds.append(max(std, STD_FLOOR))
    return tuple(means), tuple(stds)


def normalise(images: FloatArray, mean: tuple[float, ...], std: tuple[float, ...]) -> FloatArray:
    """``(images - mean) / std`` per channel, as a new float32 array."""
    shape = (1, len(mean), 1, 1)
    mean_array = np.asarray(mean, dtype=np.float32).reshape(shape)
    std_array = np.asarray(std, dtype=np.float32).reshape(shape)
    result = images.astype(np.float32, copy=True)
    result -= mean_array
    result /= std_array
    return result
