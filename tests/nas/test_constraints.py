from __future__ import annotations

import pytest

from nas.errors import UserError
from nas.search.targets import parse_constraint, parse_constraints


@pytest.mark.parametrize(
    ("text", "metric", "op", "value"),
    [
        ("latency<10ms", "latency", "<", 10.0),
        ("latency<=2.5ms", "latency", "<=", 2.5),
        ("latency < 500us", "latency", "<", 0.5),
        ("latency<0.01s", "latency", "<", 10.0),
        ("params<1M", "params", "<", 1e6),
        ("params<250K", "params", "<", 2.5e5),
        ("flops<50M", "flops", "<", 5e7),
        ("flops<=1.5G", "flops", "<=", 1.5e9),
        ("size<2MB", "size", "<", 2e6),
        ("size<1MiB", "size", "<", 1024.0**2),
        ("accuracy>0.95", "accuracy", ">", 0.95),
        ("accuracy>=97%", "accuracy", ">=", 0.97),
    ],
)
def test_parse_targets(text: str, metric: str, op: str, value: float) -> None:
    constraint = parse_constraint(text)
    assert (constraint.metric, constraint.op) == (metric, op)
    assert constraint.value == pytest.approx(value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("latency<", "malformed"),
        ("latency<10parsecs", "unknown unit 'parsecs'"),
        ("speed<10ms", "unknown metric 'speed'"),
        ("latency=10ms", "malformed"),
        ("accuracy>1.5", "between 0 and 1"),
        ("params<0", "positive"),
        ("flops<50MB", "unknown unit"),
    ],
)
def test_malformed_targets(text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_constraint(text)


def test_several_targets_and_contradictions() -> None:
    parsed = parse_constraints(["latency<10ms,params<1M", "accuracy>0.9"])
    assert [c.metric for c in parsed] == ["latency", "params", "accuracy"]
    assert parse_constraints(["latency>1ms,latency<5ms"])[1].satisfied(4.0)
    with pytest.raises(UserError, match="contradict"):
        parse_constraints(["latency<1ms,latency>5ms"])
    with pytest.raises(UserError, match="contradict"):
        parse_constraints(["latency<2ms", "latency>=2ms"])
    assert len(parse_constraints(["latency<=2ms", "latency>=2ms"])) == 2
    with pytest.raises(UserError, match="empty target"):
        parse_constraints([" , "])


def test_satisfied_and_violation() -> None:
    constraint = parse_constraint("latency<10ms")
    assert constraint.satisfied(9.9) and not constraint.satisfied(10.0)
    assert constraint.violation(12.0) == pytest.approx(2.0)
    assert constraint.violation(3.0) == 0.0
