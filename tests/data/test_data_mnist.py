"""MNIST idx files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from nas.data import load_dataset
from nas.errors import DataError

TRAIN = 30
TEST = 12
CLASSES = 3
SIDE = 28


def idx_bytes(array: np.ndarray, *, magic: int | None = None) -> bytes:
    if magic is None:
        magic = 0x00000800 | array.ndim
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, *, magic: int | None = None) -> Path:
    content = idx_bytes(array, magic=magic)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as handle:
            handle.write(content)
    else:
        path.write_bytes(content)
    return path


def images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, SIDE, SIDE), dtype=np.uint8)


def labels(count: int) -> np.ndarray:
    return np.arange(count, dtype=np.uint8) % CLASSES


def make_mnist(root: Path, *, gzipped: bool = False, dotted: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    separator = "." if dotted else "-"
    suffix = ".gz" if gzipped else ""
    write_idx(root / f"train-images{separator}idx3-ubyte{suffix}", images(TRAIN, 1))
    write_idx(root / f"train-labels{separator}idx1-ubyte", labels(TRAIN))
    write_idx(root / f"t10k-images{separator}idx3-ubyte", images(TEST, 2))
    write_idx(root / f"t10k-labels{separator}idx1-ubyte{suffix}", labels(TEST))
    return root


def check_message(error: pytest.ExceptionInfo[DataError], location: Path) -> str:
    message = str(error.value)
    assert "\n" not in message
    assert str(location) in message
    return message


@pytest.mark.parametrize(("gzipped", "dotted"), [(False, False), (True, False), (False, True)])
def test_mnist_loads(tmp_path: Path, gzipped: bool, dotted: bool) -> None:
    root = make_mnist(tmp_path / "mnist", gzipped=gzipped, dotted=dotted)
    dataset = load_dataset(str(root), resolution=SIDE)
    assert dataset.name == "mnist"
    assert dataset.x_train.shape[1:] == (1, SIDE, SIDE)
    assert dataset.x_train.dtype == np.float32 and dataset.y_val.dtype == np.int64
    assert len(dataset.y_train) + len(dataset.y_val) == TRAIN
    assert len(dataset.y_val) == 3
    assert len(dataset.y_test) == TEST
    assert dataset.num_classes == CLASSES and dataset.class_names == ("0", "1", "2")
    restored = dataset.x_test * dataset.std[0] + dataset.mean[0]
    np.testing.assert_allclose(restored[:, 0], images(TEST, 2) / 255, atol=1e-5)


def test_mnist_resized_and_rgb(tmp_path: Path) -> None:
    dataset = load_dataset(str(make_mnist(tmp_path)), resolution=32, grayscale=False)
    assert dataset.x_train.shape[1:] == (3, 32, 32)
    assert dataset.resolution == 32 and dataset.in_channels == 3


def test_mnist_missing_file(tmp_path: Path) -> None:
    make_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError) as error:
        load_dataset(str(tmp_path), resolution=SIDE)
    assert "t10k-labels-idx1-ubyte" in check_message(error, tmp_path)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (idx_bytes(images(TRAIN, 1))[:-10], "truncated"),
        (idx_bytes(images(TRAIN, 1)) + b"extra", "trailing"),
        (idx_bytes(images(TRAIN, 1))[:10], "truncated idx header"),
        (b"\x00\x00", "truncated"),
        (b"", "truncated"),
        (idx_bytes(images(TRAIN, 1), magic=0x00000801), "magic"),
        (idx_bytes(labels(TRAIN)), "magic"),
        (idx_bytes(images(TRAIN - 1, 1)), "labels"),
    ],
    ids=["data", "trailing", "header", "tiny", "empty", "magic", "labels-file", "count"],
)
def test_mnist_corrupt_images_file(tmp_path: Path, content: bytes, expected: str) -> None:
    make_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(DataError) as error:
        load_dataset(str(tmp_path), resolution=SIDE)
    assert expected in check_message(error, path)


def test_mnist_wrong_magic_in_labels(tmp_path: Path) -> None:
    make_mnist(tmp_path)
    path = write_idx(tmp_path / "t10k-labels-idx1-ubyte", images(TEST, 3))
    with pytest.raises(DataError) as error:
        load_dataset(str(tmp_path), resolution=SIDE)
    assert "0x00000801" in check_message(error, path)


def test_mnist_corrupt_gzip(tmp_path: Path) -> None:
    make_mnist(tmp_path, gzipped=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError) as error:
        load_dataset(str(tmp_path), resolution=SIDE)
    check_message(error, path)


def test_mnist_single_class(tmp_path: Path) -> None:
    make_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(TRAIN, np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(TEST, np.uint8))
    with pytest.raises(DataError) as error:
        load_dataset(str(tmp_path), resolution=SIDE)
    assert "at least 2 classes" in check_message(error, tmp_path)


def test_mnist_too_few_train_images_for_validation(tmp_path: Path) -> None:
    make_mnist(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte", images(1, 1))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.ones(1, np.uint8))
    with pytest.raises(DataError) as error:
        load_dataset(str(tmp_path), resolution=SIDE)
    assert "too few samples" in check_message(error, tmp_path)
