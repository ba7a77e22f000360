"""Search on real evaluations as Ray Tune trials, on the session's real local cluster: every
finished trial in the trials file exactly once with the accuracy local evaluation gives, a trial
whose worker process dies retried (or recorded as failed), a resumed search that runs only the
trials not finished, and resources the cluster lacks refused in one line."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import search_spaces as ss
from nas.data import Dataset, load_dataset
from nas.distributed import Backend
from nas.errors import UserError
from nas.search import Evaluator
from nas.search.targets import parse_constraints
from nas.search.trials import SubnetScorer, TrialBook, TrialConfig
from nas.supernet import Supernet
from nas.train import evaluate

SPACE = ss.get_space("tiny")


@pytest.fixture(scope="module")
def small_digits() -> Dataset:
    data = load_dataset("digits", resolution=max(SPACE.resolution.values), seed=0)
    return dataclasses.replace(data, x_train=data.x_train[:128], y_train=data.y_train[:128])


@pytest.fixture(scope="module")
def weights() -> dict[str, Any]:
    return dict(Supernet(SPACE).state_dict())


@pytest.fixture(autouse=True)
def by_value(ray_cluster: Any) -> None:
    # The scorers below are defined here; workers get them by value, not by module name.
    ray_cluster.cloudpickle.register_pickle_by_value(sys.modules[__name__])


class DiesOnce(SubnetScorer):
    """Kills its own worker process in the first trial that reaches it (a marker file
    remembers that one died); scores normally after."""

    def __init__(self, marker: Path, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.marker = marker

    def __call__(self, arch: Mapping[str, Any]) -> dict[str, float]:
        if not self.marker.exists():
            self.marker.write_text(json.dumps(dict(arch)))
            os._exit(1)
        return super().__call__(arch)


def _book(directory: Path, trials: int, *, resume: bool = False, retries: int = 1) -> TrialBook:
    config = TrialConfig(
        strategy="nsga2", trials=trials, objectives=("accuracy", "params"), max_retries=retries
    )
    return TrialBook(
        SPACE,
        parse_constraints(["params<1M"]),
        config,
        directory,
        known_metrics=Evaluator(SPACE, accuracy=None, latency=None),
        resume=resume,
    )


def _rows(directory: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (directory / "trials.jsonl").read_text().splitlines()]


def _runs(directory: Path) -> list[Path]:
    return sorted((directory / "ray").glob("trials-*"))


def test_every_finished_trial_once_with_local_accuracy(
    ray_cluster: Any, tmp_path: Path, small_digits: Dataset, weights: dict[str, Any]
) -> None:
    from nas.distributed.tune import run_trials_on_ray

    scorer = SubnetScorer(SPACE, weights, small_digits)
    book = _book(tmp_path, 6)
    seen: list[tuple[int, int]] = []
    run_trials_on_ray(
        book, scorer, Backend(kind="ray", workers=2), progress=lambda d, t: seen.append((d, t))
    )
    rows = _rows(tmp_path)
    assert [row["trial"] for row in rows] == list(range(6))
    assert all(row["status"] == "done" and row["attempts"] == 1 for row in rows)
    assert len({tuple(row["genome"]) for row in rows}) == 6
    assert seen[-1] == (6, 6)
    for row in rows:
        expected = evaluate(scorer.supernet(), ss.Arch.from_dict(row["arch"]), small_digits)
        assert row["accuracy"] == pytest.approx(expected)
    assert len(list(_runs(tmp_path)[0].glob("trial-*"))) == 6


def test_a_trial_whose_worker_dies_is_retried(
    ray_cluster: Any, tmp_path: Path, small_digits: Dataset, weights: dict[str, Any]
) -> None:
    from nas.distributed.tune import run_trials_on_ray

    marker = tmp_path / "died"
    scorer = DiesOnce(marker, SPACE, weights, small_digits)
    run_trials_on_ray(_book(tmp_path / "run", 4), scorer, Backend(kind="ray", workers=2))
    rows = _rows(tmp_path / "run")
    assert [row["status"] for row in rows] == ["done"] * 4
    killed = json.loads(marker.read_text())
    retried = [row for row in rows if row["arch"] == killed]
    assert len(retried) == 1 and retried[0]["attempts"] == 2
    assert sorted(row["attempts"] for row in rows) == [1, 1, 1, 2]


def test_without_retries_the_dead_trial_is_recorded_failed(
    ray_cluster: Any, tmp_path: Path, small_digits: Dataset, weights: dict[str, Any]
) -> None:
    from nas.distributed.tune import run_trials_on_ray

    marker = tmp_path / "died"
    scorer = DiesOnce(marker, SPACE, weights, small_digits)
    run_trials_on_ray(_book(tmp_path / "run", 3, retries=0), scorer, Backend(kind="ray", workers=1))
    rows = _rows(tmp_path / "run")
    assert [row["status"] for row in rows] == ["failed", "done", "done"]
    assert rows[0]["arch"] == json.loads(marker.read_text())
    assert rows[0]["error"] and "accuracy" not in rows[0]


def test_a_resumed_search_runs_only_the_unfinished_trials(
    ray_cluster: Any, tmp_path: Path, small_digits: Dataset, weights: dict[str, Any]
) -> None:
    """The driver stops after 3 trials (as if killed: a new process, a new book); the resumed
    search's Tune run has only the 2 trials left, and no subnet is measured twice."""
    from nas.distributed.tune import run_trials_on_ray

    scorer = SubnetScorer(SPACE, weights, small_digits)
    run_trials_on_ray(_book(tmp_path, 3), scorer, Backend(kind="ray", workers=2))
    first = _rows(tmp_path)
    run_trials_on_ray(_book(tmp_path, 5, resume=True), scorer, Backend(kind="ray", workers=2))
    rows = _rows(tmp_path)
    assert rows[:3] == first and [row["trial"] for row in rows] == list(range(5))
    assert len({tuple(row["genome"]) for row in rows}) == 5
    runs = _runs(tmp_path)
    assert [len(list(run.glob("trial-*"))) for run in runs] == [3, 2]


def test_resources_the_cluster_lacks_are_refused(
    ray_cluster: Any, tmp_path: Path, small_digits: Dataset, weights: dict[str, Any]
) -> None:
    from nas.distributed.tune import run_trials_on_ray

    scorer = SubnetScorer(SPACE, weights, small_digits)
    with pytest.raises(UserError, match="--workers 3 needs 3 CPUs"):
        run_trials_on_ray(_book(tmp_path / "a", 2), scorer, Backend(kind="ray", workers=3))
    with pytest.raises(UserError, match="resource 'device:phone'"):
        run_trials_on_ray(
            _book(tmp_path / "b", 2), scorer, Backend(kind="ray"), latency_device="phone"
        )
