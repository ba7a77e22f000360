"""NSGA-II (Deb et al., 2002) over canonical genomes, vectorised with numpy.

Until ``population_size`` genomes have been told, asks return the initial population: uniform
samples, the first two replaced by the space's smallest and largest subnets when
``seed_extremes`` is on. Then each ask breeds its ``n`` children at once: binary tournaments on
(constrained rank, crowding distance) pick the parents, uniform crossover applies with
``crossover_probability``, and every child is mutated (both in
:func:`search_spaces.breed_genomes`). Duplicate elimination keeps a hash set
of the canonical genomes proposed or told: enough spare children are bred for the share of
new ones seen lately (:func:`~nas.strategies.seen.surplus`), the first ``n`` new ones are
returned, and if too few are new the repeats are mutated again.
``tell`` merges the told points into the population and keeps the best ``population_size`` by
constrained non-dominated sorting (Deb's feasibility rule), breaking the last front by crowding
distance.

The loop is built for cheap predictors that score a whole population at once: 500 generations
of 100 on ``mbv3-small`` (50,000 evaluations) take about 0.8 s of strategy time on one core.
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
from nas.strategies.pareto import constrained_ranks, crowding_distance
from nas.strategies.seen import SeenGenomes, fresh_genomes, surplus
from search_spaces import Space, breed_genomes, sample_genomes, to_genome

__all__ = ["NSGA2Config", "NSGA2Strategy"]


@dataclass(frozen=True, kw_only=True)
class NSGA2Config:
    """Options of :class:`NSGA2Strategy`."""

    population_size: int = 100
    crossover_probability: float = 0.9
    mutation_probability: float | None = None  # per gene; None: 1 / genome length
    seed_extremes: bool = True  # put the smallest and largest subnets in the first population
    avoid_duplicates: bool = True
    duplicate_retries: int = 10

    def __post_init__(self) -> None:
        check_int("population_size", self.population_size, 2)
        check_probability("crossover_probability", self.crossover_probability)
        check_probability("mutation_probability", self.mutation_probability, allow_none=True)
        check_int("duplicate_retries", self.duplicate_retries, 0)


class NSGA2Strategy(StrategyBase):
    """Elitist multi-objective evolution with constrained non-dominated sorting."""

    kind = "nsga2"

    def __init__(
        self,
        space: Space,
        *,
        seed: int,
        num_objectives: int = 2,
        config: NSGA2Config | None = None,
    ) -> None:
        super().__init__(space, seed=seed, num_objectives=num_objectives)
        self.config = config or NSGA2Config()
        self.seen = SeenGenomes(space)
        self.extremes_sent = False
        self._set_population(
            np.zeros((0, self.layout.length), dtype=np.int64),
            np.zeros((0, self.num_objectives)),
            np.zeros(0),
        )

    @property
    def mutation_probability(self) -> float:
        probability = self.config.mutation_probability
        return 1.0 / self.layout.length if probability is None else probability

    def _set_population(
        self,
        genomes: np.ndarray,
        objectives: np.ndarray,
        violations: np.ndarray,
        ranks: np.ndarray | None = None,
    ) -> None:
        self.genomes = genomes
        self.objectives = objectives
        self.violations = violations
        self.ranks = constrained_ranks(objectives, violations) if ranks is None else ranks
        self.crowding = crowding_distance(objectives, self.ranks)

    def ask(self, n: int) -> np.ndarray:
        n = check_ask_count(n)
        # With duplicate elimination, spare candidates replace most duplicates cheaply.
        bred = surplus(n, self.seen.fresh_rate) if self.config.avoid_duplicates else n
        if len(self.genomes) < self.config.population_size:
            children = self._initial(bred)
        else:
            children = self._offspring(bred)
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

    def _initial(self, n: int) -> np.ndarray:
        genomes = sample_genomes(self.space, self.rng, n)
        if self.config.seed_extremes and not self.extremes_sent and n > 0:
            extremes = np.stack(
                [
                    to_genome(self.space, self.space.smallest()),
                    to_genome(self.space, self.space.largest()),
                ]
            )[:n]
            genomes[: len(extremes)] = extremes
            self.extremes_sent = True
        return genomes

    def _tournament(self, n: int) -> np.ndarray:
        """Indices of ``n`` binary-tournament winners: lower rank, then larger crowding."""
        pairs = self.rng.integers(0, len(self.genomes), size=(n, 2))
        first, second = pairs[:, 0], pairs[:, 1]
        rank_a, rank_b = self.ranks[first], self.ranks[second]
        crowd_a, crowd_b = self.crowding[first], self.crowding[second]
        second_wins = (rank_b < rank_a) | ((rank_b == rank_a) & (crowd_b > crowd_a))
        return np.where(second_wins, second, first)

    def _offspring(self, n: int) -> np.ndarray:
        if n == 0:
            return np.zeros((0, self.layout.length), dtype=np.int64)
        mothers = self.genomes[self._tournament(n)]
        fathers = self.genomes[self._tournament(n)]
        return breed_genomes(
            self.space,
            mothers,
            fathers,
            self.rng,
            crossover_probability=self.config.crossover_probability,
            mutation_probability=self.mutation_probability,
        )

    def tell(
        self,
        genomes: np.ndarray,
        objectives: np.ndarray,
        violations: np.ndarray | None = None,
    ) -> None:
        batch, values, violation = self._check_told(genomes, objectives, violations)
        if self.config.avoid_duplicates:
            self.seen.add(batch)
        self._record(batch, values, violation)
        self._survive(
            np.concatenate([self.genomes, batch]),
            np.concatenate([self.objectives, values]),
            np.concatenate([self.violations, violation]),
        )

    def _survive(self, genomes: np.ndarray, objectives: np.ndarray, violations: np.ndarray) -> None:
        """Keep the best ``population_size``: by constrained rank, then crowding distance."""
        size = self.config.population_size
        if len(genomes) <= size:
            self._set_population(genomes, objectives, violations)
            return
        ranks = constrained_ranks(objectives, violations)
        crowding = crowding_distance(objectives, ranks)
        keep = np.lexsort((-crowding, ranks))[:size]
        keep.sort()  # keep the members' order (oldest first) for reproducibility
        # Dropping whole worse fronts (and the tail of the last one kept) leaves the ranks of
        # the survivors unchanged; only the crowding of the truncated front is recomputed.
        self._set_population(genomes[keep], objectives[keep], violations[keep], ranks[keep])

    def state_dict(self) -> dict[str, Any]:
        state = self._base_state(asdict(self.config))
        state["population"] = {
            "genomes": self.genomes.tolist(),
            "objectives": self.objectives.tolist(),
            "violations": self.violations.tolist(),
        }
        state["seen"] = self.seen.to_dict()
        state["extremes_sent"] = self.extremes_sent
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._load_base_state(state)
        self.config = config_from_options(NSGA2Config, state["config"], self.kind)
        population = state["population"]
        genomes = np.asarray(population["genomes"], dtype=np.int64).reshape(-1, self.layout.length)
        self._set_population(
            genomes,
            np.asarray(population["objectives"], dtype=np.float64).reshape(
                len(genomes), self.num_objectives
            ),
            np.asarray(population["violations"], dtype=np.float64).reshape(len(genomes)),
        )
        self.seen = SeenGenomes(self.space)
        self.seen.load_dict(state["seen"])
        self.extremes_sent = bool(state["extremes_sent"])
