"""Squeeze-excitation and the activation chosen per stage in the supernet: no weights of their
own, the same function as the static network, their own latency-table keys, and a sub-space
without them loads the parent's weights."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

import search_spaces as ss
from nas.predictors import arch_operators, space_operators
from nas.supernet import Supernet, reorder_channels
from nas.supernet.extract import extract_network
from nas.train.checkpoint import load_supernet

from .conftest import images, randomize


def _with_forms(space: ss.Space) -> ss.Space:
    """``space`` whose every stage chooses squeeze-excitation (on first) and activation
    (hard-swish first)."""
    stages = tuple(
        dataclasses.replace(
            stage, se=ss.Choice((True, False)), activation=ss.Choice(("hswish", "relu"))
        )
        for stage in space.stages
    )
    return dataclasses.replace(space, name=f"{space.name}-forms", stages=stages)


@pytest.fixture(scope="module")
def space() -> ss.Space:
    return _with_forms(ss.get_space("tiny"))


def _forms(arch: ss.Arch, se: bool, activation: str) -> ss.Arch:
    stages = tuple(dataclasses.replace(s, se=se, activation=activation) for s in arch.stages)
    return dataclasses.replace(arch, stages=stages)


def test_the_choices_add_no_weights(space: ss.Space) -> None:
    fixed = ss.float_view(space)  # SE on and hard-swish everywhere: the first values
    assert set(Supernet(space).state_dict()) == set(Supernet(fixed).state_dict())


def test_the_supernet_computes_what_the_extracted_network_does(space: ss.Space) -> None:
    torch.manual_seed(0)
    supernet = Supernet(space)
    randomize(supernet, seed=1)
    rng = np.random.default_rng(0)
    archs = [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(12)]
    assert {a.stages[0].se for a in archs} == {True, False}
    for arch in archs:
        supernet.set_active(arch)
        x = images(space, arch)
        with torch.no_grad():
            expected = supernet(x)
            static = extract_network(supernet, arch).eval()
            assert torch.allclose(static(x), expected, atol=1e-5), arch
        has_se = [b.se is not None for b in static.blocks]
        shapes = ss.layer_shapes(space, arch).blocks
        assert has_se == [s.se_channels > 0 for s in shapes]


def test_each_choice_changes_the_function_and_reordering_keeps_it(space: ss.Space) -> None:
    torch.manual_seed(0)
    supernet = Supernet(space)
    randomize(supernet, seed=2)
    largest = space.largest()
    forms = [_forms(largest, se, act) for se in (True, False) for act in ("hswish", "relu")]
    x = images(space, largest)
    before = []
    with torch.no_grad():
        for arch in forms:
            supernet.set_active(arch)
            before.append(supernet(x))
        for i in range(len(before)):
            for j in range(i):
                assert not torch.allclose(before[i], before[j])
        reorder_channels(supernet)
        for arch, expected in zip(forms, before, strict=True):
            supernet.set_active(arch)
            assert torch.allclose(supernet(x), expected, atol=1e-4)


def test_latency_table_keys_follow_the_choices(space: ss.Space) -> None:
    largest = space.largest()

    def keys(arch: ss.Arch) -> set[str]:
        return {op.key for op in arch_operators(space, arch) if op.kind == "block"}

    assert keys(largest).isdisjoint(keys(_forms(largest, False, "hswish")))
    assert keys(largest).isdisjoint(keys(_forms(largest, True, "relu")))
    every = {op.key for op in space_operators(space)}
    rng = np.random.default_rng(3)
    for arch in [space.sample(rng) for _ in range(30)]:
        assert {op.key for op in arch_operators(space, arch)} <= every


def test_a_sub_space_without_se_loads_the_parent_supernet(space: ss.Space, tmp_path: Path) -> None:
    from nas.train.checkpoint import save_checkpoint

    torch.manual_seed(0)
    supernet = Supernet(space)
    randomize(supernet, seed=4)
    save_checkpoint(tmp_path, model=supernet, optimizer=None, space=space, epoch=1, extra={})
    plain = dataclasses.replace(
        space,
        stages=tuple(
            dataclasses.replace(s, se=ss.Choice((False,)), activation=ss.Choice(("relu",)))
            for s in space.stages
        ),
    )
    child, _ = load_supernet(tmp_path, space=plain)
    arch = plain.largest()
    same = _forms(arch, False, "relu")
    x = images(space, arch)
    supernet.eval().set_active(same)
    child.set_active(arch)
    with torch.no_grad():
        assert torch.allclose(child(x), supernet(x), atol=1e-6)
