"""What a search needs, built on demand and cached: supernet, latency and accuracy predictors.

``nas search`` on a fresh machine calls these: each returns what is already in the work
directory when it is there and valid for the space, and otherwise builds it (training the
supernet with the defaults of ``nas train``, profiling latency on this machine, evaluating
subnets of the supernet), saves it, and returns it; a second run takes seconds. A run killed
while building resumes the piece it was building (training and profiling are resumable).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas.data import Dataset
from nas.defaults import DEFAULT_EPOCHS, DEFAULT_LR, DEFAULT_SCHEDULE, DEFAULT_WARMUP
from nas.distributed import Backend, evaluate_subnets
from nas.errors import UserError
from nas.files import LOCK_FILE, atomic_write_json, exclusive_lock
from nas.measure import MeasureConfig
from nas.measure.latency import (
    ProfileConfig,
    add_verified,
    best_kind,
    fit,
    fitted_settings,
    latency_kind,
    predictor_path,
    profile,
)
from nas.measure.profiling import profile_blocks, sample_for_coverage, settings_of
from nas.predictors import (
    AccuracyPredictor,
    Predictor,
    load_predictor,
    save_predictor,
    space_operators,
)
from nas.predictors.base import training_from_dict
from nas.supernet import Supernet
from nas.train import (
    CHECKPOINT_FILE,
    EpochResult,
    StepResult,
    TrainConfig,
    load_checkpoint,
    load_supernet,
    make_schedule,
    train_supernet,
)
from search_spaces import Arch, Space, subspace_problem

__all__ = [
    "LATENCY_PREDICTORS",
    "Workdir",
    "ensure_accuracy_predictor",
    "ensure_latency_predictor",
    "ensure_supernet",
    "latency_choice",
    "latency_predictor_kind",
    "refine_accuracy_predictor",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Workdir:
    """Where the pieces of one space live: ``root/supernet-SPACE``, ``root/latency-SPACE``..."""

    root: Path
    space: str

    @property
    def supernet(self) -> Path:
        return self.root / f"supernet-{self.space}"

    @property
    def latency(self) -> Path:
        return self.root / f"latency-{self.space}"

    @property
    def accuracy(self) -> Path:
        return self.root / f"accuracy-{self.space}" / "accuracy-predictor.json"

    @property
    def measured(self) -> Path:
        """Subnets measured for real by searches (:class:`nas.search.measured.MeasuredCache`)."""
        return self.root / f"measured-{self.space}.jsonl"

    @property
    def costs(self) -> Path:
        """Seconds each piece took to build here (supernet, latency, accuracy), as JSON."""
        return self.root / f"costs-{self.space}.json"

    def read_costs(self) -> dict[str, float]:
        try:
            data = json.loads(self.costs.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def add_cost(self, piece: str, seconds: float) -> None:
        """Add ``seconds`` to what building ``piece`` has cost (a resumed build adds up)."""
        lock = self.costs.with_name(f".{self.costs.name}{LOCK_FILE}")
        with exclusive_lock(lock, what=f"an update of {self.costs}"):
            costs = self.read_costs()
            costs[piece] = costs.get(piece, 0.0) + seconds
            atomic_write_json(self.costs, costs)


def ensure_supernet(
    space: Space,
    dataset: Dataset,
    workdir: Workdir,
    *,
    seed: int = 0,
    device: str = "cpu",
    on_step: Callable[[StepResult], None] | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
) -> Supernet:
    """The trained supernet in the work directory, trained (or its training resumed) if needed.

    While another process trains it (another search, or ``nas train``), this one waits for it
    and then takes its result."""
    directory = workdir.supernet
    with exclusive_lock(directory / LOCK_FILE, what=f"training the supernet in {directory}"):
        return _ensure_supernet(
            space, dataset, workdir, seed=seed, device=device, on_step=on_step, on_epoch=on_epoch
        )


def _ensure_supernet(
    space: Space,
    dataset: Dataset,
    workdir: Workdir,
    *,
    seed: int,
    device: str,
    on_step: Callable[[StepResult], None] | None,
    on_epoch: Callable[[EpochResult], None] | None,
) -> Supernet:
    schedule = make_schedule(
        DEFAULT_SCHEDULE, epochs=DEFAULT_EPOCHS, lr=DEFAULT_LR, warmup=DEFAULT_WARMUP
    )
    directory = workdir.supernet
    if (directory / CHECKPOINT_FILE).exists():
        checkpoint = load_checkpoint(directory)
        total = sum(p["epochs"] for p in checkpoint.metadata.get("schedule", {}).get("phases", []))
        done = checkpoint.epoch >= total > 0
        if checkpoint.space != space:
            # A finished supernet of a space this one is a sub-space of (fewer precision or
            # block-type choices) serves it: a float-only search on a joint space's weights.
            if not done or subspace_problem(space, checkpoint.space) is not None:
                raise UserError(
                    f"{directory} holds a supernet of another space; remove it or pass --workdir"
                )
            logger.info("searching %s on the supernet of %s", space.name, checkpoint.space.name)
        if done:
            supernet, _ = load_supernet(directory, device, space=space)
            return supernet
        schedule_dict = checkpoint.metadata.get("schedule")
        if schedule_dict is not None and schedule_dict != schedule.to_dict():
            from nas.train import Schedule

            schedule = Schedule.from_dict(schedule_dict)
        config = TrainConfig(
            **{
                key: value
                for key, value in checkpoint.metadata.get("config", {}).items()
                if key in TrainConfig.__dataclass_fields__
            }
        )
        logger.info("resuming the supernet training in %s", directory)
        resume = True
    else:
        config = TrainConfig(seed=seed, device=device)
        resume = False
    start = time.perf_counter()
    supernet = train_supernet(
        space,
        dataset,
        schedule,
        config,
        directory,
        resume=resume,
        on_step=on_step,
        on_epoch=on_epoch,
    )
    workdir.add_cost("supernet", time.perf_counter() - start)
    return supernet


LATENCY_PREDICTORS = ("auto", "learned", "table")
CHOICE_FILE = "latency-choice.json"


# auto profiles every operator of a space for its lookup table only up to this many.
MAX_AUTO_OPERATORS = 5000


def latency_predictor_kind(space: Space, kind: str = "auto") -> str:
    """What ``kind`` means for ``space``: ``auto`` is ``best`` (profile every operator of the
    space too and keep the learned predictor or the lookup table, whichever predicts held-out
    subnets better) where subnets may run stages in int8 or bf16, where a table adds the
    boundaries between precisions that the learned predictor only sees as features, and the
    space has at most :data:`MAX_AUTO_OPERATORS` operators; elsewhere ``learned`` (no
    operators to profile)."""
    if kind not in LATENCY_PREDICTORS:
        raise UserError(
            f"unknown latency predictor {kind!r}; choose one of {', '.join(LATENCY_PREDICTORS)}"
        )
    if kind == "auto":
        if space.has_precision and len(space_operators(space)) <= MAX_AUTO_OPERATORS:
            return "best"
        return "learned"
    return kind


def ensure_latency_predictor(
    space: Space,
    measure: MeasureConfig,
    workdir: Workdir,
    *,
    subnets: int = 120,
    seed: int = 0,
    kind: str = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> Predictor:
    """A latency predictor for these settings on this machine, profiled if needed (or, while
    another process profiles, when it has finished); one fitted with other measurement
    settings (repeats, warm-up, anchoring) is profiled and fitted again. ``kind``: see
    :func:`latency_predictor_kind`; with ``best`` the choice and both predictors' held-out
    scores are kept in ``latency-choice.json`` beside the profile."""
    wanted = latency_predictor_kind(space, kind)
    directory = workdir.latency / _settings_name(measure)
    settings = settings_of(measure)
    cached = _fitted_kind(directory, wanted, settings)
    if cached is not None:
        return load_predictor(predictor_path(directory, cached), space)
    with exclusive_lock(directory / LOCK_FILE, what=f"latency profiling in {directory}"):
        cached = _fitted_kind(directory, wanted, settings)
        if cached is not None:  # built by the process this one waited for
            return load_predictor(predictor_path(directory, cached), space)
        start = time.perf_counter()
        profile(
            space,
            ProfileConfig(measure=measure, subnets=subnets, seed=seed),
            directory,
            progress=progress,
        )
        if wanted != "learned":  # a table must know every operator a search may meet
            profile_blocks(space, measure, directory, progress=progress)
        chosen = wanted
        scores: dict[str, dict[str, float]] = {}
        if wanted == "best":
            chosen, scores = best_kind(space, directory, seed=seed, settings=settings)
            logger.info(
                "latency predictor: %s (held-out subnets within 10%%: %s)",
                chosen,
                ", ".join(f"{k} {v['within_tolerance']:.0%}" for k, v in scores.items()),
            )
        fitted = fit(space, directory, kind=chosen, seed=seed, settings=settings)
        if wanted == "best":
            atomic_write_json(
                directory / CHOICE_FILE, {"settings": settings, "kind": chosen, "scores": scores}
            )
        workdir.add_cost("latency", time.perf_counter() - start)
        return load_predictor(fitted, space)


def refine_latency_predictor(
    space: Space,
    predictor: Predictor,
    measure: MeasureConfig,
    workdir: Workdir,
    archs: Sequence[Arch],
    latencies: Sequence[tuple[float, float]],
    *,
    seed: int = 0,
) -> Predictor:
    """Keep the subnets a search measured (``latencies``: median and interquartile range, ms)
    beside the latency profile for these settings and fit the predictor again with every
    subnet kept so far (:func:`nas.measure.latency.fit`), in place of the old one, so that the
    next search starts from it; ``predictor`` itself when none was new."""
    directory = workdir.latency / _settings_name(measure)
    settings = settings_of(measure)
    added = add_verified(space, directory, archs, latencies, settings)
    if not added:
        return predictor
    logger.info("refitting the latency predictor with %d more measured subnets", added)
    kind = latency_kind(predictor.kind)
    return load_predictor(fit(space, directory, kind=kind, seed=seed, settings=settings), space)


def latency_choice(workdir: Workdir, measure: MeasureConfig) -> dict[str, Any] | None:
    """What :func:`ensure_latency_predictor` chose by held-out error for these settings (the
    kind and both kinds' scores), or None where it did not choose."""
    return _read_choice(workdir.latency / _settings_name(measure), settings_of(measure))


def _read_choice(directory: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The choice file of ``directory`` when it is readable and made with ``settings``."""
    try:
        choice = json.loads((directory / CHOICE_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(choice, dict) or choice.get("settings") != settings:
        return None
    return choice


def _fitted_kind(directory: Path, wanted: str, settings: dict[str, Any]) -> str | None:
    """The kind of a predictor already fitted in ``directory`` for ``wanted`` with these
    measurement settings, or None."""
    kind: Any = wanted
    if wanted == "best":
        choice = _read_choice(directory, settings)
        kind = choice.get("kind") if choice is not None else None
    if kind not in ("learned", "table"):
        return None
    return kind if fitted_settings(predictor_path(directory, kind)) == settings else None


def _settings_name(measure: MeasureConfig) -> str:
    return f"{measure.runtime}-t{measure.threads}-b{measure.batch_size}"


def ensure_accuracy_predictor(
    space: Space,
    supernet: Supernet,
    dataset: Dataset,
    workdir: Workdir,
    *,
    subnets: int = 100,
    seed: int = 0,
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
    backend: Backend | None = None,
) -> Predictor:
    """An accuracy predictor fit on validation accuracies of supernet subnets (after BN
    recalibration), evaluated if needed: here, or as Ray tasks with a Ray ``backend``."""
    path = workdir.accuracy
    if path.exists():
        return load_predictor(path, space)
    with exclusive_lock(path.with_name(LOCK_FILE), what=f"fitting {path}"):
        if path.exists():  # built by the process this one waited for
            return load_predictor(path, space)
        start = time.perf_counter()
        archs = sample_for_coverage(space, np.random.default_rng(seed + 1), subnets)
        scores = evaluate_subnets(
            supernet,
            archs,
            dataset,
            split="val",
            seed=seed,
            device=device,
            backend=backend,
            progress=progress,
        )
        predictor = AccuracyPredictor(space).fit(archs, np.array(scores))
        save_predictor(predictor, path, settings={"split": "val", "data": dataset.name})
        workdir.add_cost("accuracy", time.perf_counter() - start)
        return predictor


def refine_accuracy_predictor(
    space: Space,
    predictor: Predictor,
    archs: Sequence[Arch],
    scores: Sequence[float],
    workdir: Workdir,
) -> Predictor:
    """The accuracy predictor refit with more measured subnets, saved in place of the old one
    (so the next search starts from it). What another search added to the saved one meanwhile
    is kept."""
    path = workdir.accuracy
    with exclusive_lock(path.with_name(LOCK_FILE), what=f"fitting {path}"):
        own = _pairs(predictor.to_dict().get("train"))
        first: dict[str, tuple[Arch, float]] = {}
        for arch, score in [*_pairs(_saved_training(path)), *own, *zip(archs, scores, strict=True)]:
            first.setdefault(arch.to_json(), (arch, float(score)))
        kept = list(first.values())
        if [(a.to_json(), y) for a, y in kept] == [(a.to_json(), y) for a, y in own]:
            return predictor  # nothing new (a resumed search measures nothing again)
        refined = AccuracyPredictor(space).fit(
            [arch for arch, _ in kept], np.array([score for _, score in kept])
        )
        save_predictor(refined, path, settings={"split": "val", "refined": True})
        return refined


def _pairs(train: Any) -> list[tuple[Arch, float]]:
    """The (arch, score) pairs of a predictor's training set as :meth:`to_dict` gives it."""
    if not isinstance(train, dict) or not train.get("archs"):
        return []
    archs, y = training_from_dict(train)
    return list(zip(archs, [] if y is None else y.tolist(), strict=True))


def _saved_training(path: Path) -> Any:
    """The training set of the predictor saved at ``path`` (read, not refit), or none."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        train = data["predictor"]["train"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return train
