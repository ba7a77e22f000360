"""Properties of the target parser (:mod:`nas.search.targets`)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nas.errors import UserError
from nas.search.targets import METRICS, Constraint, parse_constraint, parse_constraints

OPS = ["<", "<=", ">", ">="]


@st.composite
def targets(draw: st.DrawFn) -> tuple[str, str, str, float, str]:
    """A valid target's text with random spacing, and its metric, op, value and unit."""
    metric = draw(st.sampled_from(sorted(METRICS)))
    unit = draw(st.sampled_from(sorted(METRICS[metric])))
    scale = METRICS[metric][unit]
    upper = 1.0 / scale if metric == "accuracy" else 1e12
    value = draw(st.floats(min_value=1e-6, max_value=upper, allow_nan=False))
    if metric == "accuracy":
        value = min(value, upper)
    number = draw(st.sampled_from([repr(value), f"{value:.6f}", f"{value:e}", f"{value:.3g}"]))
    op = draw(st.sampled_from(OPS))
    space = st.sampled_from(["", " ", "  ", "\t"])
    text = (
        f"{draw(space)}{metric}{draw(space)}{op}{draw(space)}{number}{draw(space)}{unit}"
        f"{draw(space)}"
    )
    return text, metric, op, float(number), unit


@settings(max_examples=300, deadline=None)
@given(targets())
def test_random_valid_targets_parse(target: tuple[str, str, str, float, str]) -> None:
    text, metric, op, number, unit = target
    try:
        parsed = parse_constraint(text)
    except UserError as exc:  # only a value that rounds out of range may be refused
        value = number * METRICS[metric][unit]
        assert value <= 0 or (metric == "accuracy" and value > 1), str(exc)
        return
    assert (parsed.metric, parsed.op) == (metric, op)
    assert parsed.value == pytest.approx(number * METRICS[metric][unit], rel=1e-12)
    assert str(parsed) == text.strip()


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(METRICS)),
    st.sampled_from(OPS),
    st.floats(min_value=1e-9, max_value=1e15, allow_nan=False),
)
def test_parses_what_it_formats(metric: str, op: str, value: float) -> None:
    if metric == "accuracy":
        value = min(value, 1.0)
    constraint = Constraint(metric=metric, op=op, value=value)
    parsed = parse_constraint(str(constraint))
    assert (parsed.metric, parsed.op) == (metric, op)
    assert parsed.value == pytest.approx(value, rel=1e-11)
    assert parse_constraint(str(parsed)) == parsed


@settings(max_examples=500, deadline=None)
@given(
    st.text(max_size=40)
    | st.from_regex(r"[a-z]{0,9}\s*[<>=!]{0,3}\s*[-+.0-9eE]{0,8}[a-zA-Zµ%]{0,4}")
)
def test_junk_raises_only_the_projects_error(text: str) -> None:
    try:
        parsed = parse_constraint(text)
    except UserError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert parsed.metric in METRICS and math.isfinite(parsed.value)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="latency<>=0123456789.msKMGB%,", max_size=20), max_size=4))
def test_several_targets_raise_only_the_projects_error(texts: list[str]) -> None:
    try:
        parsed = parse_constraints(texts)
    except UserError:
        return
    assert all(isinstance(c, Constraint) for c in parsed)
