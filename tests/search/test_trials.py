"""Search on real evaluations run here (nas.search.trials): every finished trial in the trials
file exactly once, resume without re-running a finished trial, failed trials retried then
recorded, settings checked on resume, and ``nas tune`` end to end with its bad inputs."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import search_spaces as ss
from nas.cli import main
from nas.data import Dataset, load_dataset
from nas.errors import UserError
from nas.search import Evaluator
from nas.search.targets import parse_constraints
from nas.search.trials import (
    STATE_FILE,
    SubnetScorer,
    TrialBook,
    TrialConfig,
    run_trials_here,
)
from nas.supernet import Supernet
from nas.train import evaluate

SPACE = ss.get_space("tiny")
TARGETS = parse_constraints(["params<1M"])
OBJECTIVES = ("accuracy", "params")


@pytest.fixture(scope="module")
def small_digits() -> Dataset:
    data = load_dataset("digits", resolution=max(SPACE.resolution.values), seed=0)
    return dataclasses.replace(data, x_train=data.x_train[:128], y_train=data.y_train[:128])


@pytest.fixture(scope="module")
def scorer(small_digits: Dataset) -> SubnetScorer:
    supernet = Supernet(SPACE)
    return SubnetScorer(SPACE, supernet.state_dict(), small_digits)


def _book(directory: Path, trials: int, *, resume: bool = False, **options: Any) -> TrialBook:
    config = TrialConfig(strategy="random", trials=trials, objectives=OBJECTIVES, **options)
    known = Evaluator(SPACE, accuracy=None, latency=None)
    return TrialBook(SPACE, TARGETS, config, directory, known_metrics=known, resume=resume)


def _rows(directory: Path) -> list[dict[str, Any]]:
    lines = (directory / "trials.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


class Counting:
    """Wraps a scorer; remembers every arch it measured."""

    def __init__(self, scorer: SubnetScorer) -> None:
        self.scorer = scorer
        self.calls: list[dict[str, Any]] = []

    def __call__(self, arch: Mapping[str, Any]) -> dict[str, float]:
        self.calls.append(dict(arch))
        return self.scorer(arch)


def test_every_trial_once_with_its_real_accuracy(tmp_path: Path, scorer: SubnetScorer) -> None:
    book = _book(tmp_path, 6)
    counting = Counting(scorer)
    run_trials_here(book, counting)
    rows = _rows(tmp_path)
    assert [row["trial"] for row in rows] == list(range(6))
    assert len({tuple(row["genome"]) for row in rows}) == 6
    assert len(counting.calls) == 6
    for row in rows[:2]:
        arch = ss.Arch.from_dict(row["arch"])
        expected = evaluate(scorer.supernet(), arch, scorer.dataset, split="val")
        assert row["accuracy"] == pytest.approx(expected)
        assert row["params"] == SPACE.params(arch)
    result = book.result()
    assert len(result.genomes) == 6 and result.feasible.all() and len(result.front) >= 1


def test_resume_runs_only_the_trials_not_finished(tmp_path: Path, scorer: SubnetScorer) -> None:
    """A search stopped after 4 of its trials (its strategy state also lost, as a kill between
    the two writes would leave it) continues to 7 without measuring any of the 4 again."""
    run_trials_here(_book(tmp_path, 4), scorer)
    first = _rows(tmp_path)
    (tmp_path / STATE_FILE).unlink()
    counting = Counting(scorer)
    run_trials_here(_book(tmp_path, 7, resume=True), counting)
    rows = _rows(tmp_path)
    assert rows[:4] == first
    assert [row["trial"] for row in rows] == list(range(7))
    assert len(counting.calls) == 3
    assert len({tuple(row["genome"]) for row in rows}) == 7
    measured_again = {json.dumps(call, sort_keys=True) for call in counting.calls}
    assert not measured_again & {json.dumps(row["arch"], sort_keys=True) for row in first}


def test_a_failing_trial_is_retried_then_recorded(tmp_path: Path, scorer: SubnetScorer) -> None:
    """The second trial's first attempt fails (retried: done in 2 attempts); the fourth fails
    every time (recorded as failed, not told, the search goes on)."""
    attempts: dict[str, int] = {}
    order: list[str] = []

    def flaky(arch: Mapping[str, Any]) -> dict[str, float]:
        key = json.dumps(arch, sort_keys=True)
        if key not in attempts:
            order.append(key)
        attempts[key] = attempts.get(key, 0) + 1
        position = order.index(key)
        if (position == 1 and attempts[key] == 1) or position == 3:
            raise RuntimeError(f"evaluation {position} broke\nsecond line")
        return scorer(arch)

    run_trials_here(_book(tmp_path, 5, max_retries=1), flaky)
    rows = _rows(tmp_path)
    assert [row["status"] for row in rows] == ["done", "done", "done", "failed", "done"]
    assert [row["attempts"] for row in rows] == [1, 2, 1, 2, 1]
    assert rows[3]["error"] == "evaluation 3 broke" and "accuracy" not in rows[3]


def test_a_search_whose_trials_all_fail_stops_with_the_error(tmp_path: Path) -> None:
    def broken(arch: Mapping[str, Any]) -> dict[str, float]:
        raise ValueError("no such weights")

    with pytest.raises(UserError, match=r"first 3 trials all failed.*no such weights"):
        run_trials_here(_book(tmp_path, 10, max_retries=0), broken)
    assert len(_rows(tmp_path)) == 3


def test_resume_with_other_settings_is_refused(tmp_path: Path, scorer: SubnetScorer) -> None:
    run_trials_here(_book(tmp_path, 2), scorer)
    with pytest.raises(UserError, match="other settings"):
        _book(tmp_path, 4, resume=True, seed=1)
    with pytest.raises(UserError, match="already holds a search"):
        _book(tmp_path, 4)


def test_scorer_pickles_without_its_built_supernet(scorer: SubnetScorer) -> None:
    import pickle

    scorer.supernet()
    copy = pickle.loads(pickle.dumps(scorer))
    assert copy._supernet is None
    arch = SPACE.smallest().to_dict()
    assert copy(arch) == pytest.approx(scorer(arch))


def test_a_scorer_on_the_target_device_measures_latency(scorer: SubnetScorer) -> None:
    from nas.measure import MeasureConfig

    measuring = SubnetScorer(
        SPACE,
        scorer.weights,
        scorer.dataset,
        measure=MeasureConfig(warmup=1, repeats=3, rounds=1),
    )
    arch = SPACE.smallest().to_dict()
    scores = measuring(arch)
    assert scores["accuracy"] == pytest.approx(scorer(arch)["accuracy"])
    assert 0 < scores["latency"] < 1000


def _tiny_workdir(tmp_path: Path) -> Path:
    """A work directory holding an untrained tiny supernet (training is not what is tested)."""
    from nas.train import TrainConfig, make_schedule, train_supernet

    data = load_dataset("digits", resolution=max(SPACE.resolution.values), seed=0)
    data = dataclasses.replace(data, x_train=data.x_train[:64], y_train=data.y_train[:64])
    workdir = tmp_path / "work"
    train_supernet(
        SPACE,
        data,
        make_schedule("all", epochs=1, lr=0.1, warmup=0),
        TrainConfig(batch_size=64, num_random=1, calibration_size=32, monitor_images=20),
        workdir / f"supernet-{SPACE.name}",
    )
    return workdir


def test_nas_tune_here_and_resumed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workdir = _tiny_workdir(tmp_path)
    out = tmp_path / "tune"
    common = ["tune", "--space", "tiny", "--data", "digits", "--workdir", str(workdir)]
    common += ["--target", "params<1M", "--objective", "accuracy", "--objective", "params"]
    common += ["--strategy", "nsga2", "--out", str(out)]
    assert main([*common, "--trials", "3"]) == 0
    assert main([*common, "--trials", "5", "--resume"]) == 0
    text = capsys.readouterr().out
    assert "5 trials done, 0 failed" in text
    rows = _rows(out)
    assert [row["trial"] for row in rows] == list(range(5))
    front = json.loads((out / "front.json").read_text())
    assert front["objectives"] == ["accuracy", "params"] and front["front"]
    assert np.isclose(
        max(point["accuracy"] for point in front["front"]),
        max(row["accuracy"] for row in rows),
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--trials", "0"], "--trials must be at least 1"),
        (["--max-retries", "-1"], "--max-retries must be >= 0"),
        (["--latency-device", "phone"], "--latency-device needs --backend ray"),
        (["--workers", "2"], "--workers needs --backend ray"),
        (["--resume"], "--resume needs the --out"),
        (["--strategy", "annealing"], "unknown strategy 'annealing'"),
        (["--strategy", "evolution"], "evolution optimises one objective"),
    ],
)
def test_nas_tune_bad_input(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["tune", "--space", "tiny", "--data", "digits", "--target", "params<1M"]
    argv += ["--workdir", str(tmp_path)]
    try:
        code = main([*argv, *extra])
    except SystemExit as exc:  # argparse's own errors
        code = int(str(exc.code))
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())
