from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nas.strategies import Strategy, make_strategy
from search_spaces import Space, encode_genomes, genome_layout


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


@dataclass(frozen=True)
class Profile:
    """How the conformance tests drive one registered strategy cheaply."""

    num_objectives: int = 1
    options: dict[str, Any] = field(default_factory=dict)
    batch: int = 4


# Small budgets so the whole directory runs in well under a minute on two shared cores; the
# GP sampler is single-objective and asks one genome at a time here: its acquisition for
# several objectives, or with trials still running (batch asks), is Monte-Carlo and slow.
PROFILES: dict[str, Profile] = {
    "random": Profile(num_objectives=2),
    "evolution": Profile(num_objectives=1, options={"population_size": 8, "sample_size": 3}),
    "nsga2": Profile(num_objectives=2, options={"population_size": 8}),
    "tpe": Profile(num_objectives=2, options={"n_startup_trials": 4}),
    "gp": Profile(num_objectives=1, options={"n_startup_trials": 2}, batch=1),
    "optuna-nsga2": Profile(num_objectives=2, options={"population_size": 8}),
}


def profile(name: str) -> Profile:
    return PROFILES.get(name, Profile())


def build(name: str, space: Space, seed: int) -> Strategy:
    settings = profile(name)
    return make_strategy(
        name, space, seed=seed, num_objectives=settings.num_objectives, **settings.options
    )


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
