"""Pareto utilities (:mod:`nas.strategies.pareto`) against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nas.strategies.pareto import dominates, hypervolume, non_dominated_sort, pareto_mask


@st.composite
def objectives(draw: st.DrawFn, m: int | None = None, high: int = 8) -> np.ndarray:
    """``(n, m)`` values on a small integer grid, so ties and duplicates are common."""
    count = draw(st.integers(0, 30))
    width = m if m is not None else draw(st.integers(1, 4))
    return draw(hnp.arrays(np.float64, (count, width), elements=st.integers(0, high).map(float)))


def _brute_mask(values: np.ndarray) -> np.ndarray:
    n = len(values)
    return np.array(
        [not any(dominates(values[j], values[i]) for j in range(n) if j != i) for i in range(n)],
        dtype=bool,
    )


def _brute_ranks(values: np.ndarray) -> np.ndarray:
    ranks = np.full(len(values), -1)
    remaining = list(range(len(values)))
    rank = 0
    while remaining:
        front = [
            i for i in remaining if not any(dominates(values[j], values[i]) for j in remaining)
        ]
        ranks[front] = rank
        remaining = [i for i in remaining if i not in front]
        rank += 1
    return ranks


def _brute_hypervolume(values: np.ndarray, reference: np.ndarray) -> float:
    """Unit cells of the integer grid below ``reference`` dominated by some point (a cell is
    dominated when its lower corner is weakly dominated): exact for integer points."""
    cells = itertools.product(*(range(int(r)) for r in reference))
    return float(sum(1 for cell in cells if any((p <= np.array(cell)).all() for p in values)))


@settings(max_examples=300, deadline=None)
@given(objectives())
def test_front_keeps_exactly_the_non_dominated_points(values: np.ndarray) -> None:
    mask = pareto_mask(values)
    assert np.array_equal(mask, _brute_mask(values))
    kept = values[mask]
    for point in kept:  # no dominated point kept
        assert not dominates(values, point).any()
    for index in np.flatnonzero(~mask):  # every dropped point is dominated by a kept one
        assert dominates(kept, values[index]).any()


@settings(max_examples=200, deadline=None)
@given(objectives())
def test_non_dominated_sort_peels_fronts(values: np.ndarray) -> None:
    assert np.array_equal(non_dominated_sort(values), _brute_ranks(values))


@settings(max_examples=200, deadline=None)
@given(objectives(m=2, high=10), st.tuples(st.integers(0, 12), st.integers(0, 12)))
def test_hypervolume_2d_matches_the_grid(values: np.ndarray, reference: tuple[int, int]) -> None:
    ref = np.array(reference, dtype=float)
    assert hypervolume(values, ref) == pytest.approx(_brute_hypervolume(values, ref))


@settings(max_examples=100, deadline=None)
@given(objectives(m=3, high=5), st.tuples(*[st.integers(0, 7)] * 3))
def test_hypervolume_3d_matches_the_grid(
    values: np.ndarray, reference: tuple[int, int, int]
) -> None:
    ref = np.array(reference, dtype=float)
    assert hypervolume(values, ref) == pytest.approx(_brute_hypervolume(values, ref))


@settings(max_examples=150, deadline=None)
@given(objectives(m=2, high=10), st.integers(0, 12))
def test_hypervolume_is_that_of_the_front_and_grows_with_points(
    values: np.ndarray, corner: int
) -> None:
    ref = np.array([11.0, 11.0])
    volume = hypervolume(values, ref)
    assert volume == pytest.approx(hypervolume(values[pareto_mask(values)], ref))
    more = np.vstack([values, [[float(corner), float(11 - corner)]]])
    assert hypervolume(more, ref) >= volume - 1e-9
