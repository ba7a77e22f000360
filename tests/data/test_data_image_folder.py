"""Directories with one sub-directory of images per class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nas.data import load_dataset
from nas.errors import DataError

CLASS_NAMES = ("banana", "apple", "cherry")
PER_CLASS = 6


def write_image(path: Path, *, mode: str, size: tuple[int, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(path)


def make_folder(root: Path, *, modes: tuple[str, ...] = ("L",), jpeg_class: bool = False) -> Path:
    for class_index, name in enumerate(CLASS_NAMES):
        directory = root / name
        directory.mkdir(parents=True)
        suffix = ".jpg" if jpeg_class and class_index == 2 else ".png"
        for index in range(PER_CLASS):
            mode = modes[index % len(modes)]
            size = (20 + index, 30) if index % 2 else (48, 40)
            write_image(
                directory / f"{index}{suffix}", mode=mode, size=size, seed=10 * class_index + index
            )
    return root


def check_message(error: pytest.ExceptionInfo[DataError], location: Path) -> str:
    message = str(error.value)
    assert "\n" not in message
    assert str(location) in message
    return message


@pytest.mark.parametrize(
    ("modes", "grayscale", "channels"),
    [
        (("L",), None, 1),
        (("RGB",), None, 3),
        (("L", "RGB"), None, 3),
        (("RGB",), True, 1),
        (("L",), False, 3),
    ],
    ids=["gray", "rgb", "mixed", "forced-gray", "forced-rgb"],
)
def test_image_folder_loads(
    tmp_path: Path, modes: tuple[str, ...], grayscale: bool | None, channels: int
) -> None:
    root = make_folder(tmp_path / "fruit", modes=modes)
    dataset = load_dataset(
        str(root), resolution=16, grayscale=grayscale, val_fraction=0.2, test_fraction=0.2
    )
    assert dataset.name == "fruit"
    assert dataset.class_names == ("apple", "banana", "cherry")
    assert dataset.num_classes == 3
    assert dataset.in_channels == channels and dataset.resolution == 16
    assert dataset.x_val.shape[1:] == (channels, 16, 16)
    sizes = (len(dataset.y_train), len(dataset.y_val), len(dataset.y_test))
    assert sizes == (10, 4, 4)
    assert sum(sizes) == len(CLASS_NAMES) * PER_CLASS
    assert set(dataset.y_test.tolist()) == {0, 1, 2}  # stratified


def test_image_folder_reads_jpeg_and_default_fractions(tmp_path: Path) -> None:
    dataset = load_dataset(
        str(make_folder(tmp_path, modes=("RGB",), jpeg_class=True)), resolution=8
    )
    assert len(dataset.y_train) + len(dataset.y_val) + len(dataset.y_test) == 18
    assert (
        np.count_nonzero(dataset.y_train == 2)
        + np.count_nonzero(dataset.y_val == 2)
        + (np.count_nonzero(dataset.y_test == 2))
        == PER_CLASS
    )


def test_image_folder_split_depends_on_seed(tmp_path: Path) -> None:
    root = str(make_folder(tmp_path))
    first = load_dataset(root, resolution=8, seed=3, test_fraction=0.3)
    again = load_dataset(root, resolution=8, seed=3, test_fraction=0.3)
    other = load_dataset(root, resolution=8, seed=4, test_fraction=0.3)
    np.testing.assert_array_equal(first.x_test, again.x_test)
    assert not np.array_equal(first.x_test, other.x_test)


def test_images_without_class_folders(tmp_path: Path) -> None:
    for index in range(3):
        write_image(tmp_path / f"{index}.png", mode="L", size=(8, 8), seed=index)
    with pytest.raises(DataError) as error:
        load_dataset(str(tmp_path), resolution=8)
    assert "sub-directory per class" in check_message(error, tmp_path)


def test_directory_without_images_or_class_folders(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError) as error:
        load_dataset(str(tmp_path), resolution=8)
    check_message(error, tmp_path)


def test_class_folder_without_images(tmp_path: Path) -> None:
    make_folder(tmp_path)
    empty = tmp_path / "durian"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(DataError) as error:
        load_dataset(str(tmp_path), resolution=8)
    assert "no images" in check_message(error, empty)


def test_single_class_folder(tmp_path: Path) -> None:
    (tmp_path / "only").mkdir()
    write_image(tmp_path / "only" / "a.png", mode="L", size=(8, 8), seed=0)
    with pytest.raises(DataError) as error:
        load_dataset(str(tmp_path), resolution=8)
    assert "at least 2 classes" in check_message(error, tmp_path)


@pytest.mark.parametrize("grayscale", [None, True])
def test_corrupt_image(tmp_path: Path, grayscale: bool | None) -> None:
    make_folder(tmp_path)
    broken = tmp_path / "apple" / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError) as error:
        load_dataset(str(tmp_path), resolution=8, grayscale=grayscale)
    check_message(error, broken)


def test_too_few_images_for_split(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        write_image(tmp_path / name / "0.png", mode="L", size=(8, 8), seed=0)
    with pytest.raises(DataError) as error:
        load_dataset(str(tmp_path), resolution=8)
    assert "too few samples" in check_message(error, tmp_path)
