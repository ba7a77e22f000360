"""Mini-batches of numpy arrays, shuffled deterministically by seed."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["batches", "epoch_images"]


def batches(
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int,
    seed: int | None = None,
    shuffle: bool | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(x_batch, y_batch)`` pairs of at most ``batch_size`` samples.

    ``shuffle=None`` shuffles exactly when a ``seed`` is given; shuffling without a seed is
    refused, so every order is reproducible. ``drop_last`` skips a final, smaller batch.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} samples but y has {len(y)}; they must match")
    if shuffle is None:
        shuffle = seed is not None
    if shuffle and seed is None:
        raise ValueError("shuffle=True needs a seed, so the order is reproducible")
    total = len(x)
    order = np.random.default_rng(seed).permutation(total) if shuffle else None
    stop = total - total % batch_size if drop_last else total
    for start in range(0, stop, batch_size):
        if order is None:
            yield x[start : start + batch_size], y[start : start + batch_size]
        else:
            chosen = order[start : start + batch_size]
            yield x[chosen], y[chosen]


def epoch_images(
    x: np.ndarray, y: np.ndarray, count: int | None, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels of one epoch: ``count`` of them drawn without replacement by
    ``rng`` (kept in their stored order), or all of them when ``count`` is None or not smaller."""
    if count is None or count >= len(y):
        return x, y
    chosen = np.sort(rng.choice(len(y), size=count, replace=False))
    return x[chosen], y[chosen]
