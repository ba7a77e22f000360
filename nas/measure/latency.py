"""Latency predictors for the user's own device: profile, fit, report.

The workflow behind ``nas latency``: :func:`profile` measures subnets chosen to cover the
space (and, for a lookup table, the operators they use) into a profile directory, resumably;
:func:`fit` builds a predictor from those measurements and saves it as portable JSON;
:func:`report` scores predictors on held-out measured subnets and draws predicted against
measured latency.

A search measures the subnets it finds, and those are not like the profile's random ones (on
``quant-28`` at batch 8 on OpenVINO many ran faster than the fastest profiled subnet, and the
lookup table put 58-60% of them within 10%, against 76-78% of held-out profiled subnets;
``experiments/latency_calibration.py``). :func:`add_verified` keeps such measurements in
``verified.jsonl`` beside the profile, and :func:`fit` fits on them too, all of them weighing as
much as the whole profile: the region a search ends in is where prediction matters.
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
from nas.measure.timing import MeasureConfig, library_versions, machine_info
from nas.predictors import (
    FlopsPredictor,
    LatencyRecord,
    LatencyTable,
    LearnedPredictor,
    Predictor,
    read_records,
    same_machine,
    save_predictor,
    space_digest,
    summarize,
)
from nas.predictors.records import append_records, open_for_append
from search_spaces import Arch, Space

__all__ = [
    "LATENCY_KINDS",
    "VERIFIED_FILE",
    "ProfileConfig",
    "add_verified",
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
VERIFIED_FILE = "verified.jsonl"
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


def add_verified(
    space: Space,
    directory: str | Path,
    archs: Sequence[Arch],
    latencies: Sequence[tuple[float, float]],
    settings: Mapping[str, Any],
) -> int:
    """Keep subnets a search measured for real (``latencies``: each one's median and
    interquartile range in ms, taken with ``settings`` on this machine) in the profile
    directory's :data:`VERIFIED_FILE`, for :func:`fit`; a subnet already there, or profiled
    with these settings, is not added again. Returns how many were added. (A search keeps no
    minimum: a record's ``min_ms`` is its median.)"""
    folder = Path(directory)
    chosen = dict(settings)
    with exclusive_lock(folder / LOCK_FILE, what=f"latency profiling in {folder}"):
        file = folder / VERIFIED_FILE
        known = {r.key for r in open_for_append(file) if r.settings == chosen}
        known |= {r.key for r in read_records(folder / MEASUREMENTS_FILE) if r.settings == chosen}
        machine, versions = machine_info(), library_versions()
        fresh = []
        for arch, (median, iqr) in zip(archs, latencies, strict=True):
            key = arch.to_json()
            if key in known:
                continue
            known.add(key)
            fresh.append(
                LatencyRecord(
                    kind="arch",
                    key=key,
                    space=space.name,
                    space_digest=space_digest(space),
                    median_ms=float(median),
                    iqr_ms=float(iqr),
                    min_ms=float(median),
                    settings=chosen,
                    machine=machine,
                    versions=versions,
                    arch=arch.to_dict(),
                )
            )
        append_records(file, fresh)
    return len(fresh)


def _verified(
    space: Space, directory: Path, settings: Mapping[str, Any], profiled: set[str]
) -> list[LatencyRecord]:
    """The verified subnets of ``directory`` measured with ``settings`` on this machine, those
    already profiled left out."""
    here = machine_info()
    found: dict[str, LatencyRecord] = {}
    for record in read_records(directory / VERIFIED_FILE):
        if (
            record.kind == "arch"
            and record.space == space.name
            and record.settings == dict(settings)
            and same_machine(record.machine, here)
            and record.key not in profiled
        ):
            found.setdefault(record.key, record)
    return list(found.values())


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
    in that directory to finish first). Subnets searches verified there (:func:`add_verified`)
    join the fit, together weighing as much as the profiled ones (in a lookup table's
    calibration; a learned predictor takes them as more points)."""
    folder = Path(directory)
    _measured(space, folder, settings)  # refused at once, before waiting for a profiling run
    with exclusive_lock(folder / LOCK_FILE, what=f"latency profiling in {folder}"):
        records, chosen = _measured(space, folder, settings)
        predictor = _build(kind, space, folder, seed, chosen)
        archs, latency = _points(records)
        verified = _verified(space, folder, chosen, {r.key for r in records})
        if not verified:
            predictor.fit(archs, latency)
        else:
            more, more_latency = _points(verified)
            archs, latency = [*archs, *more], np.concatenate([latency, more_latency])
            if isinstance(predictor, LatencyTable):
                weight = np.ones(len(latency))
                weight[len(records) :] = len(records) / len(verified)
                predictor.fit(archs, latency, weight)
            else:
                predictor.fit(archs, latency)
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
    if isinstance(predictor, LatencyTable):
        if predictor.group_scales:
            scales = ", ".join(f"{k} {v:.2f}" for k, v in sorted(predictor.group_scales.items()))
            lines.append(f"scales      {scales} (+{predictor.group_constant:.4f} ms)")
        else:
            lines.append(f"scale       {predictor.scale:.3f} (+{predictor.intercept:.4f} ms)")
    if isinstance(train, dict) and isinstance(train.get("archs"), list):
        lines.append(f"trained on  {len(train['archs'])} measured subnets")
    return lines
