"""A training schedule is data: phases, each with epochs, a learning rate and elastic dimensions.

A *phase* is what Once-for-All calls a stage of progressive shrinking (the name "stage" is taken
by the network's stages). During a phase only its ``elastic`` dimensions are sampled; the others
stay at the largest subnet's values. A phase with no elastic dimension trains the largest subnet
alone, which is how delayed shrinking starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nas.errors import UserError
from search_spaces import DIMENSIONS

__all__ = ["SCHEDULES", "Phase", "Schedule", "make_schedule"]

# The order in which progressive shrinking makes dimensions elastic.
_SHRINK_ORDER: tuple[tuple[str, tuple[str, ...]], ...] = (
    # A stage's block type joins with the kernel size, the first thing to shrink: both choose
    # how a block convolves, and the largest subnet's fused blocks teach the inverted residuals.
    # Squeeze-excitation and the activation (choices of a block's form that add no weights of
    # their own) join there too.
    ("kernel", ("kernel_size", "block_type", "se", "activation")),
    ("depth", ("depth",)),
    ("width", ("expand_ratio", "width_mult")),
    # Precision does not change what a training step computes (int8 stages are simulated at
    # evaluation only), so it joins with the last phase, where every dimension is elastic.
    ("pyramid", ("num_stages", "stride", "resolution", "precision")),
)


@dataclass(frozen=True, kw_only=True)
class Phase:
    """``epochs`` epochs at peak learning rate ``lr`` (cosine decay within the phase)."""

    name: str
    epochs: int
    lr: float
    elastic: frozenset[str]
    reorder_channels: bool = False  # sort channels by importance when the phase starts

    def __post_init__(self) -> None:
        object.__setattr__(self, "elastic", frozenset(self.elastic))
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise UserError(f"phase {self.name!r}: epochs must be a positive integer")
        if not self.lr > 0:
            raise UserError(f"phase {self.name!r}: lr must be positive, got {self.lr}")
        unknown = sorted(self.elastic - set(DIMENSIONS))
        if unknown:
            raise UserError(
                f"phase {self.name!r}: unknown elastic dimensions {unknown}; use {list(DIMENSIONS)}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "epochs": self.epochs,
            "lr": self.lr,
            "elastic": sorted(self.elastic),
            "reorder_channels": self.reorder_channels,
        }


@dataclass(frozen=True)
class Schedule:
    """Phases run in order; epochs are counted across the whole schedule."""

    phases: tuple[Phase, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "phases", tuple(self.phases))
        if not self.phases:
            raise UserError("a schedule needs at least one phase")

    @property
    def total_epochs(self) -> int:
        return sum(phase.epochs for phase in self.phases)

    def phase_at(self, epoch: int) -> tuple[Phase, int]:
        """The phase that global ``epoch`` (0-based) belongs to, and the epoch within it."""
        start = 0
        for phase in self.phases:
            if epoch < start + phase.epochs:
                return phase, epoch - start
            start += phase.epochs
        raise IndexError(f"epoch {epoch} is past the schedule's {self.total_epochs} epochs")

    def to_dict(self) -> dict[str, Any]:
        return {"phases": [phase.to_dict() for phase in self.phases]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schedule:
        try:
            return cls(tuple(Phase(**phase) for phase in data["phases"]))
        except (KeyError, TypeError) as exc:
            raise UserError(f"malformed schedule: {exc}") from None


def _progressive(epochs: int, lr: float, warmup: int) -> Schedule:
    """Delayed progressive shrinking: ``warmup`` epochs of the largest subnet, then the four
    shrinking phases, each adding dimensions, splitting the remaining epochs evenly."""
    phases = []
    if warmup:
        phases.append(Phase(name="full", epochs=warmup, lr=lr, elastic=frozenset()))
    remaining = epochs - warmup
    if remaining < len(_SHRINK_ORDER):
        raise UserError(
            f"progressive shrinking needs at least {len(_SHRINK_ORDER) + warmup} epochs "
            f"({warmup} warm-up + one per phase), got {epochs}"
        )
    elastic: set[str] = set()
    for index, (name, dims) in enumerate(_SHRINK_ORDER):
        elastic.update(dims)
        share = remaining // len(_SHRINK_ORDER) + (index < remaining % len(_SHRINK_ORDER))
        phases.append(
            Phase(
                name=name,
                epochs=share,
                lr=lr,
                elastic=frozenset(elastic),
                reorder_channels=name == "width",
            )
        )
    return Schedule(tuple(phases))


def _all_at_once(epochs: int, lr: float, warmup: int) -> Schedule:
    """``warmup`` epochs of the largest subnet, then every dimension elastic at once."""
    phases = []
    if warmup:
        phases.append(Phase(name="full", epochs=warmup, lr=lr, elastic=frozenset()))
    if epochs - warmup < 1:
        raise UserError(f"need more epochs ({epochs}) than warm-up epochs ({warmup})")
    phases.append(
        Phase(
            name="all",
            epochs=epochs - warmup,
            lr=lr,
            elastic=frozenset(DIMENSIONS),
            reorder_channels=warmup > 0,
        )
    )
    return Schedule(tuple(phases))


SCHEDULES = {"progressive": _progressive, "all": _all_at_once}


def make_schedule(kind: str, *, epochs: int, lr: float, warmup: int = 0) -> Schedule:
    """A named schedule: ``progressive`` (shrinking) or ``all`` (every dimension at once)."""
    if kind not in SCHEDULES:
        raise UserError(f"unknown schedule {kind!r}; choose one of {', '.join(SCHEDULES)}")
    if isinstance(warmup, bool) or warmup < 0:
        raise UserError(f"warm-up epochs must be >= 0, got {warmup}")
    return SCHEDULES[kind](epochs, lr, warmup)
