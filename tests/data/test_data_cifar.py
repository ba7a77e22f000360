"""CIFAR-10 python batches, and the restricted unpickler that reads them."""

from __future__ import annotations

import builtins
import os
import pickle
import struct
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nas.data import load_dataset, load_pickle
from nas.errors import DataError

PER_BATCH = 20
CLASSES = 4
NAMES = (b"cat", b"dog", b"frog", b"ship")


def make_images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, 3, 32, 32), dtype=np.uint8)


def write_batch(
    path: Path, images: np.ndarray, labels: list[int], *, str_keys: bool = False
) -> None:
    def key(name: str) -> str | bytes:
        return name if str_keys else name.encode("ascii")

    batch = {
        key("batch_label"): b"batch",
        key("data"): images.reshape(len(images), -1),
        key("labels"): labels,
        key("filenames"): [f"image_{index}.png".encode() for index in range(len(images))],
    }
    with path.open("wb") as handle:
        pickle.dump(batch, handle, protocol=2)


def make_cifar(
    root: Path,
    *,
    train_batches: int = 2,
    meta: bool = True,
    str_keys: bool = False,
    subdirectory: bool = False,
) -> Path:
    directory = root / "cifar-10-batches-py" if subdirectory else root
    directory.mkdir(parents=True, exist_ok=True)
    labels = [index % CLASSES for index in range(PER_BATCH)]
    for number in range(1, train_batches + 1):
        write_batch(
            directory / f"data_batch_{number}",
            make_images(PER_BATCH, number),
            labels,
            str_keys=str_keys,
        )
    write_batch(directory / "test_batch", make_images(PER_BATCH, 99), labels, str_keys=str_keys)
    if meta:
        with (directory / "batches.meta").open("wb") as handle:
            pickle.dump({b"label_names": list(NAMES), b"num_vis": 3072}, handle, protocol=2)
    return root


PurePythonPickler: Any = getattr(pickle, "_Pickler")  # noqa: B009 (private, untyped here)


class Python2StylePickler(PurePythonPickler):
    """Writes like Python 2 did for the real CIFAR files: str as byte strings, numpy.core."""

    dispatch = PurePythonPickler.dispatch.copy()

    def save_byte_string(self, obj: str | bytes) -> None:
        raw = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[bytes] = save_byte_string
    dispatch[str] = save_byte_string

    def save_global(self, obj: Any, name: str | None = None) -> None:
        module = str(obj.__module__).replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)

    dispatch[type] = save_global


def check_message(error: pytest.ExceptionInfo[DataError], location: Path) -> str:
    message = str(error.value)
    assert "\n" not in message
    assert str(location) in message
    return message


@pytest.mark.parametrize(
    ("train_batches", "meta", "str_keys", "subdirectory"),
    [(2, True, False, False), (1, False, True, False), (3, True, False, True)],
)
def test_cifar_loads(
    tmp_path: Path, train_batches: int, meta: bool, str_keys: bool, subdirectory: bool
) -> None:
    root = make_cifar(
        tmp_path / "cifar",
        train_batches=train_batches,
        meta=meta,
        str_keys=str_keys,
        subdirectory=subdirectory,
    )
    dataset = load_dataset(str(root), resolution=32, seed=0)
    train_total = train_batches * PER_BATCH
    assert len(dataset.y_train) + len(dataset.y_val) == train_total
    assert len(dataset.y_val) == int(np.ceil(train_total * 0.1))
    assert len(dataset.y_test) == PER_BATCH
    assert dataset.x_train.dtype == np.float32 and dataset.y_train.dtype == np.int64
    assert dataset.x_train.shape[1:] == (3, 32, 32)
    assert dataset.in_channels == 3 and dataset.resolution == 32
    assert dataset.num_classes == CLASSES
    expected_names = tuple(name.decode() for name in NAMES) if meta else ("0", "1", "2", "3")
    assert dataset.class_names == expected_names


def test_cifar_python2_pickles(tmp_path: Path) -> None:
    make_cifar(tmp_path, train_batches=1)
    labels = [index % CLASSES for index in range(PER_BATCH)]
    batch = {"data": make_images(PER_BATCH, 5).reshape(PER_BATCH, -1), "labels": labels}
    with (tmp_path / "data_batch_1").open("wb") as handle:
        Python2StylePickler(handle, protocol=2).dump(batch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dataset = load_dataset(str(tmp_path), resolution=32)
    assert len(dataset.y_train) + len(dataset.y_val) == PER_BATCH
    assert dataset.class_names == tuple(name.decode() for name in NAMES)


def test_cifar_keeps_test_batch_in_order_and_chw_layout(tmp_path: Path) -> None:
    dataset = load_dataset(str(make_cifar(tmp_path)), resolution=32)
    mean = np.asarray(dataset.mean, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(dataset.std, dtype=np.float32).reshape(1, 3, 1, 1)
    restored = dataset.x_test * std + mean
    expected = make_images(PER_BATCH, 99).astype(np.float32) / 255
    np.testing.assert_allclose(restored, expected, atol=1e-5)
    assert dataset.y_test.tolist() == [index % CLASSES for index in range(PER_BATCH)]


def test_cifar_resizes_and_converts_to_grayscale(tmp_path: Path) -> None:
    dataset = load_dataset(str(make_cifar(tmp_path)), resolution=16, grayscale=True)
    assert dataset.x_train.shape[1:] == (1, 16, 16)
    assert dataset.x_test.shape == (PER_BATCH, 1, 16, 16)
    assert len(dataset.mean) == 1


def test_cifar_val_split_depends_on_seed(tmp_path: Path) -> None:
    root = str(make_cifar(tmp_path))
    first = load_dataset(root, resolution=32, seed=1)
    again = load_dataset(root, resolution=32, seed=1)
    other = load_dataset(root, resolution=32, seed=2)
    np.testing.assert_array_equal(first.x_val, again.x_val)
    assert not np.array_equal(first.x_val, other.x_val)


def test_cifar_missing_test_batch(tmp_path: Path) -> None:
    make_cifar(tmp_path)
    (tmp_path / "test_batch").unlink()
    with pytest.raises(DataError) as error:
        load_dataset(str(tmp_path), resolution=32)
    assert "test_batch" in check_message(error, tmp_path)


def test_cifar_without_train_batches(tmp_path: Path) -> None:
    make_cifar(tmp_path, train_batches=0)
    with pytest.raises(DataError) as error:
        load_dataset(str(tmp_path), resolution=32)
    assert "data_batch" in check_message(error, tmp_path)


def test_cifar_truncated_pickle(tmp_path: Path) -> None:
    make_cifar(tmp_path)
    batch = tmp_path / "data_batch_2"
    batch.write_bytes(batch.read_bytes()[:500])
    with pytest.raises(DataError) as error:
        load_dataset(str(tmp_path), resolution=32)
    assert "corrupt" in check_message(error, batch)


def test_cifar_garbage_pickle(tmp_path: Path) -> None:
    make_cifar(tmp_path)
    batch = tmp_path / "test_batch"
    batch.write_bytes(b"this is not a pickle\nat all\n")
    with pytest.raises(DataError) as error:
        load_dataset(str(tmp_path), resolution=32)
    check_message(error, batch)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ([1, 2, 3], "dict"),
        ({b"data": np.zeros((2, 3072), np.uint8)}, "labels"),
        ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, "3072"),
        ({b"data": np.zeros((2, 3072), np.float64), b"labels": [0, 1]}, "uint8"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1, 1]}, "labels"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, -1]}, "range"),
    ],
    ids=["not-a-dict", "missing-labels", "wrong-row-size", "wrong-dtype", "count", "negative"],
)
def test_cifar_malformed_batch(tmp_path: Path, content: Any, expected: str) -> None:
    make_cifar(tmp_path)
    batch = tmp_path / "data_batch_1"
    with batch.open("wb") as handle:
        pickle.dump(content, handle, protocol=2)
    with pytest.raises(DataError) as error:
        load_dataset(str(tmp_path), resolution=32)
    assert expected in check_message(error, batch)


def test_cifar_labels_beyond_class_names(tmp_path: Path) -> None:
    make_cifar(tmp_path)
    write_batch(tmp_path / "data_batch_1", make_images(PER_BATCH, 1), [7] * PER_BATCH)
    with pytest.raises(DataError) as error:
        load_dataset(str(tmp_path), resolution=32)
    assert "out of range" in check_message(error, tmp_path)


def test_cifar_corrupt_meta(tmp_path: Path) -> None:
    make_cifar(tmp_path)
    meta = tmp_path / "batches.meta"
    with meta.open("wb") as handle:
        pickle.dump({b"num_vis": 3072}, handle, protocol=2)
    with pytest.raises(DataError) as error:
        load_dataset(str(tmp_path), resolution=32)
    assert "label_names" in check_message(error, meta)


class Exploit:
    """Pickles as a call to ``function(argument)``."""

    def __init__(self, function: Callable[..., Any], argument: Any) -> None:
        self.function = function
        self.argument = argument

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.function, (self.argument,))


@pytest.mark.parametrize(
    ("function", "refused"),
    [(os.system, "system"), (builtins.eval, "eval"), (subprocess.check_call, "check_call")],
)
def test_forbidden_global_is_refused_and_not_run(
    tmp_path: Path, function: Callable[..., Any], refused: str
) -> None:
    make_cifar(tmp_path)
    marker = tmp_path / "hacked"
    commands: dict[Callable[..., Any], Any] = {
        os.system: f"touch {marker}",
        builtins.eval: f"open({str(marker)!r}, 'w').close()",
        subprocess.check_call: ["touch", str(marker)],
    }
    batch = tmp_path / "data_batch_1"
    with batch.open("wb") as handle:
        pickle.dump(
            {b"data": Exploit(function, commands[function]), b"labels": [0]}, handle, protocol=2
        )
    with pytest.raises(DataError) as error:
        load_dataset(str(tmp_path), resolution=32)
    message = check_message(error, batch)
    assert refused in message
    assert not marker.exists()


def test_forbidden_global_echo_does_not_print(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(Exploit(os.system, "echo hacked"), protocol=2))
    with pytest.raises(DataError) as error:
        load_pickle(path)
    check_message(error, path)
    assert "hacked" not in capfd.readouterr().out


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_safe_unpickler_reads_numpy_and_containers(tmp_path: Path, protocol: int) -> None:
    content = {
        b"data": np.arange(12, dtype=np.uint8).reshape(3, 4),
        "floats": np.linspace(0, 1, 5),
        "scalar": np.int64(7),
        "set": {1, 2},
        "frozen": frozenset({3}),
        "nested": [(1, 2.5, "x", b"y", None, True)],
    }
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(content, protocol=protocol))
    loaded = load_pickle(path, encoding="ASCII")
    np.testing.assert_array_equal(loaded[b"data"], content[b"data"])
    np.testing.assert_array_equal(loaded["floats"], content["floats"])
    assert loaded["scalar"] == 7 and loaded["set"] == {1, 2}
    assert loaded["frozen"] == frozenset({3}) and loaded["nested"] == content["nested"]
