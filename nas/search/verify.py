"""From a search result to deployable files: verification by real measurement, front, models.

:func:`verify` extracts front subnets from the supernet, measures their latency on this machine
and their accuracy on the test split (after batch-norm recalibration), so that nothing is
reported as meeting a latency target on prediction alone. :func:`write_front` writes the front
as CSV, JSON and a PNG; :func:`export_model` writes a subnet as ONNX, TorchScript or safetensors
with a model card.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.data import Dataset, resize_images
from nas.files import atomic_write_text
from nas.measure import (
    MeasureConfig,
    library_versions,
    machine_info,
    measure_arch,
    measure_latency,
)
from nas.measure.precision import uses_bf16, uses_int8
from nas.search.loop import SearchResult
from nas.search.targets import Constraint
from nas.train import accuracy, recalibrated
from search_spaces import Arch, Space, decode_genome, to_genome

if TYPE_CHECKING:
    from nas.search.measured import MeasuredCache

__all__ = [
    "Verified",
    "choose",
    "measure_cached",
    "measure_subnet",
    "refine",
    "spread_along",
    "verify",
    "write_front",
]

logger = logging.getLogger(__name__)

UNIFORM_INDEX = -1  # a uniformly scaled network measured beside the front
CORNER_INDEX = -2  # a corner of the space (search_spaces.corner_family) measured beside it


@dataclass(frozen=True)
class Verified:
    """A front subnet measured for real."""

    index: int  # into the search result; measured beside it: UNIFORM_INDEX, CORNER_INDEX
    arch: dict[str, Any]
    predicted: dict[str, float]
    measured_latency_ms: float
    latency_iqr_ms: float
    val_accuracy: float  # used for choosing, so the test split stays unseen
    meets_targets: bool
    test_accuracy: float | None = None  # reported, never used for choosing


def spread_along(candidates: Sequence[int], count: int) -> list[int]:
    """``count`` of ``candidates`` (a front in order): the first third of ``count`` (at least
    one), then the rest evenly spaced over what remains, the last candidate included."""
    if len(candidates) <= count:
        return list(candidates)
    best = max(1, count // 3)
    rest = candidates[best:]
    positions = np.linspace(0, len(rest) - 1, count - best).round().astype(int)
    return list(candidates[:best]) + [rest[p] for p in sorted(set(positions.tolist()))]


def choose(
    space: Space,
    verified: Sequence[Verified],
    val_images: int,
    score: Callable[[Verified], float] | None = None,
) -> Verified | None:
    """The subnet to deploy among the ``verified`` that meet the targets: the best on the
    validation split, where accuracies within one standard error of the best (binomial, over
    ``val_images`` images: 0.39 points at 90% on 6,000) count as a tie, broken by the most
    multiply-adds (the budget spent on compute, which accuracy after training follows: Kendall
    tau 0.58-0.65 over 16 subnets of each ``mbv3-28`` space, as much as inherited accuracy),
    then by the lower latency. None when none meets the targets. ``score`` gives the validation
    accuracy to compare (default: the inherited one)."""
    accuracy_of = score or (lambda v: v.val_accuracy)
    passing = [v for v in verified if v.meets_targets]
    if not passing:
        return None
    best = max(accuracy_of(v) for v in passing)
    error = (best * (1 - best) / max(1, val_images)) ** 0.5
    tied = [v for v in passing if accuracy_of(v) >= best - error]
    return max(tied, key=lambda v: (space.flops(Arch.from_dict(v.arch)), -v.measured_latency_ms))


def _real(
    space: Space, arch: Arch, predicted: dict[str, float], latency: float, accuracy: float
) -> dict[str, float]:
    """What a subnet measures: latency and accuracy measured, counts exact."""
    return {
        **predicted,
        "flops": float(space.flops(arch)),
        "params": float(space.params(arch)),
        "size": float(space.weight_bytes(arch)),
        "latency": latency,
        "accuracy": accuracy,
    }


def _meets(constraints: Sequence[Constraint], values: dict[str, float]) -> bool:
    return all(c.satisfied(values[c.metric]) for c in constraints if c.metric in values)


def _key(space: Space, verified: Verified) -> bytes:
    """The genome bytes of a verified subnet, as a search result's genomes give them."""
    return bytes(to_genome(space, Arch.from_dict(verified.arch)).tobytes())


def _measure_point(
    space: Space,
    supernet: Any,
    dataset: Dataset,
    result: SearchResult,
    index: int,
    constraints: Sequence[Constraint],
    measure: MeasureConfig,
    seed: int,
    cache: MeasuredCache | None,
) -> Verified:
    """Subnet ``index`` of a search result measured (or recalled from ``cache``)."""
    return measure_cached(
        space,
        supernet,
        dataset,
        decode_genome(space, result.genomes[index]),
        constraints,
        measure,
        seed=seed,
        predicted={name: float(values[index]) for name, values in result.metrics.items()},
        index=index,
        cache=cache,
    )


def verify(
    space: Space,
    supernet: Any,
    dataset: Dataset,
    result: SearchResult,
    constraints: Sequence[Constraint],
    measure: MeasureConfig,
    *,
    top: int = 5,
    refine_budget: int = 0,
    seed: int = 0,
    known: Sequence[Verified] = (),
    cache: MeasuredCache | None = None,
) -> list[Verified]:
    """Measure ``top`` front subnets: the third with the best predicted first objective, and the
    rest spread evenly along the remaining front (its far end included), so the verified points
    show the whole trade-off; then up to ``refine_budget`` more where the targets start to bind
    (:func:`refine`). Subnets in ``known`` (measured by earlier rounds) are passed over. A
    ``cache`` (:class:`nas.search.measured.MeasuredCache`) gives the figures of subnets measured
    by an earlier search and keeps the new ones."""
    skip = {_key(space, v) for v in known}
    candidates = [int(i) for i in result.front if result.genomes[i].tobytes() not in skip]
    checked = [
        _measure_point(space, supernet, dataset, result, index, constraints, measure, seed, cache)
        for index in spread_along(candidates, top)
    ]
    for _ in range(refine_budget):
        index = refine(result, space, [*known, *checked])
        if index is None:
            break
        checked.append(
            _measure_point(
                space, supernet, dataset, result, index, constraints, measure, seed, cache
            )
        )
    return checked


def refine(result: SearchResult, space: Space, verified: Sequence[Verified]) -> int | None:
    """The next front subnet to measure where the targets start to bind: halfway between the
    passing subnet ranked highest on the front (by the first objective) among those
    ``verified`` and the failing one ranked nearest above it; None once the two are
    neighbours (or nothing passes, or nothing above fails). Measuring it and asking again
    halves the gap, so the choice lands as close to a target as measurement allows, not
    wherever the evenly spread points of :func:`verify` fell."""
    position = {result.genomes[i].tobytes(): p for p, i in enumerate(result.front)}
    ranked = [(position[key], v) for v in verified if (key := _key(space, v)) in position]
    high = min((p for p, v in ranked if v.meets_targets), default=None)
    if high is None:
        return None
    low = max((p for p, v in ranked if not v.meets_targets and p < high), default=None)
    if low is None or high - low <= 1:
        return None
    return int(result.front[(low + high) // 2])


def measure_cached(
    space: Space,
    supernet: Any,
    dataset: Dataset,
    arch: Arch,
    constraints: Sequence[Constraint],
    measure: MeasureConfig,
    *,
    seed: int = 0,
    predicted: dict[str, float] | None = None,
    index: int = -1,
    cache: MeasuredCache | None = None,
) -> Verified:
    """:func:`measure_subnet`, or what ``cache`` remembers of this subnet (checked against
    ``constraints`` again); what is measured goes into the cache."""
    predicted = dict(predicted or {})
    genome_bytes = to_genome(space, arch).tobytes()
    known = None if cache is None else cache.get(genome_bytes)
    if known is not None:
        real = _real(space, arch, predicted, known.measured_latency_ms, known.val_accuracy)
        return dataclasses.replace(
            known, index=index, predicted=predicted, meets_targets=_meets(constraints, real)
        )
    measured = measure_subnet(
        space,
        supernet,
        dataset,
        arch,
        constraints,
        measure,
        seed=seed,
        predicted=predicted,
        index=index,
    )
    if cache is not None:
        cache.add(genome_bytes, measured)
    return measured


def measure_subnet(
    space: Space,
    supernet: Any,
    dataset: Dataset,
    arch: Arch,
    constraints: Sequence[Constraint],
    measure: MeasureConfig,
    *,
    seed: int = 0,
    predicted: dict[str, float] | None = None,
    index: int = -1,
) -> Verified:
    """One subnet measured for real: latency on this machine (of the graph deployed: with int8
    or bf16 stages, the mixed-precision one, :func:`nas.measure.measure_arch`), validation
    accuracy (for choosing) and test accuracy (for reporting), both after batch-norm
    recalibration (int8 and bf16 stages simulated)."""
    predicted = dict(predicted or {})
    if uses_int8(arch) or uses_bf16(arch):
        # its deployed graph: int8 stages quantized, bf16 stages marked (not the float form)
        measurement = measure_arch(space, arch, measure)
    else:
        network = supernet.extract(arch).eval()
        shape = (space.in_channels, arch.resolution, arch.resolution)
        measurement = measure_latency(network, shape, measure)
    recalibrated_network = recalibrated(supernet, arch, dataset, seed=seed)  # once for both splits
    val_accuracy, test_accuracy = (
        accuracy(recalibrated_network, resize_images(x, arch.resolution), y)
        for x, y in ((dataset.x_val, dataset.y_val), (dataset.x_test, dataset.y_test))
    )
    real = _real(space, arch, predicted, measurement.median_ms, val_accuracy)
    logger.info(
        "measured subnet %d: predicted %.3f ms, measured %.3f ms, val accuracy %.4f",
        index,
        predicted.get("latency", float("nan")),
        measurement.median_ms,
        val_accuracy,
    )
    return Verified(
        index=int(index),
        arch=arch.to_dict(),
        predicted=predicted,
        measured_latency_ms=measurement.median_ms,
        latency_iqr_ms=measurement.iqr_ms,
        val_accuracy=val_accuracy,
        meets_targets=_meets(constraints, real),
        test_accuracy=test_accuracy,
    )


def write_front(
    directory: Path,
    space: Space,
    result: SearchResult,
    verified: Sequence[Verified],
    constraints: Sequence[Constraint],
    *,
    chosen: Verified | None,
    settings: dict[str, Any],
) -> list[dict[str, Any]]:
    """Write ``pareto.csv``, ``pareto.json``, ``pareto.png`` and ``archs/point-NNN.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "archs").mkdir(exist_ok=True)
    by_genome = {to_genome(space, Arch.from_dict(v.arch)).tobytes(): v for v in verified}
    rows = []
    for rank, index in enumerate(result.front):
        arch = decode_genome(space, result.genomes[index])
        row: dict[str, Any] = {"point": rank, "index": int(index)}
        row.update({f"predicted_{k}": float(v[index]) for k, v in result.metrics.items()})
        check = by_genome.get(result.genomes[index].tobytes())
        row["measured_latency_ms"] = check.measured_latency_ms if check else None
        row["val_accuracy"] = check.val_accuracy if check else None
        row["test_accuracy"] = check.test_accuracy if check else None
        row["verified_meets_targets"] = check.meets_targets if check else None
        row["arch"] = arch.to_dict()
        rows.append(row)
        atomic_write_text(directory / "archs" / f"point-{rank:03d}.json", arch.to_json() + "\n")
    summary = {
        "space": space.name,
        "targets": [str(c) for c in constraints],
        "objectives": list(result.objectives),
        "hypervolume": result.hypervolume,
        "reference": result.reference,
        "evaluated": len(result.genomes),
        "feasible": int(result.feasible.sum()),
        "settings": settings,
        "machine": machine_info(),
        "versions": library_versions(),
        "chosen": asdict(chosen) if chosen else None,
        "front": rows,
    }
    atomic_write_text(directory / "pareto.json", json.dumps(summary, indent=2) + "\n")
    buffer = io.StringIO()
    columns = [c for c in rows[0] if c != "arch"] + ["arch"] if rows else ["point"]
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "arch": json.dumps(row["arch"], sort_keys=True)})
    atomic_write_text(directory / "pareto.csv", buffer.getvalue())
    _plot(directory / "pareto.png", space, result, verified, constraints, chosen)
    return rows


def _plot(
    path: Path,
    space: Space,
    result: SearchResult,
    verified: Sequence[Verified],
    constraints: Sequence[Constraint],
    chosen: Verified | None,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if "latency" not in result.metrics or "accuracy" not in result.metrics:
        return
    latency, accuracy = result.metrics["latency"], result.metrics["accuracy"]
    figure, axes = plt.subplots(figsize=(6, 4.5))
    axes.scatter(latency, accuracy, s=3, color="lightgrey", label="evaluated (predicted)")
    axes.scatter(
        latency[result.feasible],
        accuracy[result.feasible],
        s=3,
        color="silver",
        label="feasible (predicted)",
    )
    front = result.front
    axes.plot(
        latency[front],
        accuracy[front],
        "-o",
        color="tab:blue",
        markersize=3,
        label="Pareto front (predicted)",
    )
    if verified:
        axes.scatter(
            [v.measured_latency_ms for v in verified],
            [v.val_accuracy for v in verified],
            marker="x",
            color="tab:red",
            label="verified (measured, val)",
        )
    if chosen is not None:
        axes.scatter(
            [chosen.measured_latency_ms],
            [chosen.val_accuracy],
            marker="*",
            s=150,
            color="tab:orange",
            label="chosen",
        )
    for constraint in constraints:
        if constraint.metric == "latency":
            axes.axvline(constraint.value, color="black", linestyle="--", linewidth=0.8)
    axes.set_xscale("log")
    axes.set_xlabel("latency (ms)")
    axes.set_ylabel("accuracy")
    axes.set_title(f"{space.name}: {', '.join(str(c) for c in constraints)}", fontsize=9)
    axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    temporary = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(temporary, dpi=120)
    plt.close(figure)
    temporary.replace(path)
