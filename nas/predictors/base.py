"""The predictor protocol and what its implementations share.

Every predictor follows scikit-learn's shape: ``fit(archs, y)`` returns the predictor,
``predict(archs)`` returns one float per arch, and ``predict_genomes(genomes)`` does the same for
a ``(n, genome_length)`` batch. A predictor keeps its training data, so ``to_dict`` holds
everything needed to refit it and ``from_dict(data, space)`` refits it deterministically: saved
predictors are plain JSON and are never unpickled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np

from nas.errors import UserError
from search_spaces import Arch, Space

__all__ = [
    "TARGETS",
    "Predictor",
    "as_targets",
    "as_weights",
    "fit_line",
    "training_data",
    "training_from_dict",
]

TARGETS = ("latency", "accuracy")


@runtime_checkable
class Predictor(Protocol):
    """Predicts a metric of subnets of one space from their architecture."""

    kind: ClassVar[str]  # the name files record, e.g. "learned"
    space: Space
    target: str  # what it predicts: "latency" (milliseconds) or "accuracy"

    def fit(self, archs: Sequence[Arch], y: Sequence[float] | np.ndarray) -> Self:
        """Fit to measured values ``y`` of ``archs``; returns ``self``."""
        ...

    def predict(self, archs: Sequence[Arch]) -> np.ndarray:
        """One prediction per arch, as a float array."""
        ...

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray:
        """One prediction per genome of a ``(n, genome_length)`` batch."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """Hyper-parameters and training data, JSON-ready."""
        ...

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], space: Space) -> Self:
        """Rebuild and refit from :meth:`to_dict`'s output."""
        ...


def as_targets(archs: Sequence[Arch], y: Sequence[float] | np.ndarray) -> np.ndarray:
    """``y`` as a finite float vector with one value per arch."""
    values = np.asarray(y, dtype=np.float64)
    if values.ndim != 1 or len(values) != len(archs):
        raise UserError(
            f"need one target per arch: got {len(archs)} archs and targets of shape {values.shape}"
        )
    if len(values) == 0:
        raise UserError("cannot fit a predictor on no archs")
    if not np.isfinite(values).all():
        raise UserError("targets must be finite numbers (found NaN or infinity)")
    return values


def fit_line(
    x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
) -> tuple[float, float]:
    """Intercept and slope of ``y ~ intercept + slope * x``.

    When every ``y`` is positive the squared *relative* errors are minimised (weights
    ``1 / y**2``), which is what "within 10%" rewards and keeps the largest values and timing
    outliers among them from dominating; otherwise plain least squares. ``sample_weight``
    multiplies each point's squared error. With a single distinct ``x``, the line goes through
    the origin and the (weighted) mean.
    """
    if len(y) == 1 or np.ptp(x) == 0:
        return 0.0, float(np.average(y, weights=sample_weight) / x.mean())
    weights = 1.0 / y if (y > 0).all() else np.ones_like(y)
    if sample_weight is not None:
        weights = weights * np.sqrt(sample_weight)
    design = np.column_stack([np.ones_like(x), x]) * weights[:, None]
    (intercept, slope), *_ = np.linalg.lstsq(design, y * weights, rcond=None)
    return float(intercept), float(slope)


def training_data(
    archs: Sequence[Arch], y: np.ndarray | None, weight: np.ndarray | None = None
) -> dict[str, Any]:
    """The training set as JSON-ready lists (empty when not fitted); each point's weight too
    when ``weight`` is given."""
    if y is None:
        return {"archs": [], "y": []}
    data: dict[str, Any] = {"archs": [arch.to_dict() for arch in archs], "y": [float(v) for v in y]}
    if weight is not None:
        data["weight"] = [float(v) for v in weight]
    return data


def as_weights(sample_weight: Sequence[float] | np.ndarray | None, count: int) -> np.ndarray | None:
    """``sample_weight`` as a vector of ``count`` finite non-negative floats with a positive
    sum (None stays None)."""
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.shape != (count,):
        raise UserError(f"need one sample weight per arch: got {weights.shape} for {count} archs")
    if not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise UserError("sample weights must be finite, non-negative and not all zero")
    return weights


def training_from_dict(data: Mapping[str, Any]) -> tuple[list[Arch], np.ndarray | None]:
    """The inverse of :func:`training_data`; ``y`` is None when there is no training set."""
    archs = [Arch.from_dict(item) for item in data["archs"]]
    y = np.asarray(data["y"], dtype=np.float64)
    return archs, (y if len(archs) else None)
