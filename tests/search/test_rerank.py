from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nas.search.rerank
import search_spaces as ss
from nas.data import load_dataset
from nas.search.rerank import (
    RERANK_FILE,
    RerankConfig,
    arch_key,
    rerank_candidates,
    train_alone,
)
from nas.search.verify import Verified, choose
from nas.train import Recipe

SPACE = ss.get_space("tiny")


def _verified(arch: ss.Arch, val: float, *, index: int = 0, meets: bool = True) -> Verified:
    return Verified(
        index=index,
        arch=arch.to_dict(),
        predicted={},
        measured_latency_ms=0.1,
        latency_iqr_ms=0.0,
        val_accuracy=val,
        meets_targets=meets,
    )


def _front() -> list[Verified]:
    rng = np.random.default_rng(0)
    archs: list[ss.Arch] = []
    while len(archs) < 4:
        arch = SPACE.sample(rng)
        if arch not in archs and arch not in ss.uniform_family(SPACE):
            archs.append(arch)
    return [
        _verified(a, v, index=i)
        for i, (a, v) in enumerate(zip(archs, (0.8, 0.9, 0.7, 0.95), strict=True))
    ]


def test_candidates_are_the_best_rated_and_the_widest_uniform_network() -> None:
    front = _front()
    family = ss.uniform_family(SPACE)
    uniform = [_verified(family[2], 0.5, index=-1), _verified(family[5], 0.6, index=-1)]
    missed = _verified(family[-1], 0.99, index=-1, meets=False)
    picked = rerank_candidates(SPACE, [*front, *uniform, missed], 2)
    # the two rated best, then the uniform network with the most multiply-adds that meets
    assert picked == [front[3], front[1], uniform[1]]
    assert rerank_candidates(SPACE, [*front, *uniform], 0) == []
    # a uniform network already among the best rated is trained once
    rated = dataclasses.replace(uniform[1], val_accuracy=0.99)
    assert rerank_candidates(SPACE, [*front, uniform[0], rated], 1) == [rated]
    # without uniform networks: only the best rated; nothing meeting the targets: nothing
    assert rerank_candidates(SPACE, front, 5) == sorted(front, key=lambda v: -v.val_accuracy)
    failing = [dataclasses.replace(v, meets_targets=False) for v in front]
    assert rerank_candidates(SPACE, failing, 3) == []


def test_choose_compares_the_score_given() -> None:
    front = _front()
    alone = {arch_key(v): s for v, s in zip(front, (0.9, 0.5, 0.6, 0.7), strict=True)}
    assert choose(SPACE, front, 6000) is front[3]
    assert choose(SPACE, front, 6000, score=lambda v: alone[arch_key(v)]) is front[0]


def test_config_refuses_negative_counts_and_zero_epochs() -> None:
    with pytest.raises(ValueError, match="count"):
        RerankConfig(count=-1)
    with pytest.raises(ValueError, match="epochs"):
        RerankConfig(count=1, epochs=0)


def test_trainings_are_written_as_they_finish_and_resumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = load_dataset("digits", resolution=20, seed=0)
    small = dataclasses.replace(data, x_train=data.x_train[:256], y_train=data.y_train[:256])
    recipe = Recipe(epochs=1, batch_size=64)
    candidates = _front()[:2]
    results = train_alone(SPACE, small, recipe, candidates, tmp_path, seed=3)
    assert [r["arch"] for r in results] == [v.arch for v in candidates]
    assert all(0.0 <= r["val_accuracy"] <= 1.0 and r["seconds"] > 0 for r in results)
    stored = json.loads((tmp_path / RERANK_FILE).read_text())
    assert stored["settings"]["seed"] == 3 and len(stored["results"]) == 2

    trained: list[Any] = []
    original = nas.search.rerank.train_subnets

    def recording(*args: Any, **kwargs: Any) -> None:
        trained.extend(args[3])
        original(*args, **kwargs)

    monkeypatch.setattr(nas.search.rerank, "train_subnets", recording)
    more = [*candidates, _front()[2]]
    again = train_alone(SPACE, small, recipe, more, tmp_path, seed=3)
    assert again[:2] == results  # the first two come from the file
    assert [job.arch.to_dict() for job in trained] == [more[2].arch]
    trained.clear()
    train_alone(SPACE, small, recipe, more[:1], tmp_path, seed=4)  # another seed: trained again
    assert len(trained) == 1
