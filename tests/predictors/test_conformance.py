"""Every predictor kind passes the shipped suite :class:`nas.testing.pytest_suites.PredictorSuite`
(fit/predict shapes, ``predict_genomes == predict``, JSON and file round trips)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import search_spaces as ss
from nas.measure.profiling import sample_for_coverage
from nas.predictors import (
    PREDICTOR_KINDS,
    AccuracyPredictor,
    FlopsPredictor,
    LatencyTable,
    LearnedConfig,
    LearnedPredictor,
    ParamsPredictor,
)
from nas.testing.predictors import PredictorCase
from nas.testing.pytest_suites import PredictorSuite

from .conftest import Measured

CONFIG = LearnedConfig(models=("ridge", "gbdt"), folds=3, seed=3)


def _synthetic(space: ss.Space) -> tuple[list[ss.Arch], np.ndarray, list[ss.Arch]]:
    archs = sample_for_coverage(space, np.random.default_rng(0), 24)
    y = np.array([0.03 + space.flops(a) / 1e6 for a in archs])
    probe = sample_for_coverage(space, np.random.default_rng(9), 10)
    return archs, y, probe


def _case(kind: str, space: ss.Space, measured: Callable[[], Measured]) -> PredictorCase:
    archs, y, probe = _synthetic(space)
    if kind == "latency_table":
        real = measured()
        y_real = np.array([r.median_ms for r in real.arch_records])
        return PredictorCase(
            make=lambda: LatencyTable(space, real.block_records),
            archs=real.archs,
            y=y_real,
            probe=real.archs,  # the table only knows their operators
        )
    makers = {
        "flops": lambda: FlopsPredictor(space),
        "params": lambda: ParamsPredictor(space),
        "learned": lambda: LearnedPredictor(space, CONFIG),
        "accuracy": lambda: AccuracyPredictor(space, CONFIG),
    }
    targets = 0.4 + 0.1 * np.log(y) if kind == "accuracy" else y
    return PredictorCase(make=makers[kind], archs=archs, y=targets, probe=probe)


@pytest.fixture(params=sorted(PREDICTOR_KINDS))
def predictor_case(request: pytest.FixtureRequest, tiny: ss.Space) -> PredictorCase:
    return _case(request.param, tiny, lambda: request.getfixturevalue("measured"))


class TestEveryPredictorKind(PredictorSuite):
    """The whole suite, once per kind in :data:`PREDICTOR_KINDS`."""


def test_every_kind_has_a_case(tiny: ss.Space) -> None:
    for kind in PREDICTOR_KINDS:
        if kind != "latency_table":
            assert _case(kind, tiny, lambda: pytest.fail("not needed")).make().kind == kind
