"""Search strategies: ask for canonical genomes, tell their objective values.

All follow the :class:`Strategy` protocol (``ask``/``tell``, ``state_dict``/
``load_state_dict``, ``front``/``best``), minimise every objective and rank feasible points
(violation 0) before infeasible ones:

- :class:`RandomStrategy` (``"random"``): uniform samples, the baseline;
- :class:`EvolutionStrategy` (``"evolution"``): regularized (aging) evolution, one objective;
- :class:`NSGA2Strategy` (``"nsga2"``): vectorised NSGA-II for several objectives;
- :class:`OptunaStrategy` (``"tpe"``, ``"gp"``, ``"optuna-nsga2"``): Optuna samplers via
  ask/tell.

:func:`make_strategy` builds one by name from :data:`STRATEGIES`. No strategy imports torch
(Optuna's GP sampler does, lazily, when it fits its first model).
"""

from __future__ import annotations

from nas.strategies.archive import ParetoArchive
from nas.strategies.base import Front, Strategy, StrategyBase
from nas.strategies.evolution import EvolutionConfig, EvolutionStrategy
from nas.strategies.nsga2 import NSGA2Config, NSGA2Strategy
from nas.strategies.optuna_search import OPTUNA_SAMPLERS, OptunaConfig, OptunaStrategy
from nas.strategies.random_search import RandomConfig, RandomStrategy
from nas.strategies.registry import STRATEGIES, StrategyFactory, make_strategy

__all__ = [
    "OPTUNA_SAMPLERS",
    "STRATEGIES",
    "EvolutionConfig",
    "EvolutionStrategy",
    "Front",
    "NSGA2Config",
    "NSGA2Strategy",
    "OptunaConfig",
    "OptunaStrategy",
    "ParetoArchive",
    "RandomConfig",
    "RandomStrategy",
    "Strategy",
    "StrategyBase",
    "StrategyFactory",
    "make_strategy",
]
