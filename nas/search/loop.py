"""The search loop: a strategy proposes subnets, predictors score them, targets constrain them.

:func:`run_search` asks the strategy for a batch of genomes, scores the batch in one vectorised
call of the :class:`Evaluator` (predicted accuracy and latency, exact FLOPs, parameters and
size), turns the targets into violations, tells the strategy, and appends every newly scored
subnet to ``history.jsonl``; the strategy's state is saved after each batch. A killed search
resumes from both files: subnets already in the history are never scored again, and none is
lost. The result is every scored subnet, the feasible Pareto front and its hypervolume.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nas.defaults import DEFAULT_EVALUATIONS, DEFAULT_OBJECTIVES, DEFAULT_STRATEGY
from nas.errors import UserError
from nas.files import atomic_write_json, cut_torn_tail
from nas.predictors import Predictor
from nas.predictors.base import training_from_dict
from nas.predictors.features import features_and_costs
from nas.search.targets import Constraint
from nas.strategies import STRATEGIES, make_strategy
from nas.strategies.archive import row_keys
from nas.strategies.pareto import hypervolume, pareto_mask
from search_spaces import Space, canonicalize, decode_genome, to_genome

__all__ = [
    "METRICS",
    "Evaluator",
    "SearchConfig",
    "SearchResult",
    "genome_key",
    "measured_accuracies",
    "objective_matrix",
    "read_history",
    "run_search",
    "summarise",
    "violations",
]

logger = logging.getLogger(__name__)
# metric -> True when larger is better
METRICS: dict[str, bool] = {
    "accuracy": True,
    "latency": False,
    "flops": False,
    "params": False,
    "size": False,
}
HISTORY_FILE = "history.jsonl"
STATE_FILE = "strategy.json"
SAVE_EVERY = 10  # batches between saves of the strategy state


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """Which strategy, how many predictor evaluations, which objectives."""

    strategy: str = DEFAULT_STRATEGY
    evaluations: int = DEFAULT_EVALUATIONS
    batch_size: int = 100
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise UserError(
                f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}"
            )
        if self.evaluations < 1 or self.batch_size < 1:
            raise UserError("evaluations and batch size must be positive")
        unknown = [name for name in self.objectives if name not in METRICS]
        if unknown or not self.objectives:
            raise UserError(f"unknown objectives {unknown}; choose among {', '.join(METRICS)}")


class Evaluator:
    """Scores batches of genomes with predictors (accuracy, latency) and exact counts.

    ``measured_accuracy`` maps canonical genomes (as :func:`genome_key` bytes) to accuracies
    measured for real; those replace the predictions. A regressor fit on a hundred subnets
    smooths over its own training points (a ridge fit may rate the largest subnet, measured
    at 98%, at 86% like everything else), and a search that trusts it never looks where the
    measured best subnets are.
    """

    def __init__(
        self,
        space: Space,
        *,
        accuracy: Predictor | None,
        latency: Predictor | None,
        measured_accuracy: Mapping[bytes, float] | None = None,
    ) -> None:
        self.space = space
        self.accuracy = accuracy
        self.latency = latency
        self.measured_accuracy = dict(measured_accuracy or {})

    def __call__(self, genomes: np.ndarray) -> dict[str, np.ndarray]:
        features, costs = features_and_costs(self.space, genomes)
        metrics = {
            "flops": costs.flops.astype(float),
            "params": costs.params.astype(float),
            "size": costs.weight_bytes.astype(float),  # at each stage's precision
        }
        if self.accuracy is not None:
            predicted = np.clip(_predict(self.accuracy, genomes, features), 0.0, 1.0)
            if self.measured_accuracy:
                known = self.measured_accuracy
                for row, key in enumerate(row_keys(genomes)):
                    value = known.get(key.tobytes())
                    if value is not None:
                        predicted[row] = value
            metrics["accuracy"] = predicted
        if self.latency is not None:
            metrics["latency"] = np.maximum(_predict(self.latency, genomes, features), 1e-6)
        return metrics


def genome_key(genome: np.ndarray) -> bytes:
    """The dictionary key of one canonical genome (the bytes of its :func:`row_keys` key)."""
    key: bytes = row_keys(np.asarray(genome).reshape(1, -1))[0].tobytes()
    return key


def measured_accuracies(space: Space, predictor: Predictor) -> dict[bytes, float]:
    """The accuracies a fitted predictor was trained on, by :func:`genome_key` (empty for
    predictors without a training set)."""
    train = predictor.to_dict().get("train")
    if not train:
        return {}
    archs, y = training_from_dict(train)
    if y is None:
        return {}
    keys = row_keys(np.stack([to_genome(space, arch) for arch in archs]))
    return {key.tobytes(): float(v) for key, v in zip(keys, y, strict=True)}


def _predict(predictor: Predictor, genomes: np.ndarray, features: np.ndarray) -> np.ndarray:
    """Learned predictors reuse the batch's features; the others work from genomes."""
    from_features = getattr(predictor, "predict_features", None)
    if from_features is not None:
        result: np.ndarray = from_features(features)
        return result
    return predictor.predict_genomes(genomes)


def violations(
    metrics: dict[str, np.ndarray], constraints: Sequence[Constraint], *, margin: float = 0.0
) -> np.ndarray:
    """Total relative violation of every constraint, per subnet (0 when all are met).

    ``margin`` tightens latency upper bounds by that fraction (used after a verification found
    predictions too optimistic).
    """
    size = len(next(iter(metrics.values())))
    total = np.zeros(size)
    for constraint in constraints:
        if constraint.metric not in metrics:
            raise UserError(f"target {constraint} needs a {constraint.metric} predictor")
        values = metrics[constraint.metric]
        bound = constraint.value
        if constraint.metric == "latency" and constraint.is_upper_bound:
            bound *= 1.0 - margin
        if constraint.is_upper_bound:
            broken = values >= bound if constraint.op == "<" else values > bound
            excess = np.where(broken, (values - bound) / abs(bound) + 1e-9, 0.0)
        else:
            broken = values <= bound if constraint.op == ">" else values < bound
            excess = np.where(broken, (bound - values) / max(abs(bound), 1e-9) + 1e-9, 0.0)
        total += excess
    return total


def objective_matrix(metrics: dict[str, np.ndarray], objectives: Sequence[str]) -> np.ndarray:
    """Objectives to minimise: larger-is-better metrics are negated."""
    columns = []
    for name in objectives:
        if name not in metrics:
            raise UserError(f"objective {name} needs a {name} predictor")
        columns.append(-metrics[name] if METRICS[name] else metrics[name])
    return np.stack(columns, axis=1)


@dataclass
class SearchResult:
    """Every scored subnet (genomes and metrics), which are feasible, and the feasible front."""

    genomes: np.ndarray
    metrics: dict[str, np.ndarray]
    feasible: np.ndarray
    front: np.ndarray  # indices into genomes, sorted by the first objective
    hypervolume: float
    reference: list[float]
    objectives: tuple[str, ...]

    def closest(self, constraints: Sequence[Constraint]) -> int:
        """The index of the subnet that breaks the targets least."""
        return int(np.argmin(violations(self.metrics, constraints)))


def read_history(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                logger.warning("%s: line %d is cut short (a killed run); ignored", path, number)
    return rows


def run_search(
    space: Space,
    constraints: Sequence[Constraint],
    evaluator: Evaluator,
    config: SearchConfig,
    directory: str | Path,
    *,
    margin: float = 0.0,
    resume: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SearchResult:
    """Search ``space``; history and strategy state go to ``directory``."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    history_path, state_path = folder / HISTORY_FILE, folder / STATE_FILE
    if history_path.exists() and not resume:
        raise UserError(f"{folder} already holds a search; pass --resume or another --out")
    strategy = make_strategy(
        config.strategy,
        space,
        seed=config.seed,
        num_objectives=len(config.objectives),
        **config.options,
    )
    known: dict[bytes, dict[str, float]] = {}
    for row in read_history(history_path):
        genome = np.asarray(row["genome"], dtype=np.int64)
        known[genome.tobytes()] = {k: float(row[k]) for k in row if k in METRICS}
    if state_path.exists() and resume:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if state.get("margin") != margin or state.get("strategy") != config.strategy:
            raise UserError(f"{folder}: the saved search used other settings; use another --out")
        strategy.load_state_dict(state["state"])
        told = int(state["told"])
    else:
        told = 0
    order: list[bytes] = list(known)
    batches_done = 0

    cut_torn_tail(history_path)  # a line torn by a kill must not join the next one
    with open(history_path, "a", encoding="utf-8") as history:
        while told < config.evaluations:
            count = min(config.batch_size, config.evaluations - told)
            genomes = canonicalize(space, strategy.ask(count))
            keys = [g.tobytes() for g in genomes]
            fresh = [i for i, key in enumerate(keys) if key not in known]
            if fresh:
                scored = evaluator(genomes[fresh])
                for position, index in enumerate(fresh):
                    values = {name: float(scored[name][position]) for name in scored}
                    known[keys[index]] = values
                    order.append(keys[index])
                    row = {"genome": genomes[index].tolist(), **values}
                    row["arch"] = decode_genome(space, genomes[index]).to_dict()
                    history.write(json.dumps(row) + "\n")
                history.flush()
            metrics = {
                name: np.array([known[key][name] for key in keys]) for name in known[keys[0]]
            }
            strategy.tell(
                genomes,
                objective_matrix(metrics, config.objectives),
                violations(metrics, constraints, margin=margin),
            )
            told += count
            batches_done += 1
            # The state is saved every few batches: a resumed strategy asks again what it asked
            # since, and those subnets come from the history without being scored again.
            if batches_done % SAVE_EVERY == 0 or told >= config.evaluations:
                atomic_write_json(
                    state_path,
                    {
                        "strategy": config.strategy,
                        "margin": margin,
                        "told": told,
                        "state": strategy.state_dict(),
                    },
                )
            if progress is not None:
                progress(told, config.evaluations)

    genomes = np.array([np.frombuffer(key, dtype=np.int64) for key in order])
    names = list(known[order[0]]) if order else []
    all_metrics = {name: np.array([known[key][name] for key in order]) for name in names}
    return summarise(genomes, all_metrics, constraints, config.objectives, margin)


def summarise(
    genomes: np.ndarray,
    metrics: dict[str, np.ndarray],
    constraints: Sequence[Constraint],
    objectives: tuple[str, ...],
    margin: float,
) -> SearchResult:
    feasible = violations(metrics, constraints, margin=margin) == 0
    values = objective_matrix(metrics, objectives)
    reference = [0.0 if METRICS[name] else float(metrics[name].max()) * 1.1 for name in objectives]
    front = np.array([], dtype=np.int64)
    volume = 0.0
    if feasible.any():
        candidates = np.flatnonzero(feasible)
        mask = pareto_mask(values[candidates])
        front = candidates[mask]
        front = front[np.argsort(values[front, 0], kind="stable")]
        volume = float(hypervolume(values[front], np.array(reference)))
    return SearchResult(
        genomes=genomes,
        metrics=metrics,
        feasible=feasible,
        front=front,
        hypervolume=volume,
        reference=reference,
        objectives=objectives,
    )
