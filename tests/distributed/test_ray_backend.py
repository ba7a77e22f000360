"""The Ray backend on a real local cluster (the session's ``ray_cluster``: 2 CPUs, loopback):
data-parallel training (synchronised batch norm) against one process on the same global
batch, with --resume across backends; a worker killed mid-run and its group restarted from the last checkpoint; accuracy
evaluation as Ray tasks against local; resources the cluster lacks."""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import search_spaces as ss
from nas.cli import main
from nas.data import Dataset, load_dataset
from nas.distributed import Backend, evaluate_subnets, train_supernet_on_ray
from nas.distributed import training as ray_training
from nas.supernet import Supernet
from nas.train import EpochResult, TrainConfig, load_checkpoint, make_schedule, train_supernet

SPACE = ss.get_space("tiny")
CONFIG = TrainConfig(batch_size=64, num_random=1, calibration_size=64, threads=1, monitor_images=50)


class _Kill(Exception):
    """Stands for the local process being killed after its first epoch."""


@pytest.fixture(autouse=True)
def one_thread():  # type: ignore[no-untyped-def]
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # as each 1-CPU Ray worker runs
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def small_digits() -> Dataset:
    data = load_dataset("digits", resolution=20, seed=0)
    return dataclasses.replace(data, x_train=data.x_train[:256], y_train=data.y_train[:256])


def _weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(directory / load_checkpoint(directory).metadata["weights"]))


def _learned(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in weights.items() if v.is_floating_point() and "running" not in k}


def test_two_workers_resume_and_match_one_process_on_the_same_batch(
    ray_cluster: Any, tmp_path: Path, small_digits: Dataset
) -> None:
    """Local training killed after epoch 1, resumed on 2 Ray workers (32 images each of every
    64-image batch) to the end, against local training of the same schedule uninterrupted.
    Batch norm is synchronised (the statistics of all 64 images) and each worker's loss weighted
    by its share before the backward pass, so the steps are those of one process: the weights
    end within float rounding (6e-5 of how far training moved them, where per-worker batch
    norm was only held to a quarter of it; another seed: ~100%)."""
    schedule = make_schedule("all", epochs=2, lr=0.1, warmup=1)
    synced = dataclasses.replace(CONFIG, sync_batch_norm=True)  # only Ray's workers sync
    train_supernet(SPACE, small_digits, schedule, synced, tmp_path / "local")

    def kill(result: EpochResult) -> None:
        raise _Kill

    with pytest.raises(_Kill):
        train_supernet(SPACE, small_digits, schedule, synced, tmp_path / "ray", on_epoch=kill)
    assert load_checkpoint(tmp_path / "ray").epoch == 1
    seen: list[EpochResult] = []
    supernet = train_supernet_on_ray(
        SPACE,
        small_digits,
        schedule,
        synced,
        tmp_path / "ray",
        backend=Backend(kind="ray", workers=2),
        resume=True,
        on_epoch=seen.append,
    )
    assert isinstance(supernet, Supernet)
    assert [r.epoch for r in seen] == [2]  # epoch 1 was not trained again
    checkpoint = load_checkpoint(tmp_path / "ray")
    assert checkpoint.epoch == 2 and len(checkpoint.metadata["history"]) == 2
    assert sorted(p.name for p in (tmp_path / "ray").glob("*.safetensors")) == [
        "optimizer-0002.safetensors",
        "weights-0002.safetensors",
    ]
    local, ray_ = _learned(_weights(tmp_path / "local")), _learned(_weights(tmp_path / "ray"))
    torch.manual_seed(CONFIG.seed)
    start = _learned(Supernet(SPACE).state_dict())
    moved = sum(float((local[k] - start[k]).norm() ** 2) for k in local) ** 0.5
    apart = sum(float((local[k] - ray_[k]).norm() ** 2) for k in local) ** 0.5
    assert apart < 1e-3 * moved, (apart, moved)  # 6e-5 measured: float rounding, amplified
    local_loss = load_checkpoint(tmp_path / "local").metadata["history"][1]["loss"]
    assert checkpoint.metadata["history"][1]["loss"] == pytest.approx(local_loss, rel=1e-4)


def _train_workers() -> set[int]:
    """Pids of the Ray Train workers below this process (the session cluster's raylet is its
    child), found by the title Ray gives their processes."""
    parents: dict[int, int] = {}
    titles: dict[int, str] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as raw:
                titles[int(entry)] = raw.read().decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue

    def below_us(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == os.getpid():
                return True
        return False

    return {
        pid
        for pid, title in titles.items()
        if title.startswith("ray::RayTrainWorker") and below_us(pid)
    }


def test_a_killed_worker_is_restarted_from_the_last_checkpoint(
    ray_cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--max-failures 1: the workers are SIGKILLed as soon as epoch 1's checkpoint is
    written; Ray Train restarts the group, which continues from that checkpoint: every epoch
    is trained and recorded once, epoch 1's record is the one written before the kill."""
    monkeypatch.setattr(ray_training, "_POLL_SECONDS", 0.1)  # kill early in epoch 2
    data = load_dataset("digits", resolution=20, seed=0)
    dataset = dataclasses.replace(data, x_train=data.x_train[:1024], y_train=data.y_train[:1024])
    config = dataclasses.replace(CONFIG, images_per_epoch=None)  # 16 steps an epoch
    schedule = make_schedule("all", epochs=3, lr=0.1, warmup=0)
    earlier = _train_workers()  # of an earlier test, if one still lingers
    killed: list[tuple[int, int]] = []  # (pid, checkpoint epoch right after the kill)
    first_records: list[dict[str, Any]] = []
    seen: list[EpochResult] = []

    def kill_a_worker(result: EpochResult) -> None:
        seen.append(result)
        if result.epoch == 1:
            first_record = load_checkpoint(tmp_path).metadata["history"][0]
            # This run's 2 workers, and now and then a worker process of an earlier test that
            # Ray has not reaped yet: every one of them is killed, this group's among them.
            workers = sorted(_train_workers() - earlier)
            assert len(workers) >= 2, workers
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
            killed.append((workers[-1], load_checkpoint(tmp_path).epoch))
            first_records.append(first_record)

    train_supernet_on_ray(
        SPACE,
        dataset,
        schedule,
        config,
        tmp_path,
        backend=Backend(kind="ray", workers=2, max_failures=1),
        on_epoch=kill_a_worker,
    )
    assert len(killed) == 1 and killed[0][1] < 3  # killed before the last epoch was done
    assert [r.epoch for r in seen] == [1, 2, 3]
    checkpoint = load_checkpoint(tmp_path)
    history = checkpoint.metadata["history"]
    assert checkpoint.epoch == 3 and [entry["epoch"] for entry in history] == [1, 2, 3]
    assert history[0] == first_records[0]  # resumed from epoch 1's checkpoint, not retrained
    assert sorted(p.name for p in tmp_path.glob("*.safetensors")) == [
        "optimizer-0003.safetensors",
        "weights-0003.safetensors",
    ]


def test_accuracy_evaluation_on_ray_equals_local(ray_cluster: Any, small_digits: Dataset) -> None:
    torch.manual_seed(0)
    supernet = Supernet(SPACE).eval()
    archs = [
        SPACE.largest(),
        SPACE.smallest(),
        *(SPACE.sample(np.random.default_rng(1)) for _ in range(5)),
    ]
    local = evaluate_subnets(supernet, archs, small_digits, seed=3)
    done: list[int] = []
    remote = evaluate_subnets(
        supernet,
        archs,
        small_digits,
        seed=3,
        backend=Backend(kind="ray", workers=2),
        progress=lambda count, total: done.append(count),
    )
    assert remote == local
    assert done[-1] == len(archs) and done == sorted(done)


def test_more_workers_than_cpus_is_one_line(
    ray_cluster: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "train",
            "--space",
            "tiny",
            "--data",
            "digits",
            "--epochs",
            "1",
            "--warmup",
            "0",
            "--out",
            str(tmp_path / "out"),
            "--backend",
            "ray",
            "--workers",
            "3",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "--workers 3 needs 3 CPUs but the Ray cluster has 2" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "checkpoint.json").exists()


def test_stand_alone_trainings_on_ray_equal_local(ray_cluster: Any, small_digits: Dataset) -> None:
    """Three subnets trained from scratch as Ray tasks (2 at a time, one thread each) score
    exactly as the same trainings in this process; results arrive once per job."""
    from nas.distributed import StandaloneJob, train_subnets
    from nas.train import Recipe

    recipe = Recipe(epochs=1, batch_size=64, images_per_epoch=128)
    jobs = [
        StandaloneJob("smallest", SPACE.smallest(), 0),
        StandaloneJob("largest", SPACE.largest(), 0),
        StandaloneJob("smallest-seed-1", SPACE.smallest(), 1),
    ]
    here: dict[str, dict[str, Any]] = {}
    there: dict[str, dict[str, Any]] = {}
    train_subnets(SPACE, small_digits, recipe, jobs, lambda j, r: here.__setitem__(j.key, r))
    train_subnets(
        SPACE,
        small_digits,
        recipe,
        jobs,
        lambda j, r: there.__setitem__(j.key, r),
        backend=Backend(kind="ray", workers=2),
    )
    assert sorted(there) == sorted(here) == sorted(job.key for job in jobs)
    for key in here:
        for metric in ("val_accuracy", "test_accuracy", "val_nll", "test_nll"):
            assert there[key][metric] == here[key][metric], (key, metric)
    assert here["smallest"]["val_nll"] != here["smallest-seed-1"]["val_nll"]


def test_compress_trains_on_ray_as_it_trains_here(ray_cluster: Any, tmp_path: Path) -> None:
    """nas compress of a search run's subnet (distillation from its largest subnet, pruning,
    fine-tuning, int8): with --backend ray its two trainings run as Ray tasks, and every
    stage's accuracy equals the local run's; latency is measured here in both."""
    import argparse
    import json

    from compress.arguments import add_compress_arguments
    from compress.cli import run_compress
    from tests.search.fake_run import fake_search_run

    run = fake_search_run(tmp_path)
    reports = {}
    for backend in ("local", "ray"):
        parser = argparse.ArgumentParser()
        add_compress_arguments(parser)
        out = tmp_path / backend
        argv = [str(run), "--distill-epochs", "1", "--finetune", "1", "--calib-batches", "1"]
        argv += ["--warmup", "1", "--repeats", "3", "--rounds", "1", "--out", str(out)]
        argv += ["--backend", backend]
        assert run_compress(parser.parse_args(argv)) == 0
        reports[backend] = json.loads((out / "report.json").read_text())["stages"]
    assert [s["stage"] for s in reports["ray"]] == ["original", "distilled", "pruned", "int8"]
    assert all(0 < s["accuracy"] <= 1 for s in reports["ray"])
    for here, there in zip(reports["local"], reports["ray"], strict=True):
        assert here["stage"] == there["stage"]
        assert here["accuracy"] == there["accuracy"], here["stage"]
        assert here["params"] == there["params"]
