"""Every registered strategy obeys the Strategy protocol (as Optuna tests all its samplers):
the shipped suite :class:`nas.testing.pytest_suites.StrategySuite` over :data:`STRATEGIES`."""

from __future__ import annotations

import pytest

from nas.strategies import STRATEGIES
from nas.testing.pytest_suites import StrategySuite, StrategyUnderTest
from search_spaces import Space, get_space

from .conftest import build, profile

NAMES = sorted(STRATEGIES)


@pytest.fixture(params=NAMES)
def strategy_factory(request: pytest.FixtureRequest) -> StrategyUnderTest:
    name: str = request.param
    return StrategyUnderTest(
        make=lambda space, seed: build(name, space, seed), batch=profile(name).batch
    )


class TestRegisteredStrategies(StrategySuite):
    """The whole suite, once per registered strategy."""


@pytest.mark.parametrize("name", NAMES)
def test_registered_name_is_the_strategy_kind(name: str) -> None:
    tiny: Space = get_space("tiny")
    assert build(name, tiny, seed=0).kind == name
