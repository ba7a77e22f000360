"""Every built-in space and a user's YAML space pass the shipped suite
:class:`nas.testing.pytest_suites.SpaceSuite`."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import search_spaces as ss
from nas.testing.pytest_suites import SpaceSuite
from nas.testing.spaces import check_samples_are_valid, check_space
from search_spaces import Arch, Space

from .conftest import micro_space

USER_YAML = "user-yaml"


@pytest.fixture(params=[*ss.SPACE_NAMES, USER_YAML])
def space(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Space:
    if request.param != USER_YAML:
        return ss.get_space(request.param)
    path = tmp_path_factory.mktemp("user") / "micro.yaml"
    ss.save_space(micro_space(), path)
    return ss.get_space(str(path))


class TestSpaces(SpaceSuite):
    """The whole suite, once per built-in space and once for a space read from YAML."""


class _AlwaysLargest(Space):
    """A space whose sampler ignores its random generator."""

    def sample(self, rng: np.random.Generator) -> Arch:
        return self.largest()


def test_check_space_passes_a_good_space_and_fails_a_broken_one() -> None:
    micro = micro_space()
    check_space(micro)
    broken = _AlwaysLargest(**{f.name: getattr(micro, f.name) for f in dataclasses.fields(micro)})
    with pytest.raises(AssertionError):
        check_samples_are_valid(broken)
