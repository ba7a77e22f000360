"""The lookup-table latency predictor equals the sum of its own operators."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import search_spaces as ss
from nas.predictors import LatencyRecord, LatencyTable
from nas.predictors.operators import OVERHEAD_KEY, arch_operators
from nas.predictors.records import space_digest
from search_spaces import Arch, Space
from tests.properties.strategies import spaces

SETTINGS: dict[str, Any] = {"runtime": "onnxruntime", "threads": 1, "batch_size": 1}


def _table(
    space: Space, archs: list[Arch], rng: np.random.Generator, overhead: float, **options: Any
) -> LatencyTable:
    keys = {op.key: op.kind for arch in archs for op in arch_operators(space, arch)}
    records = [
        LatencyRecord(
            kind=kind,
            key=key,
            space=space.name,
            space_digest=space_digest(space),
            median_ms=overhead + float(rng.uniform(0.001, 2.0)),
            iqr_ms=0.0,
            min_ms=0.0,
            settings=SETTINGS,
        )
        for key, kind in keys.items()
    ]
    records.append(
        LatencyRecord(
            kind="overhead",
            key=OVERHEAD_KEY,
            space=space.name,
            space_digest=space_digest(space),
            median_ms=overhead,
            iqr_ms=0.0,
            min_ms=0.0,
            settings=SETTINGS,
        )
    )
    return LatencyTable(space, records, **options)


def _by_hand(table: LatencyTable, space: Space, arch: Arch) -> float:
    operators = arch_operators(space, arch)
    return table.overhead_ms + sum(table.entries[op.key] - table.overhead_ms for op in operators)


@settings(max_examples=40, deadline=None)
@given(spaces(max_stages=3), st.integers(0, 2**32 - 1), st.floats(0.0, 0.5))
def test_table_sums_its_operators(space: Space, seed: int, overhead: float) -> None:
    rng = np.random.default_rng(seed)
    archs = [space.smallest(), space.largest(), *(space.sample(rng) for _ in range(6))]
    table = _table(space, archs, rng, overhead)
    expected = np.array([_by_hand(table, space, arch) for arch in archs])
    assert table.raw(archs) == pytest.approx(expected, rel=1e-12)
    assert table.predict(archs) == pytest.approx(expected, rel=1e-12)  # not calibrated yet
    genomes = np.stack([ss.to_genome(space, arch) for arch in archs])
    assert table.predict_genomes(genomes) == pytest.approx(expected, rel=1e-12)


@settings(max_examples=30, deadline=None)
@given(spaces(max_stages=3), st.integers(0, 2**32 - 1))
def test_calibration_is_a_line_through_the_sums(space: Space, seed: int) -> None:
    rng = np.random.default_rng(seed)
    archs = [space.smallest(), space.largest(), *(space.sample(rng) for _ in range(6))]
    table = _table(space, archs, rng, 0.05)
    raw = table.raw(archs)
    measured = 0.3 + 1.7 * raw  # an exact line: calibration must recover it
    table.fit(archs, measured)
    assert table.predict(archs) == pytest.approx(measured, rel=1e-6)
    uncalibrated = _table(space, archs, np.random.default_rng(seed), 0.05, calibrate=False)
    uncalibrated.fit(archs, measured)
    assert uncalibrated.predict(archs) == pytest.approx(uncalibrated.raw(archs), rel=1e-12)
