"""A float-only (or inverted-residual-only) view of a joint space searches on the joint
space's trained supernet: the same weights, no new training."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

import search_spaces as ss
from nas.data import load_dataset
from nas.errors import UserError
from nas.search.workdir import Workdir, ensure_supernet
from nas.train import TrainConfig, load_supernet, make_schedule, train_supernet


def _joint(space: ss.Space) -> ss.Space:
    stages = tuple(
        dataclasses.replace(
            stage,
            precision=ss.Choice(("fp32", "int8")),
            block_type=ss.Choice(("mbconv", "fused")),
        )
        for stage in space.stages
    )
    return dataclasses.replace(space, name=f"{space.name}-joint", stages=stages)


def test_which_spaces_are_sub_spaces() -> None:
    fused = ss.get_space("mbv3-28-fused")
    assert ss.subspace_problem(ss.float_view(fused), fused) is None
    assert ss.subspace_problem(fused, fused) is None
    assert ss.subspace_problem(ss.get_space("mbv3-28"), ss.get_space("mbv3-28-int8")) is None
    problem = ss.subspace_problem(fused, ss.float_view(fused))
    assert problem is not None and "stages[0].precision" in problem
    problem = ss.subspace_problem(ss.get_space("mbv3-28"), fused)
    assert problem is not None and "stages" in problem
    wider = dataclasses.replace(ss.float_view(fused), resolution=ss.Choice((20, 24, 28)))
    problem = ss.subspace_problem(wider, fused)
    assert problem is not None and "resolution" in problem


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[ss.Space, Path]:
    space = _joint(ss.get_space("tiny"))
    data = load_dataset("digits", resolution=20, seed=0)
    data = dataclasses.replace(data, x_train=data.x_train[:128], y_train=data.y_train[:128])
    root = tmp_path_factory.mktemp("joint")
    config = TrainConfig(batch_size=64, num_random=1, calibration_size=64, threads=1)
    schedule = make_schedule("all", epochs=1, lr=0.1)
    train_supernet(space, data, schedule, config, root / f"supernet-{space.name}")
    return space, root


def test_a_sub_space_loads_the_weights_it_uses(trained: tuple[ss.Space, Path]) -> None:
    space, root = trained
    directory = root / f"supernet-{space.name}"
    joint, _ = load_supernet(directory)
    floats = ss.float_view(space)
    sub, _ = load_supernet(directory, space=floats)
    assert sub.space == floats
    assert set(sub.state_dict()) < set(joint.state_dict())
    rng = np.random.default_rng(0)
    x = torch.randn(3, 1, 20, 20)
    for _ in range(5):
        arch = floats.sample(rng)
        joint.set_active(arch)
        sub.set_active(arch)
        with torch.no_grad():
            assert torch.equal(sub(x), joint(x))
    with pytest.raises(UserError, match="cannot use"):
        load_supernet(directory, space=ss.get_space("mbv3-28"))


def test_a_search_work_directory_takes_a_finished_parent_supernet(
    trained: tuple[ss.Space, Path], tmp_path: Path
) -> None:
    space, root = trained
    floats = ss.float_view(space)
    (tmp_path / f"supernet-{floats.name}").symlink_to(root / f"supernet-{space.name}")
    data = load_dataset("digits", resolution=20, seed=0)
    supernet = ensure_supernet(floats, data, Workdir(tmp_path, floats.name), seed=0, device="cpu")
    assert supernet.space == floats
    other = dataclasses.replace(
        ss.get_space("tiny"), name="tiny-other", resolution=ss.Choice((20,))
    )
    (tmp_path / f"supernet-{other.name}").symlink_to(root / f"supernet-{space.name}")
    with pytest.raises(UserError, match="another space"):
        ensure_supernet(other, data, Workdir(tmp_path, other.name), seed=0, device="cpu")
