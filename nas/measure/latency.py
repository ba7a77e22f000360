"""Latency predictors for the user's own device: profile, fit, report.

The workflow behind ``nas latency``: :func:`profile` measures subnets chosen to cover the
space (and, for a lookup table, the operators they use) into a profile directory, resumably;
:func:`fit` builds a predictor from those measurements and saves it as portable JSON;
:func:`report` scores predictors on held-out measured subnets and draws predicted against
measured latency.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas.errors import UserError
from nas.files import LOCK_FILE, exclusive_lock
from nas.measure.profiling import (
    BLOCKS_FILE,
    MEASUREMENTS_FILE,
    profile_blocks,
    profile_latency,
    sample_for_coverage,
)
from nas.measure.timing import MeasureConfig
from nas.predictors import (
    FlopsPredictor,
    LatencyRecord,
    LatencyTable,
    LearnedPredictor,
    Predictor,
    read_records,
    save_predictor,
    summarize,
)
from search_spaces import Arch, Space

__all__ = [
    "LATENCY_KINDS",
    "ProfileConfig",
    "best_kind",
    "fit",
    "fitted_settings",
    "latency_kind",
    "predictor_path",
    "profile",
    "profiled_archs",
    "report",
]

logger = logging.getLogger(__name__)
LATENCY_KINDS = ("learned", "table", "flops")
Progress = Callable[[int, int], None]


@dataclass(frozen=True, kw_only=True)
class ProfileConfig:
    """Which subnets to measure, how, and where the measurements go."""

    measure: MeasureConfig
    subnets: int = 150
    seed: int = 0
    table: bool = False  # also measure the operators of the measured subnets

    def __post_init__(self) -> None:
        if self.subnets < 2:
            raise UserError(f"profile at least 2 subnets, got {self.subnets}")


def profile(
    space: Space,
    config: ProfileConfig,
    directory: str | Path,
    *,
    progress: Progress | None = None,
) -> list[LatencyRecord]:
    """Measure ``config.subnets`` subnets (smallest, largest, the rest stratified by FLOPs) and,
    with ``config.table``, their operators. Rerun on the same directory, it measures only what
    is missing."""
    folder = Path(directory)
    archs = sample_for_coverage(space, np.random.default_rng(config.seed), config.subnets)
    with exclusive_lock(folder / LOCK_FILE, what=f"latency profiling in {folder}"):
        folder.mkdir(parents=True, exist_ok=True)
        records = profile_latency(space, archs, config.measure, folder, progress=progress)
        if config.table:
            profile_blocks(space, config.measure, folder, archs=archs, progress=progress)
    return records


def _measured(
    space: Space, directory: Path, settings: Mapping[str, Any] | None
) -> tuple[list[LatencyRecord], dict[str, Any]]:
    """The subnet records of ``space`` in a profile directory measured with ``settings`` (by
    default those of its latest measurement), and those settings; one read of the file."""
    file = directory / MEASUREMENTS_FILE
    every = read_records(file)
    if settings is None:
        settings = every[-1].settings if every else {}
    chosen = dict(settings)
    records = [
        r for r in every if r.kind == "arch" and r.space == space.name and r.settings == chosen
    ]
    if not records:
        raise UserError(
            f"no measurements of space {space.name!r} in {file}; run `nas latency profile "
            f"--space {space.name} --out {directory}` first"
        )
    return records, chosen


def profiled_archs(
    space: Space, directory: str | Path, settings: Mapping[str, Any] | None = None
) -> tuple[list[Arch], np.ndarray]:
    """The subnets of a profile directory measured with ``settings`` (by default those of its
    latest measurement) and their median latencies (ms)."""
    return _points(_measured(space, Path(directory), settings)[0])


def _points(records: Sequence[LatencyRecord]) -> tuple[list[Arch], np.ndarray]:
    archs = [Arch.from_dict(r.arch) for r in records if r.arch is not None]
    return archs, np.array([r.median_ms for r in records])


def fitted_settings(path: str | Path) -> dict[str, Any] | None:
    """The measurement settings a saved latency predictor was fitted on (None if unreadable)."""
    try:
        settings = json.loads(Path(path).read_text(encoding="utf-8")).get("settings")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return None
    return dict(settings) if isinstance(settings, dict) else None


def _build(
    kind: str, space: Space, directory: Path, seed: int, settings: Mapping[str, Any]
) -> Predictor:
    if kind == "learned":
        from nas.predictors import LearnedConfig

        return LearnedPredictor(space, LearnedConfig(seed=seed))
    if kind == "flops":
        return FlopsPredictor(space)
    if kind == "table":
        operators = [
            r
            for r in read_records(directory / BLOCKS_FILE)
            if r.space == space.name and r.settings == settings
        ]
        if not operators:
            raise UserError(
                f"no operator measurements in {directory / BLOCKS_FILE}; profile with --table"
            )
        return LatencyTable(space, operators)
    raise UserError(f"unknown predictor kind {kind!r}; choose one of {', '.join(LATENCY_KINDS)}")


def predictor_path(directory: str | Path, kind: str) -> Path:
    return Path(directory) / f"latency-{kind}.json"


def fit(
    space: Space,
    directory: str | Path,
    *,
    kind: str = "learned",
    seed: int = 0,
    settings: Mapping[str, Any] | None = None,
) -> Path:
    """Fit a latency predictor on the measurements with ``settings`` (by default those of the
    latest one) in a profile directory and save it there as JSON (waiting for a profiling run
    in that directory to finish first)."""
    folder = Path(directory)
    _measured(space, folder, settings)  # refused at once, before waiting for a profiling run
    with exclusive_lock(folder / LOCK_FILE, what=f"latency profiling in {folder}"):
        records, chosen = _measured(space, folder, settings)
        predictor = _build(kind, space, folder, seed, chosen)
        predictor.fit(*_points(records))
        return save_predictor(
            predictor,
            predictor_path(folder, kind),
            settings=chosen,
            machine=records[0].machine,
            versions=records[0].versions,
        )


def report(
    space: Space,
    directory: str | Path,
    *,
    kinds: Sequence[str] = LATENCY_KINDS,
    holdout: float = 0.25,
    seed: int = 0,
    plot: str | Path | None = None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, float]]:
    """Fit each kind of predictor on part of the subnets measured with ``settings`` (by default
    those of the latest measurement) and score it on the rest (share within 10%, Kendall tau,
    RMSE); optionally save a predicted-vs-measured PNG."""
    if not 0 < holdout < 1:
        raise UserError(f"holdout must be in (0, 1), got {holdout}")
    folder = Path(directory)
    records, settings = _measured(space, folder, settings)
    archs, latency = _points(records)
    if len(archs) < 8:
        raise UserError(f"only {len(archs)} subnets measured in {folder}; profile at least 8")
    order = np.random.default_rng(seed).permutation(len(archs))
    cut = max(2, round(len(archs) * (1 - holdout)))
    train, test = order[:cut], order[cut:]
    scores: dict[str, dict[str, float]] = {}
    predictions: dict[str, np.ndarray] = {}
    for kind in kinds:
        if kind == "table" and not (folder / BLOCKS_FILE).exists():
            logger.info("no operator measurements: skipping the lookup table")
            continue
        predictor = _build(kind, space, folder, seed, settings)
        predictor.fit([archs[i] for i in train], latency[train])
        predicted = predictor.predict([archs[i] for i in test])
        predictions[kind] = predicted
        scores[kind] = summarize(predicted, latency[test])
    if plot is not None:
        _scatter(predictions, latency[test], Path(plot), space, settings)
    return scores


def latency_kind(predictor_kind: str) -> str:
    """The name :data:`LATENCY_KINDS` gives a fitted predictor's ``kind`` (a lookup table's
    files say ``latency_table``)."""
    return "table" if predictor_kind == "latency_table" else predictor_kind


def best_kind(
    space: Space,
    directory: str | Path,
    *,
    kinds: Sequence[str] = ("learned", "table"),
    seed: int = 0,
    settings: Mapping[str, Any] | None = None,
) -> tuple[str, dict[str, dict[str, float]]]:
    """The kind of predictor that predicts held-out subnets of a profile directory best (the
    largest share within 10% of measured; the smaller mean relative error breaks a tie; the
    first of ``kinds`` where both are equal), and every kind's scores (:func:`report`'s
    quarter held out). Kinds that cannot be built there (a table without operator
    measurements) are left out."""
    scores = report(space, directory, kinds=kinds, seed=seed, settings=settings)
    if not scores:
        raise UserError(f"none of {', '.join(kinds)} can be fitted in {directory}")
    order = {kind: index for index, kind in enumerate(kinds)}
    chosen = min(
        scores,
        key=lambda kind: (
            -scores[kind]["within_tolerance"],
            round(scores[kind]["mean_abs_rel_error"], 4),
            order[kind],
        ),
    )
    return chosen, scores


def _scatter(
    predictions: dict[str, np.ndarray],
    measured: np.ndarray,
    path: Path,
    space: Space,
    settings: Mapping[str, Any],
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 5))
    for kind, predicted in predictions.items():
        axes.scatter(measured, predicted, s=12, label=kind, alpha=0.7)
    low, high = float(measured.min()) * 0.9, float(measured.max()) * 1.1
    axes.plot([low, high], [low, high], color="black", linewidth=0.8)
    axes.fill_between(
        [low, high],
        [low * 0.9, high * 0.9],
        [low * 1.1, high * 1.1],
        color="grey",
        alpha=0.15,
        label="±10%",
    )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("measured latency (ms)")
    axes.set_ylabel("predicted latency (ms)")
    axes.set_title(f"{space.name}: held-out subnets\n{settings}", fontsize=8)
    axes.legend(fontsize=8)
    figure.tight_layout()
    temporary = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(temporary, dpi=120)
    plt.close(figure)
    temporary.replace(path)


def describe(path: str | Path) -> list[str]:
    """Readable lines about a saved predictor file (it is loaded, so it is also checked)."""
    import json

    from nas.predictors import load_predictor

    predictor = load_predictor(path)
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    state = data.get("predictor", {})
    hyper = state.get("hyper", {})
    train = state.get("train") or {}
    lines = [
        f"kind        {data.get('kind')} ({predictor.target})",
        f"space       {predictor.space.name}",
        f"settings    {data.get('settings')}",
        f"machine     {data.get('machine')}",
        f"versions    {data.get('versions')}",
    ]
    if hyper.get("model"):
        lines.append(f"model       {hyper['model']} on {hyper.get('transform')} target")
    if hyper.get("cv_scores"):
        scores = ", ".join(f"{k} {v:.4f}" for k, v in hyper["cv_scores"].items())
        lines.append(f"CV error    {scores}")
    if isinstance(state.get("table"), list):
        lines.append(f"operators   {len(state['table'])}")
    if isinstance(train, dict) and isinstance(train.get("archs"), list):
        lines.append(f"trained on  {len(train['archs'])} measured subnets")
    return lines
