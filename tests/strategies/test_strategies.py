"""Behaviour of the individual strategies: registry, NSGA-II, evolution, Optuna."""

from __future__ import annotations

import json
import logging

import numpy as np
import optuna
import pytest

from nas.strategies import (
    STRATEGIES,
    EvolutionStrategy,
    NSGA2Config,
    NSGA2Strategy,
    OptunaStrategy,
    ParetoArchive,
    Strategy,
    make_strategy,
)
from nas.strategies.pareto import hypervolume, pareto_mask
from nas.strategies.seen import SeenGenomes, fresh_genomes
from search_spaces import Space, get_space, sample_genomes, to_genome

from .conftest import kernel_violation, run_rounds, toy_objectives


@pytest.fixture(scope="module")
def small() -> Space:
    return get_space("mbv3-small")


@pytest.fixture(scope="module")
def tiny() -> Space:
    return get_space("tiny")


def test_registry_names_and_errors(tiny: Space) -> None:
    assert set(STRATEGIES) == {"random", "evolution", "nsga2", "tpe", "gp", "optuna-nsga2"}
    with pytest.raises(ValueError, match="choose one of random, evolution, nsga2"):
        make_strategy("annealing", tiny, seed=0)
    with pytest.raises(ValueError, match="unknown option"):
        make_strategy("nsga2", tiny, seed=0, num_objectives=2, populaton_size=10)
    with pytest.raises(ValueError, match="population_size"):
        make_strategy("nsga2", tiny, seed=0, num_objectives=2, population_size=1)
    with pytest.raises(ValueError, match="sample_size"):
        make_strategy("evolution", tiny, seed=0, population_size=4, sample_size=5)
    with pytest.raises(ValueError, match="one objective"):
        make_strategy("evolution", tiny, seed=0, num_objectives=2)
    with pytest.raises(ValueError, match="fixes the Optuna sampler"):
        make_strategy("tpe", tiny, seed=0, sampler="gp")
    with pytest.raises(ValueError, match="seed"):
        make_strategy("random", tiny, seed=-1)


def test_nsga2_tight_loop_on_the_default_space(small: Space) -> None:
    strategy = make_strategy("nsga2", small, seed=0, num_objectives=2)
    asked = run_rounds(strategy, rounds=20, batch=100)
    everything = np.concatenate(asked)
    assert len(np.unique(everything, axis=0)) == len(everything) == 2000
    front = strategy.front()
    assert len(front.genomes) >= 2
    assert pareto_mask(front.objectives).all()
    assert strategy.state_dict()["num_told"] == 2000
    # The first generation holds the smallest and largest subnets.
    np.testing.assert_array_equal(asked[0][0], to_genome(small, small.smallest()))
    np.testing.assert_array_equal(asked[0][1], to_genome(small, small.largest()))


def test_nsga2_survival_keeps_feasible_points_first(tiny: Space) -> None:
    strategy = NSGA2Strategy(tiny, seed=0, num_objectives=2, config=NSGA2Config(population_size=4))
    genomes = strategy.ask(8)
    values = np.array([[float(i), float(8 - i)] for i in range(8)])
    violations = np.array([1.0, 2.0, 0.5, 3.0, 0.0, 0.0, 0.0, 0.0])  # infeasible dominate
    strategy.tell(genomes, values, violations)
    population = strategy.state_dict()["population"]
    assert population["violations"] == [0.0] * 4
    np.testing.assert_array_equal(population["genomes"], genomes[4:])


def test_evolution_tournaments_prefer_feasible_and_population_ages(tiny: Space) -> None:
    strategy = make_strategy("evolution", tiny, seed=0, population_size=4, sample_size=4)
    assert isinstance(strategy, EvolutionStrategy)
    genomes = strategy.ask(6)
    objective = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    violations = np.array([0.0, 0.0, 1.0, 0.5, 0.0, 0.0])
    strategy.tell(genomes, objective, violations)
    population = strategy.state_dict()["population"]
    np.testing.assert_array_equal(population["genomes"], genomes[2:])  # the oldest two died
    # Every tournament sees the whole population: the best feasible member (5th told) wins,
    # although two infeasible members have better objectives.
    assert (strategy._tournaments(20) == 2).all()
    children = strategy.ask(5)
    assert children.shape == (5, genomes.shape[1])


def test_evolution_beats_random_under_a_constraint(small: Space) -> None:
    limit = 60.0  # sum of kernel sizes; the unconstrained optimum uses every 7x7 kernel

    def best_feasible(strategy: Strategy) -> float:
        run_rounds(strategy, rounds=30, batch=20, limit=limit)
        best = strategy.best()
        assert (best.violations == 0).all()
        return float(best.objectives[0, 0])

    evolution = best_feasible(make_strategy("evolution", small, seed=0))
    random = best_feasible(make_strategy("random", small, seed=0, num_objectives=1))
    assert evolution < random


def test_nsga2_front_beats_random_hypervolume(small: Space) -> None:
    smallest = to_genome(small, small.smallest())[None]
    largest = to_genome(small, small.largest())[None]
    reference = np.array(
        [
            toy_objectives(small, smallest, 2)[0, 0] * 1.01,
            toy_objectives(small, largest, 2)[0, 1] * 1.01,
        ]
    )
    volumes = {}
    for name in ("nsga2", "random"):
        options = {"population_size": 50} if name == "nsga2" else {}
        strategy = make_strategy(name, small, seed=0, num_objectives=2, **options)
        run_rounds(strategy, rounds=20, batch=50)
        volumes[name] = hypervolume(strategy.front().objectives, reference)
    assert volumes["nsga2"] > volumes["random"]


def test_archive_merges_in_batches_like_at_once(tiny: Space) -> None:
    rng = np.random.default_rng(0)
    genomes = sample_genomes(tiny, rng, 300)
    genomes = genomes[np.sort(np.unique(genomes, axis=0, return_index=True)[1])]
    values = toy_objectives(tiny, genomes, 2)
    violations = kernel_violation(tiny, genomes, 14.0)
    eager = ParetoArchive(genomes.shape[1], 2)
    eager.min_buffer = 1
    lazy = ParetoArchive(genomes.shape[1], 2)
    for start in range(0, len(genomes), 7):
        part = slice(start, start + 7)
        eager.update(genomes[part], values[part], violations[part])
        lazy.update(genomes[part], values[part], violations[part])
    for a, b in zip(eager.points(), lazy.points(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_optuna_strategy_tells_history_and_foreign_genomes(tiny: Space) -> None:
    strategy = make_strategy("tpe", tiny, seed=0, num_objectives=2, n_startup_trials=3)
    assert isinstance(strategy, OptunaStrategy)
    optuna.logging.set_verbosity(optuna.logging.INFO)
    try:
        genomes = strategy.ask(4)
        assert optuna.logging.get_verbosity() == optuna.logging.INFO  # restored afterwards
        order = [2, 0, 3, 1]  # told in another order than asked
        strategy.tell(genomes[order], toy_objectives(tiny, genomes[order], 2))
    finally:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    foreign = sample_genomes(tiny, np.random.default_rng(5), 2)
    strategy.tell(foreign, toy_objectives(tiny, foreign, 2), np.array([0.0, 2.0]))
    trials = strategy.study.trials
    assert len(trials) == 6
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 6
    assert trials[-1].constraints == {"violation": 2.0}
    state = json.loads(json.dumps(strategy.state_dict()))
    restored = make_strategy("tpe", tiny, seed=0, num_objectives=2, n_startup_trials=3)
    restored.load_state_dict(state)
    assert isinstance(restored, OptunaStrategy)
    assert restored.history() == strategy.history()

    for original, rebuilt in zip(trials, restored.study.trials, strict=True):
        assert (original.number, original.params) == (rebuilt.number, rebuilt.params)
        assert (original.values, original.constraints) == (rebuilt.values, rebuilt.constraints)


def test_strategies_do_not_log_below_warning(tiny: Space, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        strategy = make_strategy("optuna-nsga2", tiny, seed=0, num_objectives=2)
        run_rounds(strategy, rounds=2, batch=3)
    assert not [r for r in caplog.records if r.name.startswith("optuna")]


def test_fresh_genomes_replaces_every_duplicate(tiny: Space) -> None:
    rng = np.random.default_rng(0)
    seen = SeenGenomes(tiny)
    old = sample_genomes(tiny, rng, 30)
    seen.add(old)
    candidates = np.concatenate([old[:10], old[:3]])  # all seen, some twice
    fresh = fresh_genomes(tiny, candidates, seen, rng, 0.05, retries=3, count=8)
    assert fresh.shape == (8, old.shape[1])
    assert len(np.unique(fresh, axis=0)) == 8
    assert not (fresh[:, None, :] == old[None, :, :]).all(axis=2).any()
    assert len(seen) == len(np.unique(old, axis=0)) + 8
    restored = SeenGenomes(tiny)
    restored.load_dict(json.loads(json.dumps(seen.to_dict())))
    assert restored.keys == seen.keys
