"""Every registered strategy obeys the Strategy protocol (as Optuna tests all its samplers)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nas.strategies import STRATEGIES, Strategy, make_strategy
from search_spaces import Space, canonicalize, decode_genome, genome_layout, get_space

from .conftest import build, kernel_violation, profile, run_rounds, toy_objectives

NAMES = sorted(STRATEGIES)
LIMIT = 14.0  # kernel-sum constraint on "tiny": half of the random subnets meet it


@pytest.fixture(scope="module")
def tiny() -> Space:
    return get_space("tiny")


@pytest.mark.parametrize("name", NAMES)
def test_ask_returns_valid_canonical_genomes(name: str, tiny: Space) -> None:
    strategy = build(name, tiny, seed=0)
    assert isinstance(strategy, Strategy)
    assert strategy.kind == name
    length = genome_layout(tiny).length
    batch = profile(name).batch
    for genomes in run_rounds(strategy, rounds=3, batch=batch):
        assert genomes.shape == (batch, length)
        assert np.issubdtype(genomes.dtype, np.integer)
        np.testing.assert_array_equal(canonicalize(tiny, genomes), genomes)
        for genome in genomes:
            tiny.validate(decode_genome(tiny, genome))
    assert strategy.ask(0).shape == (0, length)
    assert len(strategy.front().genomes) >= 1


@pytest.mark.parametrize("name", NAMES)
def test_tell_rejects_malformed_input(name: str, tiny: Space) -> None:
    strategy = build(name, tiny, seed=0)
    genomes = strategy.ask(2)
    m = strategy.num_objectives
    with pytest.raises(ValueError, match="objectives"):
        strategy.tell(genomes, np.zeros((3, m)))
    with pytest.raises(ValueError, match="genomes"):
        strategy.tell(genomes[:, :-1], np.zeros((2, m)))
    with pytest.raises(ValueError, match="violations"):
        strategy.tell(genomes, np.zeros((2, m)), np.array([-1.0, 0.0]))
    with pytest.raises(ValueError, match="finite"):
        strategy.tell(genomes, np.full((2, m), np.nan))
    with pytest.raises(ValueError, match="ask"):
        strategy.ask(-1)
    strategy.tell(genomes, toy_objectives(tiny, genomes, m))


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_gives_same_asks(name: str, tiny: Space) -> None:
    batch = profile(name).batch
    first = run_rounds(build(name, tiny, seed=7), rounds=3, batch=batch, limit=LIMIT)
    second = run_rounds(build(name, tiny, seed=7), rounds=3, batch=batch, limit=LIMIT)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    other = run_rounds(build(name, tiny, seed=8), rounds=1, batch=batch)
    assert not np.array_equal(other[0], first[0])


@pytest.mark.parametrize("name", NAMES)
def test_state_round_trip_continues_identically(name: str, tiny: Space) -> None:
    batch = profile(name).batch
    original = build(name, tiny, seed=3)
    run_rounds(original, rounds=3, batch=batch, limit=LIMIT)
    state = json.loads(json.dumps(original.state_dict()))
    restored = build(name, tiny, seed=999)  # the seed comes back from the state
    restored.load_state_dict(state)
    assert restored.state_dict() == state
    for a, b in zip(original.front(), restored.front(), strict=True):
        np.testing.assert_array_equal(a, b)
    # Optuna strategies promise this on a best-effort basis only; it holds for all here.
    after_original = run_rounds(original, rounds=1, batch=batch, limit=LIMIT)
    after_restored = run_rounds(restored, rounds=1, batch=batch, limit=LIMIT)
    np.testing.assert_array_equal(after_original[0], after_restored[0])


@pytest.mark.parametrize("name", NAMES)
def test_state_of_another_strategy_or_space_is_refused(name: str, tiny: Space) -> None:
    state = build(name, tiny, seed=0).state_dict()
    other_name = "random" if name != "random" else "nsga2"
    other = make_strategy(other_name, tiny, seed=0, num_objectives=profile(name).num_objectives)
    with pytest.raises(ValueError, match="kind"):
        other.load_state_dict(state)
    elsewhere = build(name, get_space("mbv3-small"), seed=0)
    with pytest.raises(ValueError, match="space"):
        elsewhere.load_state_dict(state)


@pytest.mark.parametrize("name", NAMES)
def test_infeasible_points_are_never_preferred(name: str, tiny: Space) -> None:
    strategy = build(name, tiny, seed=1)
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
        with pytest.raises(ValueError, match="front"):
            strategy.best()


@pytest.mark.parametrize("name", NAMES)
def test_front_is_feasible_after_a_constrained_search(name: str, tiny: Space) -> None:
    strategy = build(name, tiny, seed=5)
    asked = run_rounds(strategy, rounds=3, batch=profile(name).batch, limit=LIMIT)
    told = np.concatenate(asked)
    assert (kernel_violation(tiny, told, LIMIT) == 0).any()  # the search met the constraint
    front = strategy.front()
    assert (front.violations == 0).all()
    np.testing.assert_array_equal(kernel_violation(tiny, front.genomes, LIMIT), 0.0)
    values = toy_objectives(tiny, front.genomes, strategy.num_objectives)
    np.testing.assert_allclose(front.objectives, values)
