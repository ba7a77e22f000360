"""Exact analytical predictors: FLOPs and parameter counts, optionally as a latency proxy.

Unfitted, :class:`FlopsPredictor` returns the exact multiply-adds and :class:`ParamsPredictor`
the exact parameter count. Fitted to measured values ``y``, each becomes a one-dimensional
line ``y = intercept + slope * count`` (least squares of the relative error when every ``y`` is
positive, see :func:`nas.predictors.base.fit_line`): FLOPs-as-proxy latency prediction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np

from nas.errors import UserError
from nas.predictors.base import TARGETS, as_targets, fit_line, training_data, training_from_dict
from nas.predictors.features import arch_genomes, genome_costs
from search_spaces import Arch, Space

__all__ = ["FlopsPredictor", "ParamsPredictor"]


class _CountPredictor(ABC):
    """A linear function of one analytical count of the subnet."""

    kind: ClassVar[str] = ""

    def __init__(self, space: Space, *, target: str = "latency") -> None:
        if target not in TARGETS:
            raise UserError(f"target must be one of {list(TARGETS)}, got {target!r}")
        self.space = space
        self.target = target
        self.intercept = 0.0
        self.slope = 1.0
        self._archs: list[Arch] = []
        self._y: np.ndarray | None = None

    @abstractmethod
    def _counts(self, genomes: np.ndarray) -> np.ndarray:
        """The analytical count of each genome (FLOPs or parameters)."""

    @property
    def fitted(self) -> bool:
        return self._y is not None

    def fit(self, archs: Sequence[Arch], y: Sequence[float] | np.ndarray) -> Self:
        values = as_targets(archs, y)
        counts = self._counts(arch_genomes(self.space, archs))
        self.intercept, self.slope = fit_line(counts, values)
        self._archs, self._y = list(archs), values
        return self

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray:
        counts = self._counts(genomes)
        if not self.fitted:
            return counts
        return self.intercept + self.slope * counts

    def predict(self, archs: Sequence[Arch]) -> np.ndarray:
        return self.predict_genomes(arch_genomes(self.space, archs))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "hyper": {"target": self.target},
            "train": training_data(self._archs, self._y),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], space: Space) -> Self:
        predictor = cls(space, target=str(data["hyper"]["target"]))
        archs, y = training_from_dict(data["train"])
        return predictor.fit(archs, y) if y is not None else predictor


class FlopsPredictor(_CountPredictor):
    """Multiply-adds at batch 1; fitted, a linear map of them (FLOPs as a latency proxy)."""

    kind: ClassVar[str] = "flops"

    def _counts(self, genomes: np.ndarray) -> np.ndarray:
        return genome_costs(self.space, genomes).flops


class ParamsPredictor(_CountPredictor):
    """Parameter count; fitted, a linear map of it."""

    kind: ClassVar[str] = "params"

    def _counts(self, genomes: np.ndarray) -> np.ndarray:
        return genome_costs(self.space, genomes).params
