"""The backend switch without a cluster: bad input is one line and exit 2, Ray stays a lazy,
optional import, and the data-parallel step is exact (a one-process gloo group, no Ray)."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import search_spaces as ss
from nas.cli import main
from nas.data import Dataset, load_dataset
from nas.distributed import Backend, connect
from nas.errors import UserError
from nas.train import TrainConfig, load_checkpoint, make_schedule, train_supernet
from nas.train.trainer import Shard, _train_epochs

SPACE = ss.get_space("tiny")
TRAIN = ["train", "--space", "tiny", "--data", "digits", "--epochs", "1", "--warmup", "0"]


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(args)
    except SystemExit as exit:  # argparse's own errors
        code = int(exit.code or 0)
    return code, capsys.readouterr().err


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens on it once closed


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--backend", "ray", "--workers", "0"], "--workers must be at least 1, got 0"),
        (["--workers", "2"], "--workers needs --backend ray"),
        (["--address", "10.0.0.5:6379"], "--address needs --backend ray"),
        (["--backend", "ray", "--address", "head-node"], "is not HOST:PORT"),
        (["--backend", "cluster"], "invalid choice"),
    ],
)
def test_bad_backend_options_are_one_line_and_exit_2(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if extra[:2] == ["--backend", "ray"]:
        pytest.importorskip("ray", reason="Ray is not installed: the message is the extra's")
    code, err = _cli([*TRAIN, "--out", str(tmp_path / "out"), *extra], capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_without_ray_the_backend_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails, find_spec says None
    code, err = _cli([*TRAIN, "--out", str(tmp_path / "out"), "--backend", "ray"], capsys)
    assert code == 2
    assert "--backend ray needs Ray, which is not installed: pip install 'nas-toolkit[ray]'" in err
    assert len(err.strip().splitlines()) == 1
    code, err = _cli(["search", "--target", "params<1M", "--backend", "ray"], capsys)
    assert code == 2 and "nas-toolkit[ray]" in err


def test_an_unreachable_address_is_one_line() -> None:
    pytest.importorskip("ray", reason="Ray is not installed: the message is the extra's")
    address = f"127.0.0.1:{_closed_port()}"
    with pytest.raises(UserError, match=f"cannot reach the Ray cluster at {address}"):
        connect(Backend(kind="ray", address=address, workers=2))


def test_importing_the_toolkit_does_not_import_ray() -> None:
    code = (
        "import sys, nas, nas.distributed, nas.cli, nas.search.workdir; "
        "from nas.cli import build_parser; build_parser(); "
        "sys.exit('ray' in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_shards_cover_the_batch_once() -> None:
    images, labels = np.arange(10)[:, None], np.arange(10)
    for world in (1, 2, 3, 4, 11):
        parts = [
            Shard(
                rank=r, world_size=world, reduce=lambda model, loss, loss_share, grad_share: loss
            ).split(images, labels)
            for r in range(world)
        ]
        assert np.concatenate([p[1] for p in parts]).tolist() == labels.tolist()
        sizes = [len(p[1]) for p in parts]
        assert max(sizes) - min(sizes) <= 1


@pytest.fixture(scope="module")
def small_digits() -> Dataset:
    data = load_dataset("digits", resolution=20, seed=0)
    return dataclasses.replace(data, x_train=data.x_train[:200], y_train=data.y_train[:200])


def test_one_worker_data_parallel_step_is_local_training_exactly(
    tmp_path: Path, small_digits: Dataset
) -> None:
    """The sharded step with its all-reduce (a gloo group of one process) gives bit-for-bit
    the weights of local training: sharding and the reduce change nothing but batch norm's
    batch (here the whole batch)."""
    import torch.distributed as dist

    from nas.distributed.training import all_reduce_gradients

    config = TrainConfig(
        batch_size=64, num_random=1, calibration_size=64, threads=1, monitor_images=50
    )
    schedule = make_schedule("all", epochs=2, lr=0.1, warmup=1)
    train_supernet(SPACE, small_digits, schedule, config, tmp_path / "local")
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1
    )
    try:
        _train_epochs(
            SPACE,
            small_digits,
            schedule,
            config,
            tmp_path / "sharded",
            start_epoch=0,
            shard=Shard(rank=0, world_size=1, reduce=all_reduce_gradients),
        )
    finally:
        dist.destroy_process_group()
    weights = [
        load_file(str(d / load_checkpoint(d).metadata["weights"]))
        for d in (tmp_path / "local", tmp_path / "sharded")
    ]
    for name, value in weights[0].items():
        assert torch.equal(value, weights[1][name]), name
