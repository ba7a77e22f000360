from __future__ import annotations

import itertools

import numpy as np
import pytest

from nas.strategies.pareto import (
    constrained_ranks,
    crowding_distance,
    dominates,
    hypervolume,
    non_dominated_sort,
    pareto_mask,
)


def brute_ranks(values: np.ndarray) -> np.ndarray:
    """Peel fronts with an all-pairs dominance test."""
    ranks = np.full(len(values), -1)
    remaining = set(range(len(values)))
    rank = 0
    while remaining:
        front = {
            i
            for i in remaining
            if not any(dominates(values[j], values[i]) for j in remaining if j != i)
        }
        for i in front:
            ranks[i] = rank
        remaining -= front
        rank += 1
    return ranks


def brute_hypervolume(values: np.ndarray, reference: np.ndarray) -> float:
    """Inclusion-exclusion over the boxes [point, reference]."""
    points = [p for p in values if (p < reference).all()]
    total = 0.0
    for size in range(1, len(points) + 1):
        for subset in itertools.combinations(points, size):
            corner = np.max(subset, axis=0)
            total += (-1) ** (size + 1) * float(np.prod(reference - corner))
    return total


def grid_hypervolume(values: np.ndarray, reference: np.ndarray) -> float:
    """For integer points: count the unit cells dominated by some point."""
    axes = [np.arange(0, int(r)) for r in reference]
    cells = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(reference))
    covered = np.all(values[None, :, :] <= cells[:, None, :], axis=2).any(axis=1)
    return float(covered.sum())


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_ranks_and_mask_match_brute_force(m: int) -> None:
    rng = np.random.default_rng(m)
    for _ in range(40):
        n = int(rng.integers(0, 30))
        # Few distinct values: many ties and duplicate points.
        values = rng.integers(0, 4, size=(n, m)).astype(float)
        expected = brute_ranks(values)
        np.testing.assert_array_equal(non_dominated_sort(values), expected)
        np.testing.assert_array_equal(pareto_mask(values), expected == 0)


def test_continuous_two_objectives_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    values = rng.random((150, 2))
    np.testing.assert_array_equal(non_dominated_sort(values), brute_ranks(values))


def test_large_three_objective_sort_uses_peeling_consistently() -> None:
    rng = np.random.default_rng(1)
    values = rng.integers(0, 6, size=(2100, 3)).astype(float)  # > the matrix limit
    ranks = non_dominated_sort(values)
    small = non_dominated_sort(values[:300])
    np.testing.assert_array_equal(small, brute_ranks(values[:300]))
    # Every point of rank r > 0 is dominated by some point of rank r - 1, none by its own rank.
    for rank in range(1, int(ranks.max()) + 1):
        here = values[ranks == rank][:20]
        above = values[ranks == rank - 1]
        assert dominates(above[None, :, :], here[:, None, :]).any(axis=1).all()
        same = values[ranks == rank]
        assert not dominates(same[None, :, :], here[:, None, :]).any()


def test_duplicates_are_all_kept_and_share_a_rank() -> None:
    values = np.array([[1.0, 2.0], [1.0, 2.0], [2.0, 1.0], [2.0, 2.0], [-0.0, 3.0], [0.0, 3.0]])
    np.testing.assert_array_equal(pareto_mask(values), [True, True, True, False, True, True])
    np.testing.assert_array_equal(non_dominated_sort(values), [0, 0, 0, 1, 0, 0])


def test_empty_and_invalid_inputs() -> None:
    assert pareto_mask(np.zeros((0, 2))).shape == (0,)
    assert non_dominated_sort(np.zeros((0, 3))).shape == (0,)
    assert hypervolume(np.zeros((0, 2)), [1.0, 1.0]) == 0.0
    with pytest.raises(ValueError, match="shape"):
        pareto_mask(np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        non_dominated_sort(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="reference"):
        hypervolume(np.zeros((1, 2)), [1.0])


def test_crowding_distance_matches_definition() -> None:
    rng = np.random.default_rng(2)
    values = rng.random((12, 3))
    expected = np.zeros(12)
    for k in range(3):
        order = np.argsort(values[:, k], kind="stable")
        column = values[order, k]
        span = column[-1] - column[0]
        for position, i in enumerate(order):
            if position in (0, 11):
                expected[i] = np.inf
            elif np.isfinite(expected[i]):
                expected[i] += (column[position + 1] - column[position - 1]) / span
    np.testing.assert_allclose(crowding_distance(values), expected)


def test_crowding_distance_by_group_equals_separate_calls() -> None:
    rng = np.random.default_rng(3)
    values = rng.random((30, 2))
    groups = rng.integers(0, 4, size=30)
    together = crowding_distance(values, groups)
    for g in range(4):
        np.testing.assert_allclose(together[groups == g], crowding_distance(values[groups == g]))
    # Constant objective: no interior contribution, boundaries still infinite.
    flat = crowding_distance(np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]]))
    np.testing.assert_array_equal(flat, [np.inf, 1.0, np.inf])


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_hypervolume_matches_inclusion_exclusion(m: int) -> None:
    rng = np.random.default_rng(10 + m)
    reference = np.full(m, 1.0)
    for _ in range(15):
        values = rng.random((int(rng.integers(1, 8)), m)) * 1.2  # some outside the reference
        assert hypervolume(values, reference) == pytest.approx(
            brute_hypervolume(values, reference), abs=1e-12
        )


@pytest.mark.parametrize("m", [2, 3])
def test_hypervolume_matches_grid_count_with_ties(m: int) -> None:
    rng = np.random.default_rng(20 + m)
    reference = np.full(m, 6.0)
    for _ in range(10):
        values = rng.integers(0, 7, size=(25, m)).astype(float)
        assert hypervolume(values, reference) == grid_hypervolume(values, reference)


def test_constrained_ranks_follow_debs_rule() -> None:
    values = np.array([[0.0, 0.0], [5.0, 5.0], [1.0, 1.0], [9.0, 9.0], [0.0, 0.0], [3.0, 3.0]])
    violations = np.array([2.0, 0.0, 0.5, 0.0, 2.0, 0.0])
    ranks = constrained_ranks(values, violations)
    feasible = violations == 0
    assert ranks[feasible].max() < ranks[~feasible].min()
    np.testing.assert_array_equal(ranks[feasible], non_dominated_sort(values[feasible]))
    # Infeasible: by violation only; equal violations share a rank.
    assert ranks[2] < ranks[0] == ranks[4]
    np.testing.assert_array_equal(constrained_ranks(values), non_dominated_sort(values))
    all_infeasible = constrained_ranks(values[:2], np.array([1.0, 0.5]))
    np.testing.assert_array_equal(all_infeasible, [1, 0])
    with pytest.raises(ValueError, match=">= 0"):
        constrained_ranks(values, -violations)
