from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nas.strategies import Strategy, make_strategy
from nas.testing.strategies import kernel_violation, run_rounds, toy_objectives
from search_spaces import Space

# The helpers of the shipped strategy suite, used by the tests here too.
__all__ = [
    "PROFILES",
    "Profile",
    "build",
    "kernel_violation",
    "profile",
    "run_rounds",
    "toy_objectives",
]


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
