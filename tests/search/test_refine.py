"""Verification refined where the target starts to bind, by halving along the front."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import nas.search.verify as verify_module
import search_spaces as ss
from nas.measure import MeasureConfig
from nas.search.loop import SearchResult
from nas.search.verify import Verified, refine, verify

SPACE = ss.get_space("tiny")


def _front(count: int) -> SearchResult:
    """``count`` distinct subnets as a front ranked by predicted accuracy, latency falling."""
    rng = np.random.default_rng(0)
    genomes: dict[bytes, np.ndarray] = {}
    while len(genomes) < count:
        genome = ss.to_genome(SPACE, SPACE.sample(rng))
        genomes.setdefault(genome.tobytes(), genome)
    return SearchResult(
        genomes=np.stack(list(genomes.values())),
        metrics={
            "accuracy": np.linspace(0.9, 0.8, count),
            "latency": np.linspace(2.0, 1.0, count),
        },
        feasible=np.ones(count, dtype=bool),
        front=np.arange(count),
        hypervolume=0.0,
        reference=[0.0, 0.0],
        objectives=("accuracy", "latency"),
    )


def _verified(result: SearchResult, index: int, limit: int) -> Verified:
    return Verified(
        index=index,
        arch=ss.decode_genome(SPACE, result.genomes[index]).to_dict(),
        predicted={},
        measured_latency_ms=float(index),
        latency_iqr_ms=0.0,
        val_accuracy=0.5,
        meets_targets=index >= limit,
    )


def test_refine_halves_the_gap_to_the_first_passing_subnet() -> None:
    result = _front(12)
    verified = [_verified(result, 0, limit=7), _verified(result, 11, limit=7)]
    asked = []
    while (index := refine(result, SPACE, verified)) is not None:
        asked.append(index)
        verified.append(_verified(result, index, limit=7))  # the first 7 miss the target
    assert asked == [5, 8, 6, 7]


@pytest.mark.parametrize("budget", [6, 2])
def test_verify_spreads_then_refines_within_its_budget(
    monkeypatch: pytest.MonkeyPatch, budget: int
) -> None:
    result = _front(12)
    measured: list[int] = []

    def fake_measure(*args: Any, index: int, **kwargs: Any) -> Verified:
        measured.append(index)
        return _verified(result, index, limit=7)

    monkeypatch.setattr(verify_module, "measure_cached", fake_measure)
    known = [_verified(result, 0, limit=7), _verified(result, 11, limit=7)]  # earlier rounds
    found = verify(
        SPACE,
        None,
        None,
        result,
        (),
        MeasureConfig(),
        top=1,
        refine_budget=budget,
        known=known,  # type: ignore[arg-type]
    )
    assert measured == [1, 6, 8, 7][: 1 + budget]  # 0 and 11 are not measured again
    assert [v.index for v in found] == measured


def test_refine_asks_nothing_without_a_failing_subnet_above_a_passing_one() -> None:
    result = _front(6)
    everything_passes = [_verified(result, i, limit=0) for i in (0, 3, 5)]
    nothing_passes = [_verified(result, i, limit=9) for i in (0, 3, 5)]
    neighbours = [_verified(result, i, limit=3) for i in (2, 3)]
    for verified in (everything_passes, nothing_passes, neighbours, []):
        assert refine(result, SPACE, verified) is None


def _candidate(val: float, arch: ss.Arch, latency: float, meets: bool = True) -> Verified:
    return Verified(
        index=0,
        arch=arch.to_dict(),
        predicted={},
        measured_latency_ms=latency,
        latency_iqr_ms=0.0,
        val_accuracy=val,
        meets_targets=meets,
    )


def test_choose_breaks_ties_within_the_split_noise_by_multiply_adds() -> None:
    small_arch, large_arch = SPACE.smallest(), SPACE.largest()
    small = _candidate(val=0.8986, arch=small_arch, latency=0.045)
    large = _candidate(val=0.8973, arch=large_arch, latency=0.079)  # 0.13 points lower: a tie
    worse = _candidate(val=0.8930, arch=large_arch, latency=0.070)  # 0.56 points: no tie
    failing = _candidate(val=0.95, arch=large_arch, latency=0.2, meets=False)
    assert verify_module.choose(SPACE, [small, large, worse, failing], 6000) is large
    # on a split 100 times larger the same gap is no tie
    assert verify_module.choose(SPACE, [small, large, worse, failing], 600_000) is small
    assert verify_module.choose(SPACE, [failing], 6000) is None
    faster = _candidate(val=0.8986, arch=small_arch, latency=0.030)
    assert verify_module.choose(SPACE, [small, faster], 6000) is faster  # then the faster
