"""The conformance suites as pytest test classes, in the manner of optuna's
``optuna/testing/pytest_samplers.py``. This module imports pytest (the ``dev`` extra);
``import nas`` never imports it.

Subclass a suite as ``Test...`` in a test module and give it its fixture:

- :class:`StrategySuite` needs ``strategy_factory``: a :class:`StrategyUnderTest` (or a plain
  ``make(space, seed) -> Strategy``); ``strategy_space`` defaults to the "tiny" space;
- :class:`PredictorSuite` needs ``predictor_case``: a
  :class:`~nas.testing.predictors.PredictorCase`;
- :class:`SpaceSuite` needs ``space``: a :class:`search_spaces.Space`.

A parametrised fixture (``@pytest.fixture(params=...)``) runs a suite over many items, as the
project's own tests do over every registered strategy, predictor kind and space.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from nas.testing import predictors as predictor_checks
from nas.testing import spaces as space_checks
from nas.testing import strategies as strategy_checks
from nas.testing.predictors import PredictorCase
from nas.testing.strategies import StrategyFactory
from search_spaces import Space, get_space

__all__ = ["PredictorSuite", "SpaceSuite", "StrategySuite", "StrategyUnderTest"]


@dataclass(frozen=True)
class StrategyUnderTest:
    """A strategy factory and the batch size to ask for (1 suits strategies that are slow with
    several trials pending, such as Optuna's GP sampler)."""

    make: StrategyFactory
    batch: int = 4


def _case(strategy_factory: StrategyUnderTest | StrategyFactory) -> StrategyUnderTest:
    if isinstance(strategy_factory, StrategyUnderTest):
        return strategy_factory
    return StrategyUnderTest(make=strategy_factory)


class StrategySuite:
    """Every check of :mod:`nas.testing.strategies` as a test."""

    @pytest.fixture
    def strategy_space(self) -> Space:
        return get_space("tiny")

    def test_ask_tell(self, strategy_factory: StrategyUnderTest, strategy_space: Space) -> None:
        case = _case(strategy_factory)
        strategy_checks.check_ask_tell(case.make, strategy_space, batch=case.batch)

    def test_tell_rejects_malformed_input(
        self, strategy_factory: StrategyUnderTest, strategy_space: Space
    ) -> None:
        make = _case(strategy_factory).make
        strategy_checks.check_tell_rejects_malformed_input(make, strategy_space)

    def test_seeded_determinism(
        self, strategy_factory: StrategyUnderTest, strategy_space: Space
    ) -> None:
        case = _case(strategy_factory)
        strategy_checks.check_seeded_determinism(case.make, strategy_space, batch=case.batch)

    def test_state_round_trip(
        self, strategy_factory: StrategyUnderTest, strategy_space: Space
    ) -> None:
        case = _case(strategy_factory)
        strategy_checks.check_state_round_trip(case.make, strategy_space, batch=case.batch)

    def test_state_of_another_kind_or_space_is_refused(
        self, strategy_factory: StrategyUnderTest, strategy_space: Space
    ) -> None:
        make = _case(strategy_factory).make
        strategy_checks.check_state_of_another_kind_or_space_is_refused(make, strategy_space)

    def test_infeasible_points_are_never_preferred(
        self, strategy_factory: StrategyUnderTest, strategy_space: Space
    ) -> None:
        make = _case(strategy_factory).make
        strategy_checks.check_infeasible_points_are_never_preferred(make, strategy_space)

    def test_front_is_feasible_after_a_constrained_search(
        self, strategy_factory: StrategyUnderTest, strategy_space: Space
    ) -> None:
        case = _case(strategy_factory)
        strategy_checks.check_front_is_feasible_after_a_constrained_search(
            case.make, strategy_space, batch=case.batch
        )


class PredictorSuite:
    """Every check of :mod:`nas.testing.predictors` as a test."""

    def test_fit_predict(self, predictor_case: PredictorCase) -> None:
        predictor_checks.check_fit_predict(predictor_case)

    def test_predict_genomes_equals_predict(self, predictor_case: PredictorCase) -> None:
        predictor_checks.check_predict_genomes(predictor_case.fitted(), predictor_case.probe)

    def test_dict_round_trip(self, predictor_case: PredictorCase) -> None:
        predictor_checks.check_dict_round_trip(predictor_case.fitted(), predictor_case.probe)

    def test_file_round_trip(self, predictor_case: PredictorCase, tmp_path: Path) -> None:
        predictor = predictor_case.fitted()
        predictor_checks.check_file_round_trip(predictor, predictor_case.probe, tmp_path)


class SpaceSuite:
    """Every check of :mod:`nas.testing.spaces` as a test."""

    def test_sampling_is_seeded(self, space: Space) -> None:
        space_checks.check_sampling_is_seeded(space)

    def test_samples_are_valid(self, space: Space) -> None:
        space_checks.check_samples_are_valid(space)

    def test_arch_json_round_trip(self, space: Space) -> None:
        space_checks.check_arch_json_round_trip(space)

    def test_space_round_trip(self, space: Space, tmp_path: Path) -> None:
        space_checks.check_space_round_trip(space, tmp_path)

    def test_genome_round_trip(self, space: Space) -> None:
        space_checks.check_genome_round_trip(space)

    def test_mutation_and_crossover_stay_in_the_space(self, space: Space) -> None:
        space_checks.check_mutation_and_crossover_stay_in_the_space(space)

    def test_extremes_bound_flops_and_params(self, space: Space) -> None:
        space_checks.check_extremes_bound_flops_and_params(space)
