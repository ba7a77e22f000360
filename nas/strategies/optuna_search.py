"""Bayesian and evolutionary search through Optuna's ask/tell interface.

One class wraps three Optuna samplers, chosen by ``sampler``: ``"tpe"`` (multivariate TPE,
multi-objective capable), ``"gp"`` (Gaussian process; Optuna imports torch for it, lazily, on
the first model-based ask) and ``"nsga2"`` (Optuna's NSGA-II). Each gene is a categorical
parameter over its choice indices, named as in :attr:`search_spaces.GenomeLayout.names`. A
suggested genome is repaired and canonicalised before it is returned, so the genome asked may
differ from the parameters Optuna suggested; the values told are reported for the suggested
parameters anyway.

Constraints: Optuna 5 deprecates the samplers' ``constraints_func`` (FutureWarning) in favour of
:meth:`optuna.trial.Trial.set_constraint`, so each trial gets one constraint named
``"violation"`` holding the told violation (0 when none is given), which every sampler reads as
feasible when <= 0.

Reproducibility: before each ask, the study gets a fresh sampler seeded from ``(seed, number of
trials so far)``, so what is asked depends only on the seed and the trials told. The state is
the list of told trials (parameters, values, violation, Optuna's own trial attributes);
:meth:`OptunaStrategy.load_state_dict` rebuilds the study from it with
:func:`optuna.trial.create_trial` (and recomputes Optuna NSGA-II's cached parent
populations). Continuing after a reload is then deterministic given the seed on a best-effort
basis: it holds for the samplers tested here when every asked genome was told before saving
(asked-but-untold trials are not saved), but relies on Optuna internals it does not promise.

Optuna's logger is lowered to WARNING (if it is more verbose) only while this class calls into
Optuna, and restored afterwards.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.strategies.archive import row_keys
from nas.strategies.base import StrategyBase, check_ask_count, check_int, config_from_options
from search_spaces import Space, canonicalize, repair_genomes

if TYPE_CHECKING:
    import optuna

__all__ = ["OPTUNA_SAMPLERS", "OptunaConfig", "OptunaStrategy"]

# Sampler option -> registry name of the strategy.
OPTUNA_SAMPLERS: dict[str, str] = {"tpe": "tpe", "gp": "gp", "nsga2": "optuna-nsga2"}
_CONSTRAINT = "violation"

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class OptunaConfig:
    """Options of :class:`OptunaStrategy`."""

    sampler: str = "tpe"  # "tpe", "gp" or "nsga2"
    n_startup_trials: int = 10  # random trials before TPE or the GP take over
    population_size: int = 50  # Optuna NSGA-II's population

    def __post_init__(self) -> None:
        if self.sampler not in OPTUNA_SAMPLERS:
            raise ValueError(
                f"unknown Optuna sampler {self.sampler!r}; choose one of {list(OPTUNA_SAMPLERS)}"
            )
        check_int("n_startup_trials", self.n_startup_trials, 1)
        check_int("population_size", self.population_size, 2)


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna's logging at WARNING at most, and its experimental warnings hidden, meanwhile."""
    import optuna

    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(previous, optuna.logging.WARNING))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(previous)


def _json_ready(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes that survive a JSON round trip unchanged (constraints are stored apart)."""
    kept = {}
    for key, value in attrs.items():
        if key.startswith("constraints"):
            continue
        try:
            if json.loads(json.dumps(value)) == value:
                kept[key] = value
        except (TypeError, ValueError):
            logger.debug("not saving Optuna trial attribute %r: not JSON-ready", key)
    return kept


class OptunaStrategy(StrategyBase):
    """An Optuna study driven by ask/tell, over the genes of a space."""

    def __init__(
        self,
        space: Space,
        *,
        seed: int,
        num_objectives: int = 1,
        config: OptunaConfig | None = None,
    ) -> None:
        super().__init__(space, seed=seed, num_objectives=num_objectives)
        self.config = config or OptunaConfig()
        self.kind = OPTUNA_SAMPLERS[self.config.sampler]
        from optuna.distributions import BaseDistribution, CategoricalDistribution

        self._distributions: dict[str, BaseDistribution] = {
            name: CategoricalDistribution(tuple(range(int(cardinality))))
            for name, cardinality in zip(self.layout.names, self.layout.cardinalities, strict=True)
        }
        self._history: list[dict[str, Any]] = []
        self._pending: dict[bytes, deque[tuple[optuna.trial.Trial, list[int]]]] = {}
        self._num_trials = 0
        self.study = self._new_study()

    def _sampler(self, number: int) -> optuna.samplers.BaseSampler:
        import optuna

        seed = int(np.random.SeedSequence([self.seed, number]).generate_state(1)[0])
        if self.config.sampler == "tpe":
            return optuna.samplers.TPESampler(
                multivariate=True, seed=seed, n_startup_trials=self.config.n_startup_trials
            )
        if self.config.sampler == "gp":
            return optuna.samplers.GPSampler(
                seed=seed, n_startup_trials=self.config.n_startup_trials
            )
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=self.config.population_size)

    def _new_study(self) -> optuna.Study:
        import optuna

        with _quiet_optuna():
            return optuna.create_study(
                directions=["minimize"] * self.num_objectives, sampler=self._sampler(0)
            )

    def ask(self, n: int) -> np.ndarray:
        n = check_ask_count(n)
        trials = []
        rows = []
        with _quiet_optuna():
            # One sampler per ask, seeded by the trial count: a restored strategy asks exactly
            # what the original would have, and samplers that cache per instance (NSGA-II's
            # generations) rebuild their cache once per batch rather than once per trial.
            self.study.sampler = self._sampler(self._num_trials)
            for _ in range(n):
                trial = self.study.ask(fixed_distributions=self._distributions)
                self._num_trials += 1
                trials.append(trial)
                rows.append([int(trial.params[name]) for name in self.layout.names])
        suggested = np.asarray(rows, dtype=np.int64).reshape(n, self.layout.length)
        genomes = canonicalize(self.space, repair_genomes(self.space, suggested))
        for key, trial, params in zip(row_keys(genomes), trials, rows, strict=True):
            self._pending.setdefault(key.tobytes(), deque()).append((trial, params))
        return genomes

    def tell(
        self,
        genomes: np.ndarray,
        objectives: np.ndarray,
        violations: np.ndarray | None = None,
    ) -> None:
        batch, values, violation = self._check_told(genomes, objectives, violations)
        with _quiet_optuna():
            for key, row, value, slack in zip(
                row_keys(batch), batch, values.tolist(), violation.tolist(), strict=True
            ):
                queue = self._pending.get(key.tobytes())
                if queue:
                    trial, params = queue.popleft()
                    if not queue:
                        del self._pending[key.tobytes()]
                    trial.set_constraint(_CONSTRAINT, slack)
                    number = trial.number
                    attrs = _json_ready(self.study.tell(trial, value).system_attrs)
                else:  # a genome this strategy did not propose: add it as a finished trial
                    params = [int(gene) for gene in row]
                    number = self._num_trials
                    self.study.add_trial(self._frozen(params, value, slack, {}))
                    self._num_trials += 1
                    attrs = {}
                self._history.append(
                    {
                        "number": number,
                        "params": params,
                        "values": value,
                        "violation": slack,
                        "system_attrs": attrs,
                    }
                )
        self._record(batch, values, violation)

    def _frozen(
        self, params: list[int], values: list[float], violation: float, attrs: dict[str, Any]
    ) -> optuna.trial.FrozenTrial:
        from optuna.trial import create_trial

        return create_trial(
            params=dict(zip(self.layout.names, params, strict=True)),
            distributions=self._distributions,
            values=values,
            system_attrs=dict(attrs),
            constraints={_CONSTRAINT: violation},
        )

    def history(self) -> list[dict[str, Any]]:
        """Every trial told so far, in the order told: Optuna's trial ``number``, suggested
        ``params`` (one choice index per gene), ``values``, ``violation`` and Optuna's
        ``system_attrs``."""
        return [dict(entry) for entry in self._history]

    def state_dict(self) -> dict[str, Any]:
        state = self._base_state(asdict(self.config))
        state["history"] = self.history()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._load_base_state(state)
        self.config = config_from_options(OptunaConfig, state["config"], self.kind)
        self._history = [dict(entry) for entry in state["history"]]
        self._pending = {}
        self.study = self._new_study()
        with _quiet_optuna():
            # In the original study's order (the order asked), which samplers may depend on.
            in_order = sorted(self._history, key=lambda entry: int(entry["number"]))
            self.study.add_trials(
                self._frozen(
                    [int(gene) for gene in entry["params"]],
                    [float(value) for value in entry["values"]],
                    float(entry["violation"]),
                    dict(entry.get("system_attrs", {})),
                )
                for entry in in_order
            )
        self._num_trials = len(self._history)
        self._prime_parent_cache()

    def _prime_parent_cache(self) -> None:
        """Recompute Optuna NSGA-II's cached parent populations of the generations already
        started, in order, as the original run did at their first ask (the order of a freshly
        computed parent population differs from a cached one, which changes the children)."""
        import optuna

        sampler = self._sampler(self._num_trials)
        if not isinstance(sampler, optuna.samplers.NSGAIISampler):
            return
        generations = {
            int(value)
            for entry in self._history
            for key, value in entry.get("system_attrs", {}).items()
            if key.endswith(":generation")
        }
        with _quiet_optuna():
            for generation in sorted(generations):
                sampler.get_parent_population(self.study, generation)
