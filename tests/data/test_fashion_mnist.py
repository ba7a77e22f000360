"""Fashion-MNIST by name: found through NAS_FASHION_MNIST or Debian's directory, refused in one
line naming what is missing or wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nas.data import epoch_images, fashion_mnist, load_dataset
from nas.errors import DataError
from tests.data.test_data_mnist import TEST, TRAIN, images, make_mnist, write_idx


def test_loads_from_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(fashion_mnist.ENVIRONMENT_VARIABLE, str(make_mnist(tmp_path / "fm")))
    dataset = load_dataset("fashion-mnist", resolution=28)
    assert dataset.name == "fashion-mnist"
    assert len(dataset.y_test) == TEST
    assert len(dataset.y_train) + len(dataset.y_val) == TRAIN
    assert dataset.class_names[0] == "t-shirt/top"


def test_missing_everywhere_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(fashion_mnist.ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIRECTORY", tmp_path / "absent")
    with pytest.raises(DataError) as error:
        load_dataset("fashion-mnist", resolution=28)
    message = str(error.value)
    assert "\n" not in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert fashion_mnist.ENVIRONMENT_VARIABLE in message


def test_environment_variable_to_a_missing_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(fashion_mnist.ENVIRONMENT_VARIABLE, str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="no such directory"):
        load_dataset("fashion-mnist", resolution=28)


def test_a_missing_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_mnist(tmp_path / "fm")
    (root / "t10k-labels-idx1-ubyte").unlink()
    monkeypatch.setenv(fashion_mnist.ENVIRONMENT_VARIABLE, str(root))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        load_dataset("fashion-mnist", resolution=28)


def test_truncated_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_mnist(tmp_path / "fm")
    path = root / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    monkeypatch.setenv(fashion_mnist.ENVIRONMENT_VARIABLE, str(root))
    with pytest.raises(DataError, match="truncated") as error:
        load_dataset("fashion-mnist", resolution=28)
    assert str(path) in str(error.value)


def test_count_mismatch_names_both_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_mnist(tmp_path / "fm")
    write_idx(root / "train-images-idx3-ubyte", images(TRAIN - 1, 1))
    monkeypatch.setenv(fashion_mnist.ENVIRONMENT_VARIABLE, str(root))
    with pytest.raises(DataError) as error:
        load_dataset("fashion-mnist", resolution=28)
    message = str(error.value)
    assert "train-images-idx3-ubyte" in message and "train-labels-idx1-ubyte" in message


def test_debian_location_is_used_without_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(fashion_mnist.ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIRECTORY", make_mnist(tmp_path / "debian"))
    assert fashion_mnist.find_fashion_mnist() == tmp_path / "debian"


def test_epoch_images_draws_a_seeded_subset_in_order() -> None:
    x = np.arange(100, dtype=np.float32).reshape(100, 1)
    y = np.arange(100)
    first = epoch_images(x, y, 30, np.random.default_rng(3))
    again = epoch_images(x, y, 30, np.random.default_rng(3))
    other = epoch_images(x, y, 30, np.random.default_rng(4))
    assert len(first[1]) == 30 and len(set(first[1].tolist())) == 30
    assert np.array_equal(first[1], np.sort(first[1]))
    assert np.array_equal(first[0][:, 0], first[1])
    assert np.array_equal(first[1], again[1]) and not np.array_equal(first[1], other[1])
    assert epoch_images(x, y, None, np.random.default_rng(0))[1] is y
    assert epoch_images(x, y, 500, np.random.default_rng(0))[1] is y


def test_cli_train_on_a_truncated_file_is_one_line_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nas.cli import main

    root = make_mnist(tmp_path / "fm")
    path = root / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-7])
    before = {p.name: p.read_bytes() for p in root.iterdir()}
    monkeypatch.setenv(fashion_mnist.ENVIRONMENT_VARIABLE, str(root))
    out = tmp_path / "run"
    code = main(["train", "--space", "tiny", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "t10k-images-idx3-ubyte" in err
    assert not out.exists()
    assert {p.name: p.read_bytes() for p in root.iterdir()} == before
