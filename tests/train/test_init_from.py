"""``nas train --init-from``: a supernet starts from a trained one of its space or of a space it
narrows (a few-shot part: fewer stages), taking the leading channels where the parent has more."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

import search_spaces as ss
from nas.data import load_dataset
from nas.errors import UserError
from nas.supernet import Supernet
from nas.train import (
    CHECKPOINT_FILE,
    TrainConfig,
    init_weights,
    load_supernet,
    make_schedule,
    train_supernet,
)

CONFIG = TrainConfig(batch_size=64, num_random=1, calibration_size=64, threads=1)


def _data():  # type: ignore[no-untyped-def]
    data = load_dataset("digits", resolution=20, seed=0)
    return dataclasses.replace(data, x_train=data.x_train[:128], y_train=data.y_train[:128])


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("parent") / "supernet"
    schedule = make_schedule("all", epochs=1, lr=0.1)
    train_supernet(ss.get_space("tiny"), _data(), schedule, CONFIG, directory)
    return directory


def _two_stages() -> ss.Space:
    space = ss.get_space("tiny")
    return dataclasses.replace(space, name="tiny-2", num_stages=ss.Choice((2,)))


def test_a_narrower_space_starts_from_the_parents_leading_channels(parent: Path) -> None:
    weights, _ = load_supernet(parent)
    parent_state = weights.state_dict()
    child = Supernet(_two_stages())
    init_weights(child, parent, "cpu")
    state = child.state_dict()
    assert "stages.2.blocks.0.depthwise_bn.weight" in parent_state
    assert "stages.2.blocks.0.depthwise_bn.weight" not in state
    sliced = 0
    for key, tensor in state.items():
        source = parent_state[key]
        if source.shape != tensor.shape:
            sliced += 1
            source = source[tuple(slice(0, n) for n in tensor.shape)]
        assert torch.equal(tensor, source), key
    assert sliced >= 1  # the head reads fewer input channels with two stages


def test_fine_tuning_a_part_runs_from_the_parent(parent: Path, tmp_path: Path) -> None:
    config = dataclasses.replace(CONFIG, init_from=str(parent))
    schedule = make_schedule("all", epochs=1, lr=0.01, warmup=0)
    train_supernet(_two_stages(), _data(), schedule, config, tmp_path / "part")
    part, checkpoint = load_supernet(tmp_path / "part")
    assert checkpoint.metadata["config"]["init_from"] == str(parent)
    assert checkpoint.space.num_stages.values == (2,)
    assert part.space.name == "tiny-2"


def test_a_missing_parent_fails_before_anything_is_written(tmp_path: Path) -> None:
    config = dataclasses.replace(CONFIG, init_from=str(tmp_path / "nowhere"))
    schedule = make_schedule("all", epochs=1, lr=0.01, warmup=0)
    with pytest.raises(UserError):
        train_supernet(ss.get_space("tiny"), _data(), schedule, config, tmp_path / "out")
    assert not (tmp_path / "out" / CHECKPOINT_FILE).exists()


def test_a_wider_space_is_refused_in_one_line(parent: Path) -> None:
    space = ss.get_space("tiny")
    stages = tuple(
        dataclasses.replace(stage, kernel_size=ss.Choice((3, 7))) for stage in space.stages
    )
    wider = dataclasses.replace(space, name="tiny-k7", stages=stages)
    with pytest.raises(UserError, match="same kernels") as caught:
        init_weights(Supernet(wider), parent, "cpu")
    assert "\n" not in str(caught.value)
