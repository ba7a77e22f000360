"""Strategies by name: :data:`STRATEGIES` and :func:`make_strategy`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nas.strategies.base import Strategy, config_from_options
from nas.strategies.evolution import EvolutionConfig, EvolutionStrategy
from nas.strategies.nsga2 import NSGA2Config, NSGA2Strategy
from nas.strategies.optuna_search import OptunaConfig, OptunaStrategy
from nas.strategies.random_search import RandomConfig, RandomStrategy
from search_spaces import Space

__all__ = ["STRATEGIES", "StrategyFactory", "make_strategy"]

# factory(space, *, seed, num_objectives, **options) -> Strategy
StrategyFactory = Callable[..., Strategy]


def _random(space: Space, *, seed: int, num_objectives: int, **options: Any) -> Strategy:
    config = config_from_options(RandomConfig, options, "random")
    return RandomStrategy(space, seed=seed, num_objectives=num_objectives, config=config)


def _evolution(space: Space, *, seed: int, num_objectives: int, **options: Any) -> Strategy:
    config = config_from_options(EvolutionConfig, options, "evolution")
    return EvolutionStrategy(space, seed=seed, num_objectives=num_objectives, config=config)


def _nsga2(space: Space, *, seed: int, num_objectives: int, **options: Any) -> Strategy:
    config = config_from_options(NSGA2Config, options, "nsga2")
    return NSGA2Strategy(space, seed=seed, num_objectives=num_objectives, config=config)


def _optuna(sampler: str, name: str) -> StrategyFactory:
    def factory(space: Space, *, seed: int, num_objectives: int, **options: Any) -> Strategy:
        if "sampler" in options:
            raise ValueError(f"strategy {name!r} fixes the Optuna sampler to {sampler!r}")
        config = config_from_options(OptunaConfig, {"sampler": sampler, **options}, name)
        return OptunaStrategy(space, seed=seed, num_objectives=num_objectives, config=config)

    return factory


STRATEGIES: dict[str, StrategyFactory] = {
    "random": _random,
    "evolution": _evolution,
    "nsga2": _nsga2,
    "tpe": _optuna("tpe", "tpe"),
    "gp": _optuna("gp", "gp"),
    "optuna-nsga2": _optuna("nsga2", "optuna-nsga2"),
}


def make_strategy(
    name: str, space: Space, *, seed: int, num_objectives: int = 1, **options: Any
) -> Strategy:
    """The strategy registered as ``name``, configured by keyword ``options``.

    Raises ValueError for an unknown name (listing the choices) or unknown or invalid options.
    """
    factory = STRATEGIES.get(name)
    if factory is None:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    return factory(space, seed=seed, num_objectives=num_objectives, **options)
