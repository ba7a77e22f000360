"""Targets such as ``latency<10ms``, ``params<1M``, ``flops<=50M``, ``size<2MB``, ``accuracy>0.95``.

A target names a metric, a comparison and a value with a unit; values are stored in each
metric's base unit (milliseconds, parameters, multiply-adds, bytes, fraction). Several targets
may be given at once; targets on the same metric must leave a non-empty range.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from nas.errors import UserError

__all__ = [
    "METRICS",
    "Constraint",
    "check_consistent",
    "parse_constraint",
    "parse_constraints",
    "uses_metric",
]

_COUNT_UNITS = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "B": 1e9}
METRICS: Mapping[str, Mapping[str, float]] = {
    "latency": {"ms": 1.0, "s": 1e3, "us": 1e-3, "µs": 1e-3},
    "params": _COUNT_UNITS,
    "flops": _COUNT_UNITS,
    "size": {"B": 1.0, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 1024.0, "MiB": 1024.0**2},
    "accuracy": {"": 1.0, "%": 0.01},
}
_UNIT_HINT = {
    "latency": "ms, s or us (e.g. latency<10ms)",
    "params": "none, K, M or G (e.g. params<1M)",
    "flops": "none, K, M or G (e.g. flops<50M)",
    "size": "B, KB, MB, GB, KiB or MiB (e.g. size<2MB)",
    "accuracy": "a fraction or % (e.g. accuracy>0.95 or accuracy>95%)",
}
_OPERATORS: Mapping[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_PATTERN = re.compile(
    r"^\s*(?P<metric>[a-z_]+)\s*(?P<op><=|>=|<|>)\s*"
    r"(?P<number>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(?P<unit>[A-Za-zµ%]*)\s*$"
)


@dataclass(frozen=True, kw_only=True)
class Constraint:
    """``metric op value``, with ``value`` in the metric's base unit."""

    metric: str
    op: str
    value: float
    text: str = ""

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise UserError(f"unknown metric {self.metric!r}; use one of {', '.join(METRICS)}")
        if self.op not in _OPERATORS:
            raise UserError(f"unknown comparison {self.op!r}; use <, <=, > or >=")
        if not math.isfinite(self.value):
            raise UserError(f"target value must be finite, got {self.value}")

    @property
    def is_upper_bound(self) -> bool:
        return self.op in ("<", "<=")

    def satisfied(self, measured: float) -> bool:
        return _OPERATORS[self.op](measured, self.value)

    def violation(self, measured: float) -> float:
        """How far ``measured`` is on the wrong side of the bound (0 when satisfied)."""
        if self.satisfied(measured):
            return 0.0
        return abs(measured - self.value)

    def __str__(self) -> str:
        """The target as given, else in the metric's base unit (which parses back)."""
        if self.text:
            return self.text
        unit = next(name for name, scale in METRICS[self.metric].items() if scale == 1.0)
        return f"{self.metric}{self.op}{self.value:.12g}{unit}"


def parse_constraint(text: str) -> Constraint:
    """Parse one target; errors say what is wrong and give an example."""
    match = _PATTERN.match(text)
    if match is None:
        word = re.match(r"\s*([a-z_]+)", text)
        if word and word.group(1) not in METRICS:
            raise UserError(
                f"target {text!r}: unknown metric {word.group(1)!r}; use one of "
                f"{', '.join(METRICS)}"
            )
        raise UserError(
            f"target {text!r} is malformed; write METRIC OP VALUE[UNIT], e.g. latency<10ms, "
            "params<1M, flops<=50M, size<2MB, accuracy>0.95"
        )
    metric, op, unit = match.group("metric"), match.group("op"), match.group("unit")
    if metric not in METRICS:
        raise UserError(
            f"target {text!r}: unknown metric {metric!r}; use one of {', '.join(METRICS)}"
        )
    units = METRICS[metric]
    if unit not in units:
        raise UserError(
            f"target {text!r}: unknown unit {unit!r} for {metric}; use {_UNIT_HINT[metric]}"
        )
    value = float(match.group("number")) * units[unit]
    if metric == "accuracy" and not 0.0 <= value <= 1.0:
        raise UserError(f"target {text!r}: accuracy must be between 0 and 1 (or 0% and 100%)")
    if metric != "accuracy" and value <= 0:
        raise UserError(f"target {text!r}: {metric} bound must be positive")
    return Constraint(metric=metric, op=op, value=value, text=text.strip())


def check_consistent(constraints: Iterable[Constraint]) -> None:
    """Raise when targets on one metric leave no possible value (e.g. latency<1ms,latency>5ms)."""
    by_metric: dict[str, list[Constraint]] = {}
    for constraint in constraints:
        by_metric.setdefault(constraint.metric, []).append(constraint)
    for metric, group in by_metric.items():
        uppers = [c for c in group if c.is_upper_bound]
        lowers = [c for c in group if not c.is_upper_bound]
        if not uppers or not lowers:
            continue
        upper = min(uppers, key=lambda c: (c.value, c.op == "<"))
        lower = max(lowers, key=lambda c: (c.value, c.op == ">"))
        strict = upper.op == "<" or lower.op == ">"
        if lower.value > upper.value or (strict and lower.value == upper.value):
            raise UserError(
                f"targets {lower} and {upper} contradict each other: no {metric} meets both"
            )


def parse_constraints(texts: Iterable[str]) -> tuple[Constraint, ...]:
    """Parse targets given as separate strings or comma-separated within one string."""
    parsed: list[Constraint] = []
    for text in texts:
        pieces = [piece for piece in text.split(",") if piece.strip()]
        if not pieces:
            raise UserError('empty target; write e.g. --target "latency<10ms"')
        parsed.extend(parse_constraint(piece) for piece in pieces)
    check_consistent(parsed)
    return tuple(parsed)


def uses_metric(metric: str, objectives: Iterable[str], constraints: Iterable[Constraint]) -> bool:
    """Whether a search needs ``metric``: as an objective or in a target."""
    return metric in objectives or any(c.metric == metric for c in constraints)
