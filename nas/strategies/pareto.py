"""Pareto dominance on objective arrays, with numpy only.

Every function takes objectives as an ``(n, m)`` float array of values to **minimise** (negate
accuracy before calling). Point ``a`` dominates ``b`` when it is no worse in every objective and
strictly better in at least one; identical points therefore never dominate each other, and this
module treats them alike everywhere: all copies of a non-dominated point are kept by
:func:`pareto_mask`, all copies share one rank in :func:`non_dominated_sort`, and copies add no
extra volume in :func:`hypervolume`.

Constraints follow Deb's rule in :func:`constrained_ranks`: every feasible point (total
violation 0) ranks before every infeasible one, and infeasible points are ordered by violation.
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np

__all__ = [
    "constrained_ranks",
    "crowding_distance",
    "dominates",
    "hypervolume",
    "non_dominated_sort",
    "pareto_mask",
]

# Elements of the (chunk, n, m) comparison blocks the matrix methods build at a time.
_BLOCK_ELEMENTS = 1 << 22
# Up to this many points, m >= 3 sorting builds the full dominance matrix (n * n bytes).
_MATRIX_LIMIT = 2048


def _as_values(values: np.ndarray | list[list[float]]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] < 1:
        raise ValueError(f"objective values must have shape (n, m) with m >= 1, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("objective values must be finite (found NaN or infinity)")
    return array + 0.0  # turns -0.0 into 0.0 so that equal points compare equal bytewise too


def dominates(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether ``a`` dominates ``b`` (minimisation), broadcast over the last axis."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.asarray((a <= b).all(axis=-1) & (a < b).any(axis=-1))


def _lex_groups(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lexicographic order of the rows and, in that order, the index of each row's group of
    identical rows (groups numbered 0, 1, ... in lexicographic order)."""
    order = np.lexsort(values.T[::-1])
    ordered = values[order]
    new = np.ones(len(order), dtype=bool)
    if len(order) > 1:
        new[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    return order, np.cumsum(new) - 1


def _unique_rows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows in lexicographic order and, per input row, the index of its distinct row."""
    order, group = _lex_groups(values)
    first = np.ones(len(order), dtype=bool)
    first[1:] = group[1:] != group[:-1]
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = group
    return values[order[first]], inverse


def _mask_two(unique: np.ndarray) -> np.ndarray:
    # Distinct rows sorted lexicographically: an earlier row has f1 <= and differs, so it
    # dominates a later one exactly when its f2 is <=. Non-dominated: f2 below all earlier f2.
    f2 = unique[:, 1]
    earlier_min = np.minimum.accumulate(np.concatenate(([np.inf], f2[:-1])))
    return np.asarray(f2 < earlier_min)


def _mask_general(unique: np.ndarray) -> np.ndarray:
    # Distinct rows sorted lexicographically: a row can only be dominated by earlier rows, so
    # each surviving row in turn removes the later rows it dominates (O(n * front size)).
    survivors = np.arange(len(unique))
    rest = unique
    position = 0
    while position < len(rest):
        point = rest[position]
        keep = ~((point <= rest).all(axis=1) & (point < rest).any(axis=1))
        keep[position] = True
        survivors = survivors[keep]
        rest = rest[keep]
        position = int(keep[:position].sum()) + 1
    mask = np.zeros(len(unique), dtype=bool)
    mask[survivors] = True
    return mask


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Boolean ``(n,)`` mask of the non-dominated points; every copy of such a point is kept."""
    array = _as_values(values)
    if len(array) == 0:
        return np.zeros(0, dtype=bool)
    if array.shape[1] == 1:
        return np.asarray(array[:, 0] == array[:, 0].min())
    unique, inverse = _unique_rows(array)
    mask = _mask_two(unique) if array.shape[1] == 2 else _mask_general(unique)
    return mask[inverse]


def _sort_two(unique: np.ndarray) -> np.ndarray:
    # Sweep over distinct rows in lexicographic order. Front k keeps the smallest f2 it holds;
    # these minima increase with k, and front k dominates a row exactly when its minimum is <=
    # the row's f2, so the row's rank is the first front whose minimum is larger (bisection).
    minima: list[float] = []
    ranks = np.empty(len(unique), dtype=np.int64)
    for i, f2 in enumerate(unique[:, 1].tolist()):
        rank = bisect_right(minima, f2)
        if rank == len(minima):
            minima.append(f2)
        else:
            minima[rank] = f2
        ranks[i] = rank
    return ranks


def _dominance_matrix(values: np.ndarray) -> np.ndarray:
    """``matrix[i, j]``: row i dominates row j."""
    n, m = values.shape
    matrix = np.empty((n, n), dtype=bool)
    chunk = max(1, _BLOCK_ELEMENTS // max(1, n * m))
    for start in range(0, n, chunk):
        block = values[start : start + chunk, None, :]
        matrix[start : start + chunk] = (block <= values[None]).all(axis=2) & (
            block < values[None]
        ).any(axis=2)
    return matrix


def _sort_general(unique: np.ndarray) -> np.ndarray:
    ranks = np.full(len(unique), -1, dtype=np.int64)
    if len(unique) <= _MATRIX_LIMIT:
        matrix = _dominance_matrix(unique)
        counts = matrix.sum(axis=0)
        remaining = np.ones(len(unique), dtype=bool)
        rank = 0
        while remaining.any():
            front = remaining & (counts == 0)
            ranks[front] = rank
            remaining &= ~front
            counts -= matrix[front].sum(axis=0)
            rank += 1
        return ranks
    remaining_index = np.arange(len(unique))
    rank = 0
    while len(remaining_index):
        front = _mask_general(unique[remaining_index])
        ranks[remaining_index[front]] = rank
        remaining_index = remaining_index[~front]
        rank += 1
    return ranks


def non_dominated_sort(values: np.ndarray) -> np.ndarray:
    """Pareto rank of each point: 0 for the non-dominated front, 1 for the front left once it is
    removed, and so on. Identical points share a rank.

    Two objectives use an O(n log n) sweep (50,000 points in a few tens of milliseconds); one
    objective ranks distinct values; three or more peel fronts with vectorised dominance tests
    (O(n^2) work, O(n^2) bytes up to 2,048 distinct points and chunked beyond).
    """
    array = _as_values(values)
    if len(array) == 0:
        return np.zeros(0, dtype=np.int64)
    if array.shape[1] == 1:
        return np.unique(array[:, 0], return_inverse=True)[1].astype(np.int64).reshape(-1)
    unique, inverse = _unique_rows(array)
    ranks = _sort_two(unique) if array.shape[1] == 2 else _sort_general(unique)
    return ranks[inverse]


def crowding_distance(values: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """NSGA-II crowding distance of each point within its group (by default one group).

    Per objective, the points of a group are sorted; the two boundary points get infinity and
    every other point adds the gap between its neighbours divided by the group's range in that
    objective (0 where the range is 0). Pass ``groups=ranks`` to compute it front by front in
    one vectorised call.
    """
    array = _as_values(values)
    n, m = array.shape
    labels = np.zeros(n, dtype=np.int64) if groups is None else np.asarray(groups)
    if labels.shape != (n,):
        raise ValueError(f"groups must have shape ({n},), got {labels.shape}")
    distance = np.zeros(n)
    if n == 0:
        return distance
    for k in range(m):
        order = np.lexsort((array[:, k], labels))
        column = array[order, k]
        label = labels[order]
        start = np.ones(n, dtype=bool)
        start[1:] = label[1:] != label[:-1]
        end = np.ones(n, dtype=bool)
        end[:-1] = start[1:]
        group_of = np.cumsum(start) - 1
        span = (column[end] - column[start])[group_of]
        gap = np.zeros(n)
        if n > 2:
            gap[1:-1] = column[2:] - column[:-2]
        with np.errstate(divide="ignore", invalid="ignore"):
            contribution = np.where(span > 0, gap / np.where(span > 0, span, 1.0), 0.0)
        contribution[start | end] = np.inf
        distance[order] += contribution
    return distance


def constrained_ranks(values: np.ndarray, violations: np.ndarray | None = None) -> np.ndarray:
    """Ranks under Deb's constrained-domination rule.

    ``violations`` is the ``(n,)`` total constraint violation (>= 0, 0 = feasible; None means
    all feasible). Feasible points get their :func:`non_dominated_sort` ranks; infeasible
    points rank after all of them, by increasing violation (equal violations share a rank),
    whatever their objectives.
    """
    array = _as_values(values)
    if violations is None:
        return non_dominated_sort(array)
    violation = np.asarray(violations, dtype=np.float64)
    if violation.shape != (len(array),):
        raise ValueError(f"violations must have shape ({len(array)},), got {violation.shape}")
    if not np.isfinite(violation).all() or (violation < 0).any():
        raise ValueError("violations must be finite and >= 0")
    feasible = violation <= 0
    ranks = np.empty(len(array), dtype=np.int64)
    offset = 0
    if feasible.any():
        feasible_ranks = non_dominated_sort(array[feasible])
        ranks[feasible] = feasible_ranks
        offset = int(feasible_ranks.max()) + 1
    if (~feasible).any():
        order = np.unique(violation[~feasible], return_inverse=True)[1].reshape(-1)
        ranks[~feasible] = offset + order
    return ranks


def _hypervolume_two(points: np.ndarray, reference: np.ndarray) -> float:
    unique = _unique_rows(points)[0]
    front = unique[_mask_two(unique)]  # sorted by f1 ascending, so f2 descending
    widths = np.diff(np.append(front[:, 0], reference[0]))
    return float(np.sum(widths * (reference[1] - front[:, 1])))


def _hypervolume_slices(points: np.ndarray, reference: np.ndarray) -> float:
    if points.shape[1] == 2:
        return _hypervolume_two(points, reference)
    front = _unique_rows(points)[0]
    front = front[_mask_general(front)]
    front = front[np.argsort(front[:, -1], kind="stable")]
    levels = np.append(front[:, -1], reference[-1])
    total = 0.0
    for i in range(len(front)):
        thickness = levels[i + 1] - levels[i]
        if thickness > 0:
            total += thickness * _hypervolume_slices(front[: i + 1, :-1], reference[:-1])
    return total


def hypervolume(values: np.ndarray, reference: np.ndarray | list[float]) -> float:
    """Volume dominated by the points and bounded by ``reference`` (minimisation).

    Points that do not beat the reference in every objective add nothing. The result is exact
    for every m: one objective is ``reference - min``, two use a sweep (O(n log n)), and three
    or more slice along the last objective and recurse (the HSO algorithm, "hypervolume by
    slicing objectives"), whose cost grows like ``n ** (m - 1)``: meant for fronts of up to a
    few hundred points when m > 3.
    """
    array = _as_values(values)
    ref = np.asarray(reference, dtype=np.float64).reshape(-1)
    if ref.shape != (array.shape[1],):
        raise ValueError(f"reference must have {array.shape[1]} values, got shape {ref.shape}")
    if not np.isfinite(ref).all():
        raise ValueError("reference must be finite")
    inside = array[(array < ref).all(axis=1)]
    if len(inside) == 0:
        return 0.0
    if array.shape[1] == 1:
        return float(ref[0] - inside[:, 0].min())
    return _hypervolume_slices(inside, ref)
