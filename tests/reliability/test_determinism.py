"""Same seed, same data, same result: supernet weights bit for bit (CPU, one thread), every
strategy's search history and front, the pruned and fine-tuned model's state_dict.

(The kill tests check the same across processes: an uninterrupted run of ``nas train``,
``nas search`` and ``nas prune`` against a killed and resumed one.)"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

import search_spaces as ss
from compress.pruning import finetune, prune
from nas.data import Dataset, load_dataset
from nas.predictors import load_predictor
from nas.search import Evaluator, SearchConfig, run_search
from nas.search.targets import parse_constraints
from nas.search.workdir import Workdir
from nas.strategies import STRATEGIES
from nas.train import TrainConfig, make_schedule, train_supernet
from tests.compress import models
from tests.strategies.conftest import profile

SPACE = ss.get_space("tiny")


@pytest.fixture(scope="module")
def digits() -> Dataset:
    data = load_dataset("digits", resolution=20, seed=0)
    return dataclasses.replace(data, x_train=data.x_train[:384], y_train=data.y_train[:384])


def test_same_seed_trains_the_same_supernet_weights(digits: Dataset, tmp_path: Path) -> None:
    def weights(out: Path, seed: int) -> dict[str, torch.Tensor]:
        supernet = train_supernet(
            SPACE,
            digits,
            make_schedule("all", epochs=2, lr=0.1, warmup=1),
            TrainConfig(batch_size=64, num_random=1, calibration_size=64, threads=1, seed=seed),
            out,
        )
        return {k: v.clone() for k, v in supernet.state_dict().items()}

    first, second = weights(tmp_path / "one", 0), weights(tmp_path / "two", 0)
    assert first.keys() == second.keys()
    assert [k for k in first if not torch.equal(first[k], second[k])] == []
    other = weights(tmp_path / "three", 1)
    assert any(not torch.equal(first[k], other[k]) for k in first if first[k].is_floating_point())


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_same_seed_searches_the_same_subnets_and_front(
    strategy: str, base_workdir: Path, tmp_path: Path
) -> None:
    paths = Workdir(base_workdir, SPACE.name)
    evaluator = Evaluator(
        SPACE,
        accuracy=load_predictor(paths.accuracy, SPACE),
        latency=load_predictor(paths.latency / "onnxruntime-t1-b1" / "latency-learned.json"),
    )
    constraints = parse_constraints(["latency<1s", "params<1M"])
    cheap = profile(strategy)  # the strategy conformance tests' small settings
    config = SearchConfig(
        strategy=strategy,
        evaluations=8 * cheap.batch if cheap.batch > 1 else 4,
        batch_size=cheap.batch,
        objectives=("accuracy", "latency")[: cheap.num_objectives],
        options=cheap.options,
        seed=3,
    )
    first, second = (
        run_search(SPACE, constraints, evaluator, config, tmp_path / name)
        for name in ("one", "two")
    )
    assert (tmp_path / "one" / "history.jsonl").read_bytes() == (
        tmp_path / "two" / "history.jsonl"
    ).read_bytes()
    assert np.array_equal(first.genomes, second.genomes)
    assert np.array_equal(first.front, second.front) and len(first.front) > 0
    assert first.hypervolume == second.hypervolume
    assert all(np.array_equal(first.metrics[k], second.metrics[k]) for k in first.metrics)


def test_same_seed_prunes_and_fine_tunes_the_same_model() -> None:
    data = load_dataset("digits", resolution=models.RESOLUTION, seed=0)
    data = dataclasses.replace(data, x_train=data.x_train[:256], y_train=data.y_train[:256])

    def pruned(seed: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        model = models.plain_cnn().eval()
        calibration = (torch.as_tensor(data.x_train[:64]), torch.as_tensor(data.y_train[:64]))
        example = torch.as_tensor(data.x_train[:2])
        small = prune(model, example, ratio=0.5, importance="taylor", calibration=calibration)
        finetune(small, data, epochs=2, teacher=model, seed=seed)
        return small.state_dict()

    first, second = pruned(0), pruned(0)
    assert first.keys() == second.keys()
    assert [k for k in first if not torch.equal(first[k], second[k])] == []
    other = pruned(1)
    assert any(not torch.equal(first[k], other[k]) for k in first if first[k].is_floating_point())
