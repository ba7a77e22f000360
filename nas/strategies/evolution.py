"""Regularized (aging) evolution for one objective under constraints (Real et al., 2019).

The population holds the ``population_size`` most recently told genomes. Until it is full, asks
are uniform samples. Then each child comes from a tournament: ``sample_size`` distinct members
are drawn, the best of them (feasible first, then by violation, then by objective; the older
member on ties) is mutated, and the child is told back as the youngest member while the oldest
one dies, whatever its quality. A batch ask runs ``n`` independent tournaments at once. With
``avoid_duplicates`` (the default), children repeating a genome proposed or told before are
replaced by spare children or mutated again, so no evaluation is spent twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from nas.strategies.base import (
    StrategyBase,
    check_ask_count,
    check_int,
    check_probability,
    config_from_options,
)
from nas.strategies.seen import SeenGenomes, fresh_genomes, surplus
from search_spaces import Space, mutate_genomes, sample_genomes

__all__ = ["EvolutionConfig", "EvolutionStrategy"]


@dataclass(frozen=True, kw_only=True)
class EvolutionConfig:
    """Options of :class:`EvolutionStrategy`."""

    population_size: int = 50
    sample_size: int = 10  # tournament size
    mutation_probability: float | None = None  # per gene; None: 1 / genome length
    avoid_duplicates: bool = True  # mutate children again while they repeat a seen genome
    duplicate_retries: int = 10

    def __post_init__(self) -> None:
        check_int("population_size", self.population_size, 2)
        check_int("sample_size", self.sample_size, 1)
        if self.sample_size > self.population_size:
            raise ValueError(
                f"sample_size must be at most population_size ({self.population_size}), "
                f"got {self.sample_size}"
            )
        check_probability("mutation_probability", self.mutation_probability, allow_none=True)
        if self.mutation_probability == 0:
            raise ValueError("mutation_probability must be > 0: children would copy parents")
        check_int("duplicate_retries", self.duplicate_retries, 0)


class EvolutionStrategy(StrategyBase):
    """Aging evolution of canonical genomes for a single objective."""

    kind = "evolution"

    def __init__(
        self,
        space: Space,
        *,
        seed: int,
        num_objectives: int = 1,
        config: EvolutionConfig | None = None,
    ) -> None:
        if num_objectives != 1:
            raise ValueError(
                f"evolution optimises one objective, got num_objectives={num_objectives}; "
                "use 'nsga2' or an Optuna strategy for several"
            )
        super().__init__(space, seed=seed, num_objectives=num_objectives)
        self.config = config or EvolutionConfig()
        self.seen = SeenGenomes(space)
        self.genomes = np.zeros((0, self.layout.length), dtype=np.int64)
        self.objectives = np.zeros(0)
        self.violations = np.zeros(0)

    @property
    def mutation_probability(self) -> float:
        probability = self.config.mutation_probability
        return 1.0 / self.layout.length if probability is None else probability

    def ask(self, n: int) -> np.ndarray:
        n = check_ask_count(n)
        # With duplicate elimination, spare candidates replace most duplicates cheaply.
        bred = surplus(n, self.seen.fresh_rate) if self.config.avoid_duplicates else n
        if len(self.genomes) < self.config.population_size:
            children = sample_genomes(self.space, self.rng, bred)
        else:
            parents = self.genomes[self._tournaments(bred)]
            children = mutate_genomes(self.space, parents, self.rng, self.mutation_probability)
        if self.config.avoid_duplicates:
            children = fresh_genomes(
                self.space,
                children,
                self.seen,
                self.rng,
                self.mutation_probability,
                self.config.duplicate_retries,
                count=n,
            )
        return children

    def _tournaments(self, n: int) -> np.ndarray:
        """Indices of ``n`` tournament winners in the population."""
        size = len(self.genomes)
        sample = min(self.config.sample_size, size)
        contestants = np.argsort(self.rng.random((n, size)), axis=1)[:, :sample]
        # Position in the order (violation, objective, age): lower is better, oldest first.
        standing = np.empty(size, dtype=np.int64)
        standing[np.lexsort((self.objectives, self.violations))] = np.arange(size)
        winners = np.argmin(standing[contestants], axis=1)
        return contestants[np.arange(n), winners]

    def tell(
        self,
        genomes: np.ndarray,
        objectives: np.ndarray,
        violations: np.ndarray | None = None,
    ) -> None:
        batch, values, violation = self._check_told(genomes, objectives, violations)
        keep = self.config.population_size
        self.genomes = np.concatenate([self.genomes, batch])[-keep:]
        self.objectives = np.concatenate([self.objectives, values[:, 0]])[-keep:]
        self.violations = np.concatenate([self.violations, violation])[-keep:]
        if self.config.avoid_duplicates:
            self.seen.add(batch)
        self._record(batch, values, violation)

    def state_dict(self) -> dict[str, Any]:
        state = self._base_state(asdict(self.config))
        state["population"] = {
            "genomes": self.genomes.tolist(),
            "objectives": self.objectives.tolist(),
            "violations": self.violations.tolist(),
        }
        state["seen"] = self.seen.to_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._load_base_state(state)
        self.config = config_from_options(EvolutionConfig, state["config"], self.kind)
        population = state["population"]
        self.genomes = np.asarray(population["genomes"], dtype=np.int64).reshape(
            -1, self.layout.length
        )
        self.objectives = np.asarray(population["objectives"], dtype=np.float64).reshape(-1)
        self.violations = np.asarray(population["violations"], dtype=np.float64).reshape(-1)
        self.seen = SeenGenomes(self.space)
        self.seen.load_dict(state["seen"])
