"""The ask/tell strategy protocol and what its implementations share.

A strategy proposes canonical genomes (``ask``) and learns from their objective values
(``tell``); it never evaluates anything itself, never touches storage and never imports torch.
Objectives are an ``(n, m)`` float array of values to minimise (negate accuracy); violations are
an ``(n,)`` array of total constraint violation, ``>= 0``, where 0 means feasible. Every strategy
keeps the constrained Pareto front of everything it was told (:meth:`Strategy.front`), and its
whole state is plain JSON (:meth:`Strategy.state_dict`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, NamedTuple, Protocol, TypeVar, runtime_checkable

import numpy as np

from nas.strategies.archive import ParetoArchive
from search_spaces import Space, canonicalize, genome_layout, repair_genomes

__all__ = [
    "Front",
    "Strategy",
    "StrategyBase",
    "check_ask_count",
    "check_int",
    "check_probability",
    "config_from_options",
    "rng_from_state",
    "rng_state",
]


ConfigT = TypeVar("ConfigT")


class Front(NamedTuple):
    """Points of a strategy's front: canonical genomes with their objectives and violations."""

    genomes: np.ndarray  # (k, genome_length) int64
    objectives: np.ndarray  # (k, m) float64, minimised
    violations: np.ndarray  # (k,) float64, 0 = feasible


@runtime_checkable
class Strategy(Protocol):
    """Proposes genomes of one space and learns from their objective values."""

    kind: str  # the registry name, e.g. "nsga2"
    space: Space
    seed: int
    num_objectives: int

    def ask(self, n: int) -> np.ndarray:
        """``n`` canonical genomes to evaluate next, as an ``(n, genome_length)`` int array."""
        ...

    def tell(
        self,
        genomes: np.ndarray,
        objectives: np.ndarray,
        violations: np.ndarray | None = None,
    ) -> None:
        """Report ``(n, m)`` objectives (minimised) and ``(n,)`` violations (None: all 0)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the search, as JSON-ready data."""
        ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output (into a strategy made for the same space)."""
        ...

    def front(self) -> Front:
        """The constrained Pareto front of all points told so far (feasible ones first)."""
        ...

    def best(self) -> Front:
        """The best point(s) told so far; single-objective strategies only."""
        ...


def check_ask_count(n: int) -> int:
    """``n`` as an int, or a ValueError unless it is an integer >= 0."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"ask needs a number of genomes >= 0, got {n!r}")
    return int(n)


def check_int(name: str, value: object, minimum: int) -> None:
    """Raise ValueError unless ``value`` is an integer (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_probability(name: str, value: object, *, allow_none: bool = False) -> None:
    """Raise ValueError unless ``value`` is a number in [0, 1] (or None when allowed)."""
    if value is None and allow_none:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.floating | np.integer)
        or not 0.0 <= float(value) <= 1.0
    ):
        allowed = " or None" if allow_none else ""
        raise ValueError(f"{name} must be a number in [0, 1]{allowed}, got {value!r}")


def config_from_options(
    config_type: type[ConfigT], options: Mapping[str, Any], kind: str
) -> ConfigT:
    """A config dataclass from keyword options, with a ValueError naming unknown options."""
    known = [field.name for field in fields(config_type)]  # type: ignore[arg-type]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for strategy {kind!r}; it takes {known or 'none'}"
        )
    return config_type(**options)


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """The generator's bit-generator state (plain ints and strings: JSON-ready)."""
    return dict(rng.bit_generator.state)


def rng_from_state(state: Mapping[str, Any]) -> np.random.Generator:
    """The inverse of :func:`rng_state`."""
    name = state.get("bit_generator")
    bit_generator_type = getattr(np.random, str(name), None)
    if bit_generator_type is None or not isinstance(bit_generator_type, type):
        raise ValueError(f"unknown bit generator {name!r} in strategy state")
    bit_generator = bit_generator_type()
    bit_generator.state = dict(state)
    return np.random.Generator(bit_generator)


class StrategyBase:
    """Checks of told data, the archive of the best points, and the common state fields."""

    kind: str = ""

    def __init__(self, space: Space, *, seed: int, num_objectives: int) -> None:
        check_int("seed", seed, 0)
        check_int("num_objectives", num_objectives, 1)
        self.space = space
        self.seed = int(seed)
        self.num_objectives = int(num_objectives)
        self.layout = genome_layout(space)
        self.rng = np.random.default_rng(self.seed)
        self.archive = ParetoArchive(self.layout.length, self.num_objectives)
        self.num_told = 0

    def _check_told(
        self,
        genomes: np.ndarray,
        objectives: np.ndarray,
        violations: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Told data as canonical genomes, ``(n, m)`` objectives and ``(n,)`` violations."""
        batch = np.asarray(genomes)
        if batch.ndim != 2 or batch.shape[1] != self.layout.length:
            raise ValueError(
                f"genomes must have shape (n, {self.layout.length}) for space "
                f"{self.space.name!r}, got {batch.shape}"
            )
        batch = canonicalize(self.space, repair_genomes(self.space, batch))
        n = len(batch)
        values = np.asarray(objectives, dtype=np.float64)
        if values.ndim == 1 and self.num_objectives == 1:
            values = values.reshape(-1, 1)
        if values.shape != (n, self.num_objectives):
            raise ValueError(
                f"objectives must have shape ({n}, {self.num_objectives}) for {n} genomes, "
                f"got {values.shape}"
            )
        if not np.isfinite(values).all():
            raise ValueError("objectives must be finite (found NaN or infinity)")
        if violations is None:
            violation = np.zeros(n)
        else:
            violation = np.asarray(violations, dtype=np.float64)
            if violation.shape != (n,):
                raise ValueError(
                    f"violations must have shape ({n},) for {n} genomes, got {violation.shape}"
                )
            if not np.isfinite(violation).all() or (violation < 0).any():
                raise ValueError("violations must be finite and >= 0 (0 means feasible)")
        return batch, values + 0.0, violation + 0.0

    def _record(self, genomes: np.ndarray, objectives: np.ndarray, violations: np.ndarray) -> None:
        self.archive.update(genomes, objectives, violations)
        self.num_told += len(genomes)

    def front(self) -> Front:
        return Front(*self.archive.points())

    def best(self) -> Front:
        if self.num_objectives != 1:
            raise ValueError(
                f"best() needs a single objective; this strategy has {self.num_objectives}: "
                "use front()"
            )
        return self.front()

    def _base_state(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "space": self.space.name,
            "genome_length": self.layout.length,
            "seed": self.seed,
            "num_objectives": self.num_objectives,
            "config": dict(config),
            "rng": rng_state(self.rng),
            "archive": self.archive.to_dict(),
            "num_told": self.num_told,
        }

    def _load_base_state(self, state: Mapping[str, Any]) -> None:
        """Check that ``state`` belongs to this kind of strategy and space, and restore the
        common fields (the caller restores its config from ``state["config"]``)."""
        expected = {
            "kind": self.kind,
            "space": self.space.name,
            "genome_length": self.layout.length,
            "num_objectives": self.num_objectives,
        }
        for key, value in expected.items():
            if key not in state:
                raise ValueError(f"strategy state lacks {key!r}; was it made by state_dict()?")
            if state[key] != value:
                raise ValueError(
                    f"strategy state has {key}={state[key]!r} but this strategy has {value!r}"
                )
        self.seed = int(state["seed"])
        self.rng = rng_from_state(state["rng"])
        self.archive = ParetoArchive.from_dict(
            state["archive"], self.layout.length, self.num_objectives
        )
        self.num_told = int(state["num_told"])
