"""Learned predictors: scikit-learn regressors on architecture features.

Features are the genome encoding plus cheap derived costs (log FLOPs, log parameters, per-stage
FLOPs, block counts; see :func:`nas.predictors.feature_matrix`), all vectorised, so
:meth:`LearnedPredictor.predict_genomes` scores tens of thousands of genomes at once. The model
(ridge, gradient boosting or an MLP) and the target transform (log or none) are chosen by seeded
K-fold cross-validation, then refit on all data. For latency the score is the root mean square
of the log ratio predicted/measured (a relative error); otherwise plain RMSE.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Self

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import ThreadpoolController

from nas.errors import UserError
from nas.predictors.base import TARGETS, as_targets, training_data, training_from_dict
from nas.predictors.features import arch_genomes, feature_matrix
from search_spaces import Arch, Space

__all__ = ["MODELS", "TRANSFORMS", "AccuracyPredictor", "LearnedConfig", "LearnedPredictor"]

logger = logging.getLogger(__name__)
MODELS = ("ridge", "gbdt", "mlp")
TRANSFORMS = ("log", "identity")


_CONTROLLER: ThreadpoolController | None = None
_THREADED_ROWS = 1024  # predictions on fewer rows skip the one-thread limit


def _one_thread() -> Any:
    """Limit BLAS/OpenMP pools to one thread (two threads on busy cores made fitting 30x
    slower); the controller scans the loaded libraries once, not at every call."""
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1)


def _model(name: str, seed: int) -> RegressorMixin:
    if name == "ridge":
        return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    if name == "gbdt":
        return GradientBoostingRegressor(
            n_estimators=300, learning_rate=0.05, max_depth=3, subsample=0.8, random_state=seed
        )
    if name == "mlp":
        return make_pipeline(
            StandardScaler(),
            MLPRegressor(
                hidden_layer_sizes=(32, 32),
                solver="lbfgs",
                alpha=0.1,
                max_iter=300,
                random_state=seed,
            ),
        )
    raise UserError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")


@dataclass(frozen=True, kw_only=True)
class LearnedConfig:
    """Candidate models and target transforms, cross-validation folds and the seed."""

    models: tuple[str, ...] = MODELS
    # None: by target, ("log", "identity") for latency and ("identity",) for accuracy.
    transforms: tuple[str, ...] | None = None
    folds: int = 5
    seed: int = 0
    # Score by relative (log-ratio) error; None: for latency yes, for accuracy no (RMSE).
    relative: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))
        if self.transforms is not None:
            object.__setattr__(self, "transforms", tuple(self.transforms))
        for name, allowed in (("models", MODELS), ("transforms", TRANSFORMS)):
            chosen = getattr(self, name)
            if chosen is None and name == "transforms":
                continue
            if not chosen or any(item not in allowed for item in chosen):
                raise UserError(f"{name} must be a non-empty subset of {list(allowed)}")
        if isinstance(self.folds, bool) or not isinstance(self.folds, int) or self.folds < 2:
            raise UserError(f"folds must be an integer >= 2, got {self.folds!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise UserError(f"seed must be an integer, got {self.seed!r}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["models"] = list(self.models)
        data["transforms"] = None if self.transforms is None else list(self.transforms)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LearnedConfig:
        return cls(**dict(data))


class _Fitted:
    """One model on standardised transformed targets."""

    def __init__(self, model: str, transform: str, seed: int) -> None:
        self.model = _model(model, seed)
        self.transform = transform
        self.mean = 0.0
        self.std = 1.0

    def fit(self, features: np.ndarray, y: np.ndarray) -> _Fitted:
        z = np.log(y) if self.transform == "log" else y
        self.mean = float(z.mean())
        self.std = float(z.std()) or 1.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model.fit(features, (z - self.mean) / self.std)
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        z = np.asarray(self.model.predict(features), dtype=np.float64) * self.std + self.mean
        return np.exp(z) if self.transform == "log" else z


def _score(predicted: np.ndarray, y: np.ndarray, relative: bool) -> float:
    if relative:
        ratio = np.maximum(predicted, 1e-12 * np.abs(y).max()) / y
        return float(np.sqrt(np.mean(np.log(ratio) ** 2)))
    return float(np.sqrt(np.mean((predicted - y) ** 2)))


class LearnedPredictor:
    """Regressor on architecture features, chosen by cross-validation (latency by default)."""

    kind: ClassVar[str] = "learned"

    def __init__(
        self, space: Space, config: LearnedConfig | None = None, *, target: str = "latency"
    ) -> None:
        if target not in TARGETS:
            raise UserError(f"target must be one of {list(TARGETS)}, got {target!r}")
        self.space = space
        self.config = config or LearnedConfig()
        self.target = target
        self.model_name: str | None = None
        self.transform: str | None = None
        self.cv_scores: dict[str, float] = {}
        self._fitted: _Fitted | None = None
        self._archs: list[Arch] = []
        self._y: np.ndarray | None = None

    @property
    def transforms(self) -> tuple[str, ...]:
        """The candidate target transforms (the config's, or the target's default)."""
        if self.config.transforms is not None:
            return self.config.transforms
        return TRANSFORMS if self.target == "latency" else ("identity",)

    @property
    def relative(self) -> bool:
        """Whether cross-validation scores relative (log-ratio) errors."""
        if self.config.relative is not None:
            return self.config.relative
        return self.target == "latency"

    def _candidates(self, y: np.ndarray) -> list[tuple[str, str]]:
        transforms = [t for t in self.transforms if t != "log" or (y > 0).all()]
        if not transforms:
            transforms = ["identity"]
        return [(model, transform) for model in self.config.models for transform in transforms]

    def _cross_validate(self, features: np.ndarray, y: np.ndarray) -> dict[str, float]:
        folds = KFold(
            n_splits=min(self.config.folds, len(y)), shuffle=True, random_state=self.config.seed
        )
        relative = self.relative and bool((y > 0).all())
        scores = {}
        for model, transform in self._candidates(y):
            predicted = np.empty_like(y)
            for train, test in folds.split(features):
                fitted = _Fitted(model, transform, self.config.seed).fit(features[train], y[train])
                predicted[test] = fitted.predict(features[test])
            scores[f"{model}/{transform}"] = _score(predicted, y, relative)
        return scores

    def fit(self, archs: Sequence[Arch], y: Sequence[float] | np.ndarray) -> Self:
        return self._fit(archs, y)

    def _fit(
        self,
        archs: Sequence[Arch],
        y: Sequence[float] | np.ndarray,
        selected: tuple[str, str] | None = None,
        cv_scores: Mapping[str, float] | None = None,
    ) -> Self:
        # One BLAS thread: these matrices are small, and threads fighting over busy cores
        # make fitting many times slower; it also keeps results independent of the machine.
        with _one_thread():
            return self._fit_single_threaded(archs, y, selected, cv_scores)

    def _fit_single_threaded(
        self,
        archs: Sequence[Arch],
        y: Sequence[float] | np.ndarray,
        selected: tuple[str, str] | None,
        cv_scores: Mapping[str, float] | None,
    ) -> Self:
        values = as_targets(archs, y)
        features = feature_matrix(self.space, arch_genomes(self.space, archs))
        candidates = self._candidates(values)
        if selected is not None:
            self.cv_scores = dict(cv_scores or {})
        elif len(candidates) == 1 or len(values) < 4:
            selected, self.cv_scores = candidates[0], {}
        else:
            self.cv_scores = self._cross_validate(features, values)
            best = min(self.cv_scores, key=lambda name: self.cv_scores[name])
            model, transform = best.split("/")
            selected = (model, transform)
            logger.info("cross-validation picked %s (%s)", best, self.cv_scores)
        self.model_name, self.transform = selected
        self._fitted = _Fitted(*selected, self.config.seed).fit(features, values)
        self._archs, self._y = list(archs), values
        return self

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray:
        return self.predict_features(feature_matrix(self.space, genomes))

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        """Predictions from a precomputed :func:`~nas.predictors.feature_matrix`."""
        if self._fitted is None:
            raise UserError(f"the {self.kind} predictor is not fitted; call fit(archs, y) first")
        if len(features) < _THREADED_ROWS:
            # Too small for BLAS to start threads; limiting them would cost more than predicting.
            return self._fitted.predict(features)
        with _one_thread():
            return self._fitted.predict(features)

    def predict(self, archs: Sequence[Arch]) -> np.ndarray:
        return self.predict_genomes(arch_genomes(self.space, archs))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "hyper": {
                "target": self.target,
                "config": self.config.to_dict(),
                "model": self.model_name,
                "transform": self.transform,
                "cv_scores": dict(self.cv_scores),
            },
            "train": training_data(self._archs, self._y),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], space: Space) -> Self:
        hyper = data["hyper"]
        predictor = cls(space, LearnedConfig.from_dict(hyper["config"]), target=hyper["target"])
        archs, y = training_from_dict(data["train"])
        if y is None:
            return predictor
        selected = (str(hyper["model"]), str(hyper["transform"]))
        if selected[1] not in TRANSFORMS:
            raise UserError(f"unknown transform {selected[1]!r}; expected one of {TRANSFORMS}")
        return predictor._fit(archs, y, selected, hyper.get("cv_scores"))


class AccuracyPredictor(LearnedPredictor):
    """The learned machinery fit on (arch, accuracy) pairs: by default no log transform, and
    cross-validation scores RMSE."""

    kind: ClassVar[str] = "accuracy"

    def __init__(
        self, space: Space, config: LearnedConfig | None = None, *, target: str = "accuracy"
    ) -> None:
        super().__init__(space, config, target=target)
