"""Images per epoch, the time budget and the stand-alone recipe."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

import search_spaces as ss
from nas.cli import main
from nas.data import Dataset, load_dataset
from nas.errors import UserError
from nas.train import (
    Recipe,
    TrainConfig,
    images_for_budget,
    load_checkpoint,
    make_schedule,
    parse_duration,
    train_from_scratch,
    train_supernet,
)

SPACE = ss.get_space("tiny")
CONFIG = TrainConfig(
    batch_size=32, num_random=1, calibration_size=64, threads=1, images_per_epoch=96
)


@pytest.fixture(scope="module")
def small_digits() -> Dataset:
    data = load_dataset("digits", resolution=20, seed=0)
    return dataclasses.replace(data, x_train=data.x_train[:256], y_train=data.y_train[:256])


@pytest.mark.parametrize(
    ("text", "seconds"), [("600", 600.0), ("90s", 90.0), ("10m", 600.0), ("1.5h", 5400.0)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "abc", "-5m", "10 parsecs", "", "0s"])
def test_bad_durations_are_one_line_errors(text: str) -> None:
    with pytest.raises(UserError) as error:
        parse_duration(text)
    assert "\n" not in str(error.value) and "10m" in str(error.value)


def test_an_epoch_trains_on_images_per_epoch(small_digits: Dataset, tmp_path: Path) -> None:
    steps: list[int] = []
    train_supernet(
        SPACE,
        small_digits,
        make_schedule("all", epochs=2, lr=0.1, warmup=1),
        CONFIG,
        tmp_path / "run",
        on_step=lambda result: steps.append(result.steps),
    )
    assert set(steps) == {3}  # 96 images in batches of 32
    metadata = load_checkpoint(tmp_path / "run").metadata
    assert metadata["config"]["images_per_epoch"] == 96
    recipe = Recipe.from_checkpoint(metadata)
    assert (recipe.epochs, recipe.batch_size, recipe.images_per_epoch) == (2, 32, 96)


def test_budget_sizes_the_epochs(small_digits: Dataset) -> None:
    schedule = make_schedule("all", epochs=2, lr=0.1, warmup=1)
    with torch.random.fork_rng():
        generous = images_for_budget(SPACE, small_digits, schedule, CONFIG, 3600.0)
    assert generous == len(small_digits.y_train)  # never more than the train split
    with pytest.raises(UserError, match="too short"):
        images_for_budget(SPACE, small_digits, schedule, CONFIG, 0.001)


def test_train_from_scratch_is_seeded(small_digits: Dataset) -> None:
    recipe = Recipe(epochs=1, batch_size=32, images_per_epoch=64)
    arch = SPACE.smallest()
    first = train_from_scratch(SPACE, arch, small_digits, recipe, seed=3)
    again = train_from_scratch(SPACE, arch, small_digits, recipe, seed=3)
    other = train_from_scratch(SPACE, arch, small_digits, recipe, seed=4)
    same = all(
        torch.equal(a, b)
        for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True)
    )
    differs = any(
        not torch.equal(a, b)
        for a, b in zip(first.state_dict().values(), other.state_dict().values(), strict=True)
    )
    assert same and differs


@pytest.mark.parametrize("budget", ["0", "abc", "-1m"])
def test_cli_refuses_a_bad_budget_and_writes_nothing(
    budget: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code = main(
        ["train", "--space", "tiny", "--data", "digits", f"--budget={budget}", "--out", str(out)]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "budget" in err
    assert not out.exists()


def test_cli_refuses_negative_images_per_epoch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--space",
            "tiny",
            "--data",
            "digits",
            "--images-per-epoch",
            "-1",
            "--out",
            str(out),
        ]
    )
    assert code == 2 and "--images-per-epoch" in capsys.readouterr().err
    assert not out.exists()


def test_cli_data_reports_missing_fashion_mnist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NAS_FASHION_MNIST", str(tmp_path / "absent"))
    code = main(["data", "fashion-mnist"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "NAS_FASHION_MNIST" in err
