"""Conformance suite for search strategies (:class:`nas.strategies.Strategy`).

A strategy is given by a factory ``make(space, seed) -> Strategy``; the checks drive it with
toy objectives computed from the genes (bigger kernels and expand ratios lower the "error" and
raise the "cost"), optionally under the constraint "sum of kernel sizes <= limit":

- :func:`check_ask_tell`: ``ask`` returns valid canonical genomes, ``ask(0)`` an empty batch;
- :func:`check_tell_rejects_malformed_input`: wrong shapes, negative violations, NaN values;
- :func:`check_seeded_determinism`: the same seed asks the same genomes, another seed not;
- :func:`check_state_round_trip`: ``state_dict`` survives JSON and the restored strategy
  continues exactly as the original;
- :func:`check_state_of_another_kind_or_space_is_refused`;
- :func:`check_infeasible_points_are_never_preferred`;
- :func:`check_front_is_feasible_after_a_constrained_search`.

The checks need no pytest; :class:`nas.testing.pytest_suites.StrategySuite` runs them all as
pytest tests (see the README, "Testing your own strategy, predictor or space").
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np

from nas.strategies import Strategy, make_strategy
from nas.testing.asserts import raises
from search_spaces import (
    Space,
    canonicalize,
    decode_genome,
    encode_genomes,
    genome_layout,
    get_space,
)

__all__ = [
    "KERNEL_LIMIT",
    "StrategyFactory",
    "check_ask_tell",
    "check_front_is_feasible_after_a_constrained_search",
    "check_infeasible_points_are_never_preferred",
    "check_seeded_determinism",
    "check_state_of_another_kind_or_space_is_refused",
    "check_state_round_trip",
    "check_tell_rejects_malformed_input",
    "kernel_violation",
    "run_rounds",
    "toy_objectives",
]

# make(space, seed) -> a fresh strategy over ``space``
StrategyFactory = Callable[[Space, int], Strategy]
# A kernel-sum constraint on the "tiny" space that half of its random subnets meet.
KERNEL_LIMIT = 14.0


def _genes(space: Space, dimension: str) -> np.ndarray:
    return np.array([d == dimension for d in genome_layout(space).dimensions])


def toy_objectives(space: Space, genomes: np.ndarray, m: int) -> np.ndarray:
    """Analytical stand-ins for (error, cost), both minimised, computed from gene values.

    Bigger kernels and expand ratios lower the error but raise the cost, with different curves,
    so the two objectives conflict and the Pareto front is not trivial.
    """
    features = encode_genomes(space, genomes)
    kernel = features[:, _genes(space, "kernel_size")]
    expand = features[:, _genes(space, "expand_ratio")]
    width = features[:, _genes(space, "width_mult")].sum(axis=1)
    resolution = features[:, 0] / genome_layout(space).value_table[0].max()
    error = 1.0 / (1.0 + np.sqrt((expand * np.sqrt(kernel)).sum(axis=1)) * resolution)
    cost = (kernel**2 * expand).sum(axis=1) * resolution**2 + width
    return np.stack([error, cost], axis=1)[:, :m]


def kernel_violation(space: Space, genomes: np.ndarray, limit: float) -> np.ndarray:
    """Constraint "sum of kernel sizes <= limit": the amount by which it is exceeded."""
    kernel = encode_genomes(space, genomes)[:, _genes(space, "kernel_size")]
    return np.maximum(0.0, kernel.sum(axis=1) - limit)


def run_rounds(
    strategy: Strategy,
    rounds: int,
    batch: int,
    limit: float | None = None,
) -> list[np.ndarray]:
    """Ask, score with the toy objectives (and kernel constraint if ``limit``), tell."""
    asked = []
    for _ in range(rounds):
        genomes = strategy.ask(batch)
        asked.append(genomes)
        values = toy_objectives(strategy.space, genomes, strategy.num_objectives)
        violations = None if limit is None else kernel_violation(strategy.space, genomes, limit)
        strategy.tell(genomes, values, violations)
    return asked


def check_ask_tell(make: StrategyFactory, space: Space, *, batch: int = 4) -> None:
    """``ask`` gives ``(batch, genome_length)`` integer genomes, canonical and valid."""
    strategy = make(space, 0)
    assert isinstance(strategy, Strategy)
    length = genome_layout(space).length
    for genomes in run_rounds(strategy, rounds=3, batch=batch):
        assert genomes.shape == (batch, length)
        assert np.issubdtype(genomes.dtype, np.integer)
        np.testing.assert_array_equal(canonicalize(space, genomes), genomes)
        for genome in genomes:
            space.validate(decode_genome(space, genome))
    assert strategy.ask(0).shape == (0, length)
    assert len(strategy.front().genomes) >= 1


def check_tell_rejects_malformed_input(make: StrategyFactory, space: Space) -> None:
    """``tell`` names what is wrong: objectives, genomes, violations, non-finite values."""
    strategy = make(space, 0)
    genomes = strategy.ask(2)
    m = strategy.num_objectives
    with raises(ValueError, match="objectives"):
        strategy.tell(genomes, np.zeros((3, m)))
    with raises(ValueError, match="genomes"):
        strategy.tell(genomes[:, :-1], np.zeros((2, m)))
    with raises(ValueError, match="violations"):
        strategy.tell(genomes, np.zeros((2, m)), np.array([-1.0, 0.0]))
    with raises(ValueError, match="finite"):
        strategy.tell(genomes, np.full((2, m), np.nan))
    with raises(ValueError, match="ask"):
        strategy.ask(-1)
    strategy.tell(genomes, toy_objectives(space, genomes, m))


def check_seeded_determinism(
    make: StrategyFactory, space: Space, *, batch: int = 4, limit: float = KERNEL_LIMIT
) -> None:
    """The same seed asks the same genomes round after round; another seed asks others."""
    first = run_rounds(make(space, 7), rounds=3, batch=batch, limit=limit)
    second = run_rounds(make(space, 7), rounds=3, batch=batch, limit=limit)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    other = run_rounds(make(space, 8), rounds=1, batch=batch)
    assert not np.array_equal(other[0], first[0])


def check_state_round_trip(
    make: StrategyFactory, space: Space, *, batch: int = 4, limit: float = KERNEL_LIMIT
) -> None:
    """``state_dict`` survives JSON; a strategy loaded from it (built with another seed) has
    the same state and front, and asks what the original asks next."""
    original = make(space, 3)
    run_rounds(original, rounds=3, batch=batch, limit=limit)
    state = json.loads(json.dumps(original.state_dict()))
    restored = make(space, 999)  # the seed comes back from the state
    restored.load_state_dict(state)
    assert restored.state_dict() == state
    for a, b in zip(original.front(), restored.front(), strict=True):
        np.testing.assert_array_equal(a, b)
    after_original = run_rounds(original, rounds=1, batch=batch, limit=limit)
    after_restored = run_rounds(restored, rounds=1, batch=batch, limit=limit)
    np.testing.assert_array_equal(after_original[0], after_restored[0])


def check_state_of_another_kind_or_space_is_refused(
    make: StrategyFactory, space: Space, *, other_space: Space | None = None
) -> None:
    """``load_state_dict`` refuses the state of another strategy kind or of another space."""
    strategy = make(space, 0)
    state = strategy.state_dict()
    other_name = "random" if strategy.kind != "random" else "nsga2"
    other = make_strategy(other_name, space, seed=0, num_objectives=strategy.num_objectives)
    with raises(ValueError, match="kind"):
        other.load_state_dict(state)
    elsewhere = make(other_space or get_space("mbv3-small"), 0)
    with raises(ValueError, match="space"):
        elsewhere.load_state_dict(state)


def check_infeasible_points_are_never_preferred(make: StrategyFactory, space: Space) -> None:
    """Points with violations stay off the front even when they dominate on every objective."""
    strategy = make(space, 1)
    m = strategy.num_objectives
    genomes = strategy.ask(4)
    # The infeasible points are far better on every objective than the feasible ones.
    values = np.array([[0.0] * m, [0.1] * m, [5.0] * m, [6.0] * m])
    strategy.tell(genomes, values, np.array([3.0, 1.0, 0.0, 0.0]))
    front = strategy.front()
    assert len(front.genomes) >= 1
    assert (front.violations == 0).all()
    np.testing.assert_array_equal(front.genomes, genomes[2:3])
    if m == 1:
        np.testing.assert_array_equal(strategy.best().genomes, genomes[2:3])
    else:
        with raises(ValueError, match="front"):
            strategy.best()


def check_front_is_feasible_after_a_constrained_search(
    make: StrategyFactory, space: Space, *, batch: int = 4, limit: float = KERNEL_LIMIT
) -> None:
    """After a few constrained rounds the front is feasible and holds the told values."""
    strategy = make(space, 5)
    asked = run_rounds(strategy, rounds=3, batch=batch, limit=limit)
    told = np.concatenate(asked)
    assert (kernel_violation(space, told, limit) == 0).any()  # the search met the constraint
    front = strategy.front()
    assert (front.violations == 0).all()
    np.testing.assert_array_equal(kernel_violation(space, front.genomes, limit), 0.0)
    values = toy_objectives(space, front.genomes, strategy.num_objectives)
    np.testing.assert_allclose(front.objectives, values)
