"""load_dataset: the built-in digits, option checks and format detection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nas.data import DATASET_NAMES, Dataset, LoadOptions, load_dataset
from nas.errors import DataError, UserError


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits", resolution=32, seed=0)


def test_builtin_names() -> None:
    assert DATASET_NAMES == ("fashion-mnist", "digits")


def test_digits_at_32(digits: Dataset) -> None:
    sizes = (len(digits.y_train), len(digits.y_val), len(digits.y_test))
    assert sum(sizes) == 1797
    assert sizes == (1257, 180, 360)
    assert digits.name == "digits"
    assert digits.num_classes == 10 and digits.class_names == tuple(str(d) for d in range(10))
    assert digits.x_train.shape == (1257, 1, 32, 32)
    assert digits.x_train.dtype == np.float32 and digits.y_train.dtype == np.int64
    assert digits.in_channels == 1 and digits.resolution == 32
    assert set(np.unique(digits.y_test).tolist()) == set(range(10))


def test_digits_normalised_with_train_statistics(digits: Dataset) -> None:
    assert abs(float(digits.x_train.mean())) < 1e-4
    assert abs(float(digits.x_train.std()) - 1) < 1e-3
    assert 0 < digits.mean[0] < 1 and 0 < digits.std[0] < 1
    # other splits use the train statistics, so they are only roughly standardised
    assert abs(float(digits.x_test.mean())) < 0.1


def test_digits_split_is_stratified(digits: Dataset) -> None:
    counts = np.bincount(digits.y_test, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37


def test_digits_split_depends_only_on_seed(digits: Dataset) -> None:
    again = load_dataset("digits", resolution=32, seed=0)
    other = load_dataset("digits", resolution=32, seed=1)
    np.testing.assert_array_equal(digits.x_train, again.x_train)
    np.testing.assert_array_equal(digits.y_val, again.y_val)
    assert digits.mean == again.mean
    assert not np.array_equal(digits.x_test, other.x_test)


def test_digits_options(digits: Dataset) -> None:
    rgb = load_dataset("digits", resolution=8, grayscale=False, val_fraction=0.2, test_fraction=0.3)
    assert rgb.x_train.shape[1:] == (3, 8, 8)
    assert len(rgb.y_val) == 360 and len(rgb.y_test) == 540
    small = digits.at_resolution(16)
    assert small.x_train.shape == (1257, 1, 16, 16)
    np.testing.assert_array_equal(small.y_train, digits.y_train)
    assert small.mean == digits.mean and small.std == digits.std


def single_line(error: pytest.ExceptionInfo[DataError]) -> str:
    message = str(error.value)
    assert "\n" not in message and message
    return message


@pytest.mark.parametrize("resolution", [3, 0, -8, 1025, 2.5, True, "32"])
def test_bad_resolution(resolution: Any) -> None:
    with pytest.raises(DataError) as error:
        load_dataset("digits", resolution=resolution)
    assert "resolution" in single_line(error)


@pytest.mark.parametrize(
    ("val_fraction", "test_fraction"),
    [(0, 0.2), (1, 0.2), (-0.1, 0.2), (0.1, 0.0), (0.1, 1.0), (0.1, 1.5), (0.5, 0.5), (0.7, 0.4)],
)
def test_bad_fractions(val_fraction: float, test_fraction: float) -> None:
    with pytest.raises(DataError) as error:
        load_dataset("digits", resolution=8, val_fraction=val_fraction, test_fraction=test_fraction)
    assert "fraction" in single_line(error)


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5])
def test_bad_seed(seed: Any) -> None:
    with pytest.raises(DataError) as error:
        LoadOptions(resolution=8, seed=seed)
    assert "seed" in single_line(error)


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as error:
        load_dataset(str(missing), resolution=8)
    message = single_line(error)
    assert str(missing) in message and "digits" in message


def test_unknown_name_is_a_missing_path() -> None:
    with pytest.raises(UserError) as error:
        load_dataset("cifar11", resolution=8)
    assert "cifar11" in str(error.value)


@pytest.mark.parametrize("hidden", [False, True])
def test_empty_directory(tmp_path: Path, hidden: bool) -> None:
    if hidden:
        (tmp_path / ".DS_Store").write_bytes(b"")
    with pytest.raises(DataError) as error:
        load_dataset(str(tmp_path), resolution=8)
    message = single_line(error)
    assert str(tmp_path) in message and "empty" in message


@pytest.mark.parametrize("name", ["data.csv", "data.npy", "archive.tar.gz", "README"])
def test_unsupported_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"1,2,3\n")
    with pytest.raises(DataError) as error:
        load_dataset(str(path), resolution=8)
    message = single_line(error)
    assert str(path) in message and ".npz" in message
