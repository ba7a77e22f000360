from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import search_spaces as ss
from nas.data import load_dataset
from nas.measure import MeasureConfig
from nas.measure.latency import ProfileConfig, fit, profile
from nas.predictors import AccuracyPredictor, save_predictor
from nas.search.workdir import Workdir
from nas.train import TrainConfig, evaluate, make_schedule, train_supernet

SPACE = ss.get_space("tiny")


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """In-process runs use one torch thread, as the commands started here do."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@pytest.fixture(scope="package")
def base_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work directory for ``nas search --space tiny --data digits``: a briefly trained
    supernet, a latency predictor (ONNX Runtime, 1 thread, batch 1) and an accuracy predictor,
    all small. Tests copy it (:func:`copy_workdir`): searches add to their work directory."""
    root = tmp_path_factory.mktemp("base-workdir")
    paths = Workdir(root, SPACE.name)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = load_dataset("digits", resolution=20, seed=0)
        small = dataclasses.replace(data, x_train=data.x_train[:512], y_train=data.y_train[:512])
        supernet = train_supernet(
            SPACE,
            small,
            make_schedule("all", epochs=2, lr=0.1, warmup=1),
            TrainConfig(batch_size=64, num_random=1, calibration_size=64, threads=1),
            paths.supernet,
        )
        folder = paths.latency / "onnxruntime-t1-b1"
        # the settings nas search measures with, so that it reuses this predictor
        profile(SPACE, ProfileConfig(measure=MeasureConfig(), subnets=12), folder)
        fit(SPACE, folder, kind="learned")
        archs = [SPACE.sample(np.random.default_rng(i)) for i in range(12)]
        scores = [evaluate(supernet, a, small, calibration_size=64) for a in archs]
        save_predictor(AccuracyPredictor(SPACE).fit(archs, np.array(scores)), paths.accuracy)
    finally:
        torch.set_num_threads(previous)
    return root


def copy_workdir(base: Path, to: Path) -> Path:
    shutil.copytree(base, to)
    return to
