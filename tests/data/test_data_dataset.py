"""The Dataset container, resize_images and batches."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from nas.data import Dataset, batches, resize_images
from nas.errors import DataError


def make_dataset(**overrides: Any) -> Dataset:
    rng = np.random.default_rng(0)
    fields: dict[str, Any] = dict(
        name="tiny",
        x_train=rng.standard_normal((6, 3, 8, 8)).astype(np.float32),
        y_train=np.array([0, 1, 0, 1, 0, 1], np.int64),
        x_val=rng.standard_normal((2, 3, 8, 8)).astype(np.float32),
        y_val=np.array([0, 1], np.int64),
        x_test=rng.standard_normal((3, 3, 8, 8)).astype(np.float32),
        y_test=np.array([1, 0, 1], np.int64),
        num_classes=2,
        class_names=("no", "yes"),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
    )
    fields.update(overrides)
    return Dataset(**fields)


def test_dataset_properties_and_summary() -> None:
    dataset = make_dataset()
    assert dataset.in_channels == 3 and dataset.resolution == 8
    assert dataset.image_shape == (3, 8, 8)
    summary = dataset.summary()
    assert "\n" not in summary
    assert "tiny" in summary and "11 images" in summary and "3x8x8" in summary
    assert "x_train" not in repr(dataset)
    with pytest.raises(dataclasses.FrozenInstanceError):
        dataset.name = "other"  # type: ignore[misc]


def test_at_resolution() -> None:
    dataset = make_dataset()
    assert dataset.at_resolution(8) is dataset
    bigger = dataset.at_resolution(20)
    assert bigger.x_train.shape == (6, 3, 20, 20)
    assert bigger.x_val.shape == (2, 3, 20, 20) and bigger.x_test.shape == (3, 3, 20, 20)
    assert bigger.resolution == 20 and bigger.mean == dataset.mean
    np.testing.assert_array_equal(bigger.y_test, dataset.y_test)
    assert dataset.resolution == 8
    with pytest.raises(DataError):
        dataset.at_resolution(2)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"y_train": np.array([0, 1], np.int64)}, "y_train"),
        ({"x_val": np.zeros((2, 3, 8, 8), np.float64)}, "float32"),
        ({"x_test": np.zeros((3, 3, 4, 4), np.float32)}, "x_test"),
        ({"x_test": np.zeros((3, 3, 8, 6), np.float32)}, "square"),
        ({"y_val": np.array([0, 1], np.int32)}, "int64"),
        ({"y_test": np.array([0, 2, 1], np.int64)}, "labels outside"),
        ({"class_names": ("a",)}, "class names"),
        ({"num_classes": 1, "class_names": ("a",), "y_train": np.zeros(6, np.int64)}, "2"),
        ({"mean": (0.5,)}, "per channel"),
        ({"std": (0.1, 0.0, 0.1)}, "positive"),
        (
            {"x_train": np.zeros((0, 3, 8, 8), np.float32), "y_train": np.zeros(0, np.int64)},
            "empty",
        ),
    ],
)
def test_dataset_validation(overrides: dict[str, Any], expected: str) -> None:
    with pytest.raises(DataError) as error:
        make_dataset(**overrides)
    message = str(error.value)
    assert expected in message and "\n" not in message and "tiny" in message


def test_resize_images_same_size_is_identity() -> None:
    images = np.zeros((2, 1, 8, 8), np.float32)
    assert resize_images(images, 8) is images
    converted = resize_images(images.astype(np.float64), 8)
    assert converted.dtype == np.float32 and converted.shape == images.shape


def test_resize_images_up_and_down() -> None:
    constant = np.full((3, 2, 10, 10), 0.25, np.float32)
    up = resize_images(constant, 33)
    down = resize_images(constant, 5)
    assert up.shape == (3, 2, 33, 33) and down.shape == (3, 2, 5, 5)
    assert up.dtype == np.float32
    np.testing.assert_allclose(up, 0.25, atol=1e-6)
    np.testing.assert_allclose(down, 0.25, atol=1e-6)


def test_resize_images_antialiases_when_downscaling() -> None:
    checkerboard = (np.indices((16, 16)).sum(axis=0) % 2).astype(np.float32)[None, None]
    down = resize_images(checkerboard, 4)
    np.testing.assert_allclose(down, 0.5, atol=0.05)


def test_resize_images_non_square_input() -> None:
    assert resize_images(np.ones((1, 3, 6, 10), np.float32), 8).shape == (1, 3, 8, 8)


@pytest.mark.parametrize(
    ("images", "resolution"),
    [(np.zeros((8, 8), np.float32), 8), (np.zeros((1, 1, 8, 8), np.float32), 3)],
)
def test_resize_images_bad_input(images: np.ndarray, resolution: int) -> None:
    with pytest.raises(DataError):
        resize_images(images, resolution)


def test_batches_in_order_without_seed() -> None:
    x = np.arange(10).reshape(10, 1)
    y = np.arange(10)
    found = list(batches(x, y, batch_size=4))
    assert [len(batch_y) for _, batch_y in found] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([batch_y for _, batch_y in found]), y)
    assert [len(b) for _, b in batches(x, y, batch_size=4, drop_last=True)] == [4, 4]


def test_batches_shuffled_by_seed() -> None:
    x = np.arange(50).reshape(50, 1)
    y = np.arange(50)
    first = [batch_y.tolist() for _, batch_y in batches(x, y, batch_size=8, seed=3)]
    again = [batch_y.tolist() for _, batch_y in batches(x, y, batch_size=8, seed=3)]
    other = [batch_y.tolist() for _, batch_y in batches(x, y, batch_size=8, seed=4)]
    assert first == again and first != other
    assert sorted(value for batch in first for value in batch) == list(range(50))
    for batch_x, batch_y in batches(x, y, batch_size=8, seed=3):
        np.testing.assert_array_equal(batch_x[:, 0], batch_y)
    unshuffled = [b.tolist() for _, b in batches(x, y, batch_size=50, seed=3, shuffle=False)]
    assert unshuffled == [list(range(50))]


@pytest.mark.parametrize(
    "arguments",
    [
        {"batch_size": 0},
        {"batch_size": 2.0},
        {"batch_size": 2, "shuffle": True},
    ],
)
def test_batches_bad_arguments(arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        list(batches(np.zeros((4, 1)), np.zeros(4), **arguments))
    with pytest.raises(ValueError):
        list(batches(np.zeros((4, 1)), np.zeros(3), batch_size=2))
