from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import search_spaces as ss
from nas.errors import UserError
from nas.predictors import genome_costs
from nas.search import Evaluator, SearchConfig, objective_matrix, run_search, violations
from nas.search.targets import parse_constraints

SPACE = ss.get_space("tiny")


class _FakeLatency:
    """Latency proportional to FLOPs: 1 ms per 100K multiply-adds."""

    target = "latency"

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray:
        return genome_costs(SPACE, genomes).flops / 1e5


class _FakeAccuracy:
    """Accuracy growing with log FLOPs, deterministic."""

    target = "accuracy"

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray:
        flops = genome_costs(SPACE, genomes).flops
        return 0.5 + 0.04 * np.log(flops / 1e4)


class _Counting(Evaluator):
    def __init__(self) -> None:
        super().__init__(SPACE, accuracy=_FakeAccuracy(), latency=_FakeLatency())  # type: ignore[arg-type]
        self.scored = 0

    def __call__(self, genomes: np.ndarray) -> dict[str, np.ndarray]:
        self.scored += len(genomes)
        return super().__call__(genomes)


def test_violations_and_objectives() -> None:
    metrics = {"latency": np.array([1.0, 2.0, 3.0]), "accuracy": np.array([0.9, 0.95, 0.99])}
    constraints = parse_constraints(["latency<2.5ms", "accuracy>0.92"])
    v = violations(metrics, constraints)
    assert v[1] == 0 and v[0] > 0 and v[2] > 0
    assert violations(metrics, parse_constraints(["latency<=2ms"]))[1] == 0
    assert violations(metrics, parse_constraints(["latency<2ms"]))[1] > 0
    tightened = violations(metrics, parse_constraints(["latency<2.5ms"]), margin=0.5)
    assert list(tightened > 0) == [False, True, True]
    objectives = objective_matrix(metrics, ("accuracy", "latency"))
    assert objectives[:, 0].tolist() == [-0.9, -0.95, -0.99]
    with pytest.raises(UserError, match="params predictor"):
        violations(metrics, parse_constraints(["params<1M"]))


def test_search_finds_a_feasible_front(tmp_path: Path) -> None:
    evaluator = _Counting()
    constraints = parse_constraints(["latency<1.5ms"])
    config = SearchConfig(strategy="nsga2", evaluations=600, batch_size=50, seed=1)
    result = run_search(SPACE, constraints, evaluator, config, tmp_path / "run")
    assert len(result.genomes) == evaluator.scored <= 600
    assert len(result.front) > 0 and result.hypervolume > 0
    front_latency = result.metrics["latency"][result.front]
    assert (front_latency < 1.5).all()
    front_accuracy = result.metrics["accuracy"][result.front]
    assert (np.diff(front_accuracy) <= 1e-12).all()  # sorted by accuracy, best first
    rows = (tmp_path / "run" / "history.jsonl").read_text().splitlines()
    assert len(rows) == len(result.genomes)
    first = json.loads(rows[0])
    SPACE.validate(ss.Arch.from_dict(first["arch"]))
    with pytest.raises(UserError, match="already holds a search"):
        run_search(SPACE, constraints, evaluator, config, tmp_path / "run")


def test_killed_search_resumes_without_rescoring(tmp_path: Path) -> None:
    constraints = parse_constraints(["latency<1.5ms"])
    config = SearchConfig(strategy="nsga2", evaluations=400, batch_size=50, seed=3)
    straight = run_search(SPACE, constraints, _Counting(), config, tmp_path / "straight")

    class _Killed(Exception):
        """Stands for the process being killed."""

    def kill(done: int, total: int) -> None:
        if done == 200:
            raise _Killed

    killed = _Counting()
    with pytest.raises(_Killed):
        run_search(SPACE, constraints, killed, config, tmp_path / "killed", progress=kill)
    before = len((tmp_path / "killed" / "history.jsonl").read_text().splitlines())
    assert before == killed.scored
    resumed = _Counting()
    result = run_search(SPACE, constraints, resumed, config, tmp_path / "killed", resume=True)
    assert killed.scored + resumed.scored == len(result.genomes)  # nothing scored twice
    assert sorted(map(bytes, result.genomes)) == sorted(map(bytes, straight.genomes))
    assert result.hypervolume == pytest.approx(straight.hypervolume)


def test_unknown_strategy_and_objective() -> None:
    with pytest.raises(UserError, match="unknown strategy 'annealing'"):
        SearchConfig(strategy="annealing")
    with pytest.raises(UserError, match="unknown objectives"):
        SearchConfig(objectives=("beauty",))


def test_no_feasible_subnet_reports_the_closest(tmp_path: Path) -> None:
    constraints = parse_constraints(["latency<0.0001ms"])
    config = SearchConfig(strategy="random", evaluations=100, batch_size=50)
    result = run_search(SPACE, constraints, _Counting(), config, tmp_path / "run")
    assert not result.feasible.any() and len(result.front) == 0
    closest = result.closest(constraints)
    assert result.metrics["latency"][closest] == result.metrics["latency"].min()


def test_measured_accuracies_replace_predictions() -> None:
    from nas.predictors import AccuracyPredictor
    from nas.search import genome_key, measured_accuracies

    rng = np.random.default_rng(3)
    archs = [SPACE.largest(), SPACE.smallest(), *(SPACE.sample(rng) for _ in range(20))]
    y = np.array([0.99, 0.6, *rng.uniform(0.7, 0.8, size=20)])
    predictor = AccuracyPredictor(SPACE).fit(archs, y)
    known = measured_accuracies(SPACE, predictor)
    assert len(known) == len({a.to_json() for a in archs})
    largest = ss.to_genome(SPACE, SPACE.largest())
    assert known[genome_key(largest)] == 0.99
    other = ss.sample_genomes(SPACE, np.random.default_rng(9), 5)
    genomes = np.vstack([largest, other])
    plain = Evaluator(SPACE, accuracy=predictor, latency=None)(genomes)["accuracy"]
    exact = Evaluator(SPACE, accuracy=predictor, latency=None, measured_accuracy=known)(genomes)
    assert exact["accuracy"][0] == 0.99
    # Genomes never measured keep their predictions.
    unknown = [genome_key(g) not in known for g in other]
    assert np.array_equal(exact["accuracy"][1:][unknown], plain[1:][unknown])
