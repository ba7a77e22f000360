"""Random search: every genome drawn uniformly (the baseline every strategy must beat)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from nas.strategies.base import StrategyBase, check_ask_count, config_from_options
from search_spaces import Space, sample_genomes

__all__ = ["RandomConfig", "RandomStrategy"]


@dataclass(frozen=True, kw_only=True)
class RandomConfig:
    """Random search has no options; the class exists so every strategy has a config."""


class RandomStrategy(StrategyBase):
    """Uniform :func:`search_spaces.sample_genomes`; ``tell`` only updates the front."""

    kind = "random"

    def __init__(
        self,
        space: Space,
        *,
        seed: int,
        num_objectives: int = 1,
        config: RandomConfig | None = None,
    ) -> None:
        super().__init__(space, seed=seed, num_objectives=num_objectives)
        self.config = config or RandomConfig()

    def ask(self, n: int) -> np.ndarray:
        return sample_genomes(self.space, self.rng, check_ask_count(n))

    def tell(
        self,
        genomes: np.ndarray,
        objectives: np.ndarray,
        violations: np.ndarray | None = None,
    ) -> None:
        self._record(*self._check_told(genomes, objectives, violations))

    def state_dict(self) -> dict[str, Any]:
        return self._base_state(asdict(self.config))

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._load_base_state(state)
        self.config = config_from_options(RandomConfig, state["config"], self.kind)
