"""``.npz`` archives in their three layouts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nas.data import load_dataset
from nas.errors import DataError

SIDE = 12


def pixels(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, SIDE, SIDE), dtype=np.uint8)


def cycle(count: int, classes: int = 3) -> np.ndarray:
    return np.arange(count, dtype=np.int64) % classes


def check_message(error: pytest.ExceptionInfo[DataError], location: Path) -> str:
    message = str(error.value)
    assert "\n" not in message
    assert str(location) in message
    return message


def save(path: Path, **arrays: Any) -> Path:
    np.savez(path, **arrays)
    return path


def test_split_layout_nhw_uint8(tmp_path: Path) -> None:
    path = save(
        tmp_path / "shapes.npz",
        x_train=pixels(40, 1),
        y_train=cycle(40),
        x_test=pixels(10, 2),
        y_test=cycle(10),
    )
    dataset = load_dataset(str(path), resolution=SIDE)
    assert dataset.name == "shapes"
    assert dataset.x_train.shape[1:] == (1, SIDE, SIDE)
    assert (len(dataset.y_train), len(dataset.y_val), len(dataset.y_test)) == (36, 4, 10)
    restored = dataset.x_test[:, 0] * dataset.std[0] + dataset.mean[0]
    np.testing.assert_allclose(restored, pixels(10, 2) / 255, atol=1e-5)


def test_split_layout_with_val_nhwc_float(tmp_path: Path) -> None:
    def rgb(count: int, seed: int) -> np.ndarray:
        values = np.random.default_rng(seed).random((count, SIDE, SIDE, 3))
        return values.astype(np.float32)

    path = save(
        tmp_path / "colour.npz",
        x_train=rgb(30, 1),
        y_train=cycle(30),
        x_val=rgb(6, 2),
        y_val=cycle(6),
        x_test=rgb(9, 3),
        y_test=cycle(9),
        class_names=np.array(["red", "green", "blue"]),
    )
    dataset = load_dataset(str(path), resolution=8)
    assert dataset.x_train.shape[1:] == (3, 8, 8)
    assert (len(dataset.y_train), len(dataset.y_val), len(dataset.y_test)) == (30, 6, 9)
    assert dataset.class_names == ("red", "green", "blue")
    assert 0.4 < dataset.mean[0] < 0.6  # values in [0, 1] are not divided by 255 again


def test_whole_layout_nchw_float_0_to_255(tmp_path: Path) -> None:
    images = pixels(50, 4).astype(np.float64)[:, np.newaxis]
    path = save(tmp_path / "whole.npz", x=images, y=cycle(50, classes=5))
    dataset = load_dataset(str(path), resolution=SIDE, val_fraction=0.2, test_fraction=0.2)
    assert (len(dataset.y_train), len(dataset.y_val), len(dataset.y_test)) == (30, 10, 10)
    assert dataset.num_classes == 5 and dataset.in_channels == 1
    for split in (dataset.y_val, dataset.y_test):
        assert np.bincount(split).tolist() == [2] * 5  # stratified
    assert abs(dataset.mean[0] - images.mean() / 255) < 0.05


def test_whole_layout_split_depends_on_seed(tmp_path: Path) -> None:
    path = str(save(tmp_path / "whole.npz", x=pixels(60, 5), y=cycle(60)))
    first = load_dataset(path, resolution=SIDE, seed=7)
    again = load_dataset(path, resolution=SIDE, seed=7)
    other = load_dataset(path, resolution=SIDE, seed=8)
    np.testing.assert_array_equal(first.x_train, again.x_train)
    np.testing.assert_array_equal(first.y_test, again.y_test)
    assert not np.array_equal(first.x_test, other.x_test)


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        ({"x_train": pixels(4, 0), "y_train": cycle(4)}, "x_train, y_train, x_test, y_test"),
        ({"images": pixels(4, 0)}, "found images"),
        (
            {
                "x_train": pixels(9, 0),
                "y_train": cycle(9),
                "x_test": pixels(3, 0),
                "y_test": cycle(3),
                "x_val": pixels(3, 0),
            },
            "y_val",
        ),
        ({"x": pixels(9, 0), "y": cycle(8)}, "9 train images but 8"),
        ({"x": pixels(9, 0), "y": cycle(9) - 1}, "out of range"),
        ({"x": pixels(9, 0), "y": cycle(9) + 0.5}, "whole numbers"),
        ({"x": pixels(9, 0), "y": cycle(9).astype(str)}, "integer"),
        ({"x": pixels(9, 0), "y": np.zeros(9, np.int64)}, "at least 2 classes"),
        (
            {"x": pixels(9, 0), "y": cycle(9), "class_names": np.array(["a", "b"])},
            "out of range",
        ),
        ({"x": pixels(9, 0), "y": cycle(9), "class_names": np.arange(3)}, "strings"),
        ({"x": pixels(2, 0), "y": cycle(2)}, "too few samples"),
        ({"x": np.zeros((9, 5, SIDE, SIDE), np.uint8), "y": cycle(9)}, "1 or 3 channels"),
        ({"x": np.zeros((9, SIDE), np.uint8), "y": cycle(9)}, "NHW"),
        ({"x": np.full((9, SIDE, SIDE), 300.0), "y": cycle(9)}, "0..255"),
        ({"x": np.full((9, SIDE, SIDE), -0.5), "y": cycle(9)}, "0..255"),
        ({"x": np.full((9, SIDE, SIDE), np.nan), "y": cycle(9)}, "NaN"),
        ({"x": np.zeros((9, SIDE, SIDE), bool), "y": cycle(9)}, "dtype"),
    ],
    ids=[
        "missing-split-keys",
        "no-known-keys",
        "val-without-labels",
        "count-mismatch",
        "negative-labels",
        "fractional-labels",
        "string-labels",
        "single-class",
        "labels-beyond-names",
        "bad-class-names",
        "too-few-samples",
        "five-channels",
        "two-dimensional",
        "values-too-large",
        "negative-values",
        "nan",
        "bool-images",
    ],
)
def test_bad_npz(tmp_path: Path, arrays: dict[str, np.ndarray], expected: str) -> None:
    path = save(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError) as error:
        load_dataset(str(path), resolution=SIDE)
    assert expected in check_message(error, path)


def test_test_split_of_different_image_size(tmp_path: Path) -> None:
    path = save(
        tmp_path / "sizes.npz",
        x_train=pixels(9, 0),
        y_train=cycle(9),
        x_test=np.zeros((3, 8, 8), np.uint8),
        y_test=cycle(3),
    )
    with pytest.raises(DataError) as error:
        load_dataset(str(path), resolution=SIDE)
    check_message(error, path)


@pytest.mark.parametrize(
    "content",
    [b"not a zip file at all", b"PK\x03\x04 truncated zip", b""],
    ids=["garbage", "truncated-zip", "empty"],
)
def test_corrupt_npz(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "corrupt.npz"
    path.write_bytes(content)
    with pytest.raises(DataError) as error:
        load_dataset(str(path), resolution=SIDE)
    check_message(error, path)


def test_npz_with_object_array_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "objects.npz"
    np.savez(path, x=np.array([object(), object()], dtype=object), y=cycle(2))
    with pytest.raises(DataError) as error:
        load_dataset(str(path), resolution=SIDE)
    check_message(error, path)


def test_single_array_named_npz(tmp_path: Path) -> None:
    path = tmp_path / "single.npz"
    with path.open("wb") as handle:
        np.save(handle, pixels(3, 0))
    with pytest.raises(DataError) as error:
        load_dataset(str(path), resolution=SIDE)
    assert "single array" in check_message(error, path)
