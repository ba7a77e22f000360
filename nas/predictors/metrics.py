"""How good a predictor is: share within a tolerance, rank agreement, RMSE."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import kendalltau

__all__ = ["kendall_tau", "rmse", "summarize", "within_tolerance"]

ArrayLike = Sequence[float] | np.ndarray


def _pair(predicted: ArrayLike, true: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(predicted, dtype=np.float64)
    t = np.asarray(true, dtype=np.float64)
    if p.shape != t.shape or p.ndim != 1 or len(p) == 0:
        raise ValueError(f"need two equal-length 1-D arrays, got {p.shape} and {t.shape}")
    return p, t


def within_tolerance(predicted: ArrayLike, true: ArrayLike, tolerance: float = 0.10) -> float:
    """Share of predictions within ``tolerance`` (relative) of the true value."""
    p, t = _pair(predicted, true)
    return float(np.mean(np.abs(p - t) <= tolerance * np.abs(t)))


def kendall_tau(predicted: ArrayLike, true: ArrayLike) -> float:
    """Kendall rank correlation (tau-b); 1 means the same order."""
    p, t = _pair(predicted, true)
    if len(p) < 2:
        return float("nan")
    return float(kendalltau(p, t).statistic)


def rmse(predicted: ArrayLike, true: ArrayLike) -> float:
    """Root mean squared error, in the unit of the values."""
    p, t = _pair(predicted, true)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def summarize(predicted: ArrayLike, true: ArrayLike, tolerance: float = 0.10) -> dict[str, float]:
    """All three (with the tolerance used), plus the mean absolute relative error."""
    p, t = _pair(predicted, true)
    return {
        "tolerance": tolerance,
        "within_tolerance": within_tolerance(p, t, tolerance),
        "kendall_tau": kendall_tau(p, t),
        "rmse": rmse(p, t),
        "mean_abs_rel_error": float(np.mean(np.abs(p - t) / np.abs(t))),
    }
