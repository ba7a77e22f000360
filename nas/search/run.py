"""``nas search`` end to end: build what is missing, search, verify by measurement, write files.

The steps: the supernet, the latency predictor for these measurement settings on this machine
and the accuracy predictor are taken from the work directory or built (see
:mod:`nas.search.workdir`); targets no subnet can meet are refused with the closest subnet; the
strategy searches with the predictors; the best front subnets are extracted and measured for
real, then more of them where the targets start to bind (:func:`nas.search.verify.refine`),
and if none meets the latency target on measurement, the latency bound is tightened by
the prediction error seen and the search runs again (at most ``rounds`` times); where the
accuracy predictor was off on the measured subnets (by more than :data:`ACCURACY_TOLERANCE` on
one, or by more than :data:`ACCURACY_BIAS` the same way at the median) it is refit with them
and the search runs again. At the end every subnet measured is kept beside the latency profile
and the latency predictor refit with them, for the next search. Nothing is reported as
feasible on prediction alone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from nas.data import Dataset
from nas.distributed import Backend
from nas.errors import NoSubnetMeets, UserError
from nas.export import export_model, openvino_copy
from nas.files import (
    LOCK_FILE,
    atomic_write_json,
    atomic_write_text,
    check_writable_directory,
    exclusive_lock,
)
from nas.measure import ONNX_RUNTIMES, OPENVINO_RUNTIMES, MeasureConfig, measure_arch
from nas.measure.latency import latency_kind
from nas.measure.precision import float_arch, uses_bf16, uses_int8
from nas.measure.timing import openvino_precision, require_openvino
from nas.predictors import Predictor
from nas.search.loop import (
    Evaluator,
    SearchConfig,
    SearchResult,
    measured_accuracies,
    run_search,
    violations,
)
from nas.search.measured import MeasuredCache
from nas.search.rerank import RerankConfig, arch_key, load_trained, rerank
from nas.search.rundir import RUN_FILE
from nas.search.targets import Constraint, uses_metric
from nas.search.verify import (
    CORNER_INDEX,
    UNIFORM_INDEX,
    Verified,
    choose,
    measure_cached,
    verify,
    write_front,
)
from nas.search.workdir import (
    Workdir,
    ensure_accuracy_predictor,
    ensure_latency_predictor,
    ensure_supernet,
    latency_choice,
    refine_accuracy_predictor,
    refine_latency_predictor,
)
from nas.train import EpochResult, StepResult
from search_spaces import Arch, Space, corner_family, decode_genome, to_genome, uniform_family

__all__ = ["Reporter", "SearchOutcome", "SearchRequest", "search"]

logger = logging.getLogger(__name__)
# Predicted and measured validation accuracy of verified subnets must agree this well, or the
# accuracy predictor is refit with the measured subnets and the search runs again. (0.5 points
# was tried: on the worst-up mbv3-28-s2 supernet the refit moved the front to smaller subnets no
# better when trained alone, and the demo's search took 2.5 minutes longer.)
ACCURACY_TOLERANCE = 0.03
# A median signed error beyond this (the predictor rating the measured subnets too high, or
# too low, as a group) refits it too: on quant-28 at batch 32 on OpenVINO the front of a
# search sat at 20 px int8 subnets rated 0.4-2.2 points too high (median 1.4), none off by 3
# points, while 28 px float subnets, rated right, were better.
ACCURACY_BIAS = 0.01


class Reporter(Protocol):
    """How the workflow tells its caller what it is doing (the CLI draws progress bars)."""

    def stage(self, name: str, total: int | None = None) -> Callable[[int, int], None]: ...

    def note(self, text: str) -> None: ...

    def epoch(self, result: EpochResult) -> None: ...

    def step(self, result: StepResult) -> None: ...


@dataclass(frozen=True, kw_only=True)
class SearchRequest:
    space: Space
    dataset: Dataset
    constraints: tuple[Constraint, ...]
    measure: MeasureConfig
    search: SearchConfig
    workdir: Path
    out: Path
    resume: bool = False
    verify_top: int = 6
    refine_budget: int = 6
    rounds: int = 4
    device: str = "cpu"
    # Where the accuracy evaluations for the predictor run (None: here).
    backend: Backend | None = None
    # The space's uniformly scaled networks (search_spaces.uniform_family) measured beside the
    # front: the most multiply-adds among those the predictors say meet the targets, this many.
    uniform: int = 3
    # Choose among the best verified subnets by training them alone (nas.search.rerank).
    rerank: RerankConfig = field(default_factory=RerankConfig)
    # auto, learned or table (nas.search.workdir.latency_predictor_kind)
    latency_predictor: str = "auto"


@dataclass
class SearchOutcome:
    result: SearchResult
    verified: list[Verified]
    chosen: Verified | None
    margin: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    model: Path | None = None
    # the largest and the smallest subnets measured the same way, to put the choice in context
    references: dict[str, Verified] = field(default_factory=dict)
    # what training alone gave the re-ranked subnets, by nas.search.rerank.arch_key
    alone: dict[str, dict[str, Any]] = field(default_factory=dict)


def check_request(request: SearchRequest) -> None:
    """Refuse, before any work, a run directory holding another search (unless resuming),
    output directories that cannot be written, a runtime that is not installed and bf16 stages
    on a runtime that cannot run them."""
    if not request.resume and (
        (request.out / RUN_FILE).exists() or (request.out / "round-0").exists()
    ):
        raise UserError(
            f"{request.out} already holds a search; pass --resume to continue it or choose "
            "another --out"
        )
    check_writable_directory(request.out)
    check_writable_directory(request.workdir, option="--workdir")
    space = request.space
    if request.measure.runtime in OPENVINO_RUNTIMES:
        require_openvino(f"--runtime {request.measure.runtime}")
    elif any("bf16" in stage.precision.values for stage in space.stages):
        raise UserError(
            f"space {space.name} has bf16 stages, which only OpenVINO runs: pass --runtime "
            f"openvino, or drop bf16 from the space (runtime now: {request.measure.runtime})"
        )


def _refuse_impossible(request: SearchRequest, reporter: Reporter) -> None:
    """Targets on measurable quantities that even the smallest subnet breaks."""
    space = request.space
    smallest = space.smallest()
    exact = {
        "params": float(space.params(smallest)),
        "flops": float(space.flops(smallest)),
        "size": float(space.weight_bytes(smallest)),
    }
    for constraint in request.constraints:
        if constraint.metric in exact and constraint.is_upper_bound:
            if not constraint.satisfied(exact[constraint.metric]):
                raise NoSubnetMeets(
                    f"no subnet of {space.name} meets {constraint}: the closest, the smallest, "
                    f"has {constraint.metric} {exact[constraint.metric]:.4g}"
                )
    latency_bounds = [c for c in request.constraints if c.metric == "latency" and c.is_upper_bound]
    if latency_bounds:
        reporter.note("measuring the smallest subnet to check the latency target")
        # Fewer bits are not always faster: with int8 stages, the float form may be quicker.
        forms = [smallest, *([float_arch(smallest)] if uses_int8(smallest) else [])]
        measured = min(measure_arch(space, arch, request.measure).median_ms for arch in forms)
        for constraint in latency_bounds:
            if not constraint.satisfied(measured):
                raise NoSubnetMeets(
                    f"no subnet of {space.name} meets {constraint} on this machine: the "
                    f"closest, the smallest, measures {measured:.3f} ms "
                    f"({request.measure.runtime}, {request.measure.threads} thread(s))"
                )


def _latency_note(kind: str, choice: dict[str, Any] | None) -> str:
    """One line on the latency predictor in use, with the held-out scores it was chosen by."""
    names = {"learned": "learned regressor", "table": "operator lookup table"}
    kind = latency_kind(kind)
    line = f"latency predictor: {names.get(kind, kind)}"
    if choice is not None and choice.get("kind") == kind:
        scores = choice.get("scores") or {}
        shares = ", ".join(
            f"{names.get(k, k)} {v['within_tolerance']:.0%}" for k, v in scores.items()
        )
        line += f", the better on held-out profiled subnets (within 10%: {shares})"
    return line


def search(request: SearchRequest, reporter: Reporter) -> SearchOutcome:
    """Run the whole search of ``request`` (see the module's docstring). A second search in
    the same run directory at the same time is refused in one line; searches sharing a work
    directory wait for each other only while one builds a piece the other needs."""
    check_writable_directory(request.out)
    with exclusive_lock(request.out / LOCK_FILE, what=f"a search in {request.out}", wait=False):
        return _search(request, reporter)


def _search(request: SearchRequest, reporter: Reporter) -> SearchOutcome:
    space = request.space
    workdir = Workdir(request.workdir, space.name)
    check_request(request)
    _refuse_impossible(request, reporter)
    request.out.mkdir(parents=True, exist_ok=True)

    reporter.note(f"supernet: {workdir.supernet}")
    supernet = ensure_supernet(
        space,
        request.dataset,
        workdir,
        seed=request.search.seed,
        device=request.device,
        on_step=reporter.step,
        on_epoch=reporter.epoch,
    )
    latency = None
    if uses_metric("latency", request.search.objectives, request.constraints):
        latency = ensure_latency_predictor(
            space,
            request.measure,
            workdir,
            seed=request.search.seed,
            kind=request.latency_predictor,
            progress=reporter.stage("profiling latency"),
        )
        reporter.note(_latency_note(latency.kind, latency_choice(workdir, request.measure)))
    accuracy = ensure_accuracy_predictor(
        space,
        supernet,
        request.dataset,
        workdir,
        seed=request.search.seed,
        device=request.device,
        progress=reporter.stage("evaluating subnets for accuracy"),
        backend=request.backend,
    )
    evaluator = Evaluator(
        space,
        accuracy=accuracy,
        latency=latency,
        measured_accuracy=measured_accuracies(space, accuracy),
    )
    settings = {
        "strategy": request.search.strategy,
        "evaluations": request.search.evaluations,
        "measure": asdict(request.measure),
        "data": request.dataset.name,
        "seed": request.search.seed,
        "rerank": asdict(request.rerank),
    }
    _write_run_file(request, settings)

    cache = MeasuredCache(
        workdir.measured,
        {
            "measure": asdict(request.measure),
            "data": request.dataset.name,
            "seed": settings["seed"],
        },
    )
    margin = 0.0
    result: SearchResult | None = None
    verified: list[Verified] = []
    for round_index in range(request.rounds):
        result = run_search(
            space,
            request.constraints,
            evaluator,
            request.search,
            request.out / f"round-{round_index}",
            margin=margin,
            resume=request.resume,
            progress=reporter.stage(f"searching (round {round_index + 1})"),
        )
        if not result.feasible.any():
            closest = result.closest(request.constraints)
            arch = decode_genome(space, result.genomes[closest])
            values = {k: round(float(v[closest]), 4) for k, v in result.metrics.items()}
            raise NoSubnetMeets(
                f"no subnet found that meets {', '.join(str(c) for c in request.constraints)}; "
                f"the closest predicted is {values} ({arch.to_json()})"
            )
        fresh = verify(
            space,
            supernet,
            request.dataset,
            result,
            request.constraints,
            request.measure,
            top=request.verify_top,
            refine_budget=request.refine_budget,
            seed=request.search.seed,
            known=verified,
            cache=cache,
        )
        verified.extend(fresh)
        accuracy_off = _accuracy_off(fresh)
        latency_ok = any(v.meets_targets for v in fresh)
        if accuracy_off is not None:  # refit even after the last round, for later searches
            accuracy = refine_accuracy_predictor(
                space,
                accuracy,
                [Arch.from_dict(v.arch) for v in fresh],
                [v.val_accuracy for v in fresh],
                workdir,
            )
            evaluator = Evaluator(
                space,
                accuracy=accuracy,
                latency=latency,
                measured_accuracy=measured_accuracies(space, accuracy),
            )
        if (latency_ok and accuracy_off is None) or round_index + 1 == request.rounds:
            break
        margin = _next_round(reporter, fresh, margin, accuracy_off, latency_ok)
    verified.extend(_alternatives(request, supernet, evaluator, verified, cache, margin=margin))
    alone = rerank(
        space,
        request.dataset,
        request.rerank,
        verified,
        workdir.supernet,
        request.out,
        backend=request.backend,
        device=request.device,
        note=reporter.note,
        progress=reporter.stage("training candidates alone"),
    )
    chosen = _choose(space, verified, alone, len(request.dataset.y_val))
    assert result is not None
    outcome = SearchOutcome(
        result=result, verified=verified, chosen=chosen, margin=margin, alone=alone
    )
    outcome.references = _measure_references(request, supernet, cache)
    if latency is not None:
        _keep_latencies(request, workdir, latency, [*verified, *outcome.references.values()])
    outcome.rows = write_front(
        request.out,
        space,
        result,
        verified,
        request.constraints,
        chosen=chosen,
        settings={**settings, "margin": margin},
    )
    if chosen is None:
        raise NoSubnetMeets(
            f"after {request.rounds} rounds no subnet met the targets when measured; the front "
            f"is in {request.out}; loosen the target or measure with more repeats"
        )
    outcome.model = _export_chosen(request, supernet, chosen, alone.get(arch_key(chosen)))
    return outcome


def _choose(
    space: Space, verified: list[Verified], alone: dict[str, dict[str, Any]], val_images: int
) -> Verified | None:
    """:func:`choose` by inherited accuracy, or among the re-ranked subnets by what training
    them alone gave, when there are any."""
    if not alone:
        return choose(space, verified, val_images)
    return choose(
        space,
        [v for v in verified if arch_key(v) in alone],
        val_images,
        score=lambda v: float(alone[arch_key(v)]["val_accuracy"]),
    )


def _alternatives(
    request: SearchRequest,
    supernet: Any,
    evaluator: Evaluator,
    known: list[Verified],
    cache: MeasuredCache | None,
    *,
    margin: float,
) -> list[Verified]:
    """The obvious alternatives measured beside the front: uniformly scaled networks
    (:func:`_verify_uniform`), then the space's corners (:func:`_verify_corners`)."""
    uniform = _verify_uniform(request, supernet, evaluator, known, cache, margin=margin)
    corners = _verify_corners(request, supernet, evaluator, known + uniform, cache, margin=margin)
    return uniform + corners


def _verify_uniform(
    request: SearchRequest,
    supernet: Any,
    evaluator: Evaluator,
    known: list[Verified],
    cache: MeasuredCache | None,
    *,
    margin: float,
) -> list[Verified]:
    """The space's uniformly scaled networks measured like the front (the obvious alternative,
    which the predictors may rate too low for the search to look at): the ``request.uniform``
    with the most multiply-adds among those predicted to meet the targets, then larger ones,
    one at a time, while the last one measured met them (at most ``request.uniform`` more: the
    latency predictor may be pessimistic). Those in ``known`` are passed over."""
    space = request.space
    family = uniform_family(space)
    if request.uniform < 1 or not family:
        return []
    genomes = np.stack([to_genome(space, arch) for arch in family])
    metrics = evaluator(genomes)
    fits = violations(metrics, request.constraints, margin=margin) == 0
    seen = _genome_keys(space, known)
    fresh = [i for i in range(len(family)) if genomes[i].tobytes() not in seen]
    picked = [i for i in fresh if fits[i]][-request.uniform :]
    if not picked:
        return []

    def measured(index: int) -> Verified:
        predicted = {k: float(v[index]) for k, v in metrics.items()}
        return _beside(request, supernet, family[index], predicted, cache, UNIFORM_INDEX)

    checked = [measured(i) for i in picked]
    for index in [i for i in fresh if i > picked[-1]][: request.uniform]:
        if not checked[-1].meets_targets:
            break
        checked.append(measured(index))
    return checked


def _verify_corners(
    request: SearchRequest,
    supernet: Any,
    evaluator: Evaluator,
    known: list[Verified],
    cache: MeasuredCache | None,
    *,
    margin: float,
) -> list[Verified]:
    """The space's corners (:func:`search_spaces.corner_family`: the largest subnet of each
    block type, in each precision all its stages allow) that the predictors say meet the
    targets, measured like the front: where the supernet was trained most, and where a
    search over precision may not reach on its own. bf16 corners only on OpenVINO, which runs
    them, int8 ones only on the ONNX runtimes; none when ``request.uniform`` is 0; those in
    ``known`` are passed over."""
    runtime = request.measure.runtime
    space = request.space
    corners = [
        arch
        for arch in corner_family(space)
        if (runtime in OPENVINO_RUNTIMES or not uses_bf16(arch))
        and (runtime in ONNX_RUNTIMES or not uses_int8(arch))
    ]
    seen = _genome_keys(space, known)
    fresh = [arch for arch in corners if to_genome(space, arch).tobytes() not in seen]
    if request.uniform < 1 or not fresh:
        return []
    metrics = evaluator(np.stack([to_genome(space, arch) for arch in fresh]))
    fits = violations(metrics, request.constraints, margin=margin) == 0
    return [
        _beside(
            request,
            supernet,
            arch,
            {k: float(v[row]) for k, v in metrics.items()},
            cache,
            CORNER_INDEX,
        )
        for row, arch in enumerate(fresh)
        if fits[row]
    ]


def _genome_keys(space: Space, verified: list[Verified]) -> set[bytes]:
    """The genomes of ``verified``, as bytes: what is already measured."""
    return {to_genome(space, Arch.from_dict(v.arch)).tobytes() for v in verified}


def _beside(
    request: SearchRequest,
    supernet: Any,
    arch: Arch,
    predicted: dict[str, float],
    cache: MeasuredCache | None,
    index: int,
) -> Verified:
    """``arch`` measured like the front, beside it (``index``: UNIFORM_INDEX, CORNER_INDEX)."""
    return measure_cached(
        request.space,
        supernet,
        request.dataset,
        arch,
        request.constraints,
        request.measure,
        seed=request.search.seed,
        predicted=predicted,
        cache=cache,
        index=index,
    )


def _keep_latencies(
    request: SearchRequest, workdir: Workdir, latency: Predictor, measured: list[Verified]
) -> None:
    """Keep every subnet this search measured beside the latency profile and refit the latency
    predictor with them, for the next search in the work directory. (Not for this search's
    own rounds: a predictor refit on this run's timings would make its rounds depend on
    timing noise, where now only the seed decides them.)"""
    refine_latency_predictor(
        request.space,
        latency,
        request.measure,
        workdir,
        [Arch.from_dict(v.arch) for v in measured],
        [(v.measured_latency_ms, v.latency_iqr_ms) for v in measured],
        seed=request.search.seed,
    )


def _next_round(
    reporter: Reporter,
    fresh: list[Verified],
    margin: float,
    accuracy_off: str | None,
    latency_ok: bool,
) -> float:
    """Say why the search runs again; the latency margin of the next round (tightened by the
    error seen where no measured subnet met the target)."""
    if accuracy_off is not None:
        reporter.note(
            f"predicted accuracy was {accuracy_off} on the measured subnets; refitted the "
            "accuracy predictor with them; searching again"
        )
    if latency_ok:
        return margin
    margin = _tightened_margin(fresh, margin)
    reporter.note(
        f"no measured subnet met the latency target; tightening the predicted latency bound "
        f"by {margin:.0%} and searching again"
    )
    return margin


def _accuracy_off(fresh: list[Verified]) -> str | None:
    """How the predicted accuracy of ``fresh`` was off, where the accuracy predictor should be
    refit (one subnet off by more than :data:`ACCURACY_TOLERANCE`, or the median signed error
    beyond :data:`ACCURACY_BIAS`); None where it was not."""
    errors = [v.predicted["accuracy"] - v.val_accuracy for v in fresh if "accuracy" in v.predicted]
    if not errors:
        return None
    worst, bias = max(abs(e) for e in errors), float(np.median(errors))
    if worst > ACCURACY_TOLERANCE:
        return f"off by up to {worst:.1%}"
    if abs(bias) > ACCURACY_BIAS:
        return f"{abs(bias):.1%} too {'high' if bias > 0 else 'low'} at the median"
    return None


def _tightened_margin(fresh: list[Verified], margin: float) -> float:
    """The next round's margin on the predicted latency bound, from the worst ratio of measured
    to predicted latency among the subnets just verified."""
    ratios = [
        v.measured_latency_ms / v.predicted["latency"]
        for v in fresh
        if "latency" in v.predicted and v.predicted["latency"] > 0
    ]
    worst = max(ratios, default=1.1)
    return min(0.9, max(margin + 0.05, 1.0 - 1.0 / worst + 0.02))


def _measure_references(
    request: SearchRequest, supernet: Any, cache: MeasuredCache
) -> dict[str, Verified]:
    """The largest and the smallest subnets measured like the front (``references.json``)."""
    space = request.space
    references = {
        name: measure_cached(
            space,
            supernet,
            request.dataset,
            arch,
            request.constraints,
            request.measure,
            seed=request.search.seed,
            cache=cache,
        )
        for name, arch in (("largest", space.largest()), ("smallest", space.smallest()))
    }
    atomic_write_json(
        request.out / "references.json",
        {name: asdict(value) for name, value in references.items()},
    )
    return references


def _export_chosen(
    request: SearchRequest, supernet: Any, chosen: Verified, alone: dict[str, Any] | None
) -> Path:
    """``chosen.onnx`` in the run directory, with its model card: the supernet's weights, or
    the weights it was trained alone with when it was re-ranked. Measured on OpenVINO, the
    same model as OpenVINO IR beside it too (``chosen.xml``, ``nas export --format openvino``).
    Returns the ONNX file."""
    # search() writes the last round's front; the chosen subnet may come from any round
    arch = Arch.from_dict(chosen.arch)
    accuracies: dict[str, Any] = {
        "val_accuracy": chosen.val_accuracy,
        "test_accuracy": chosen.test_accuracy,
    }
    if alone is not None:
        accuracies = {
            "weights": "trained alone (nas search --rerank)",
            "val_accuracy": alone["val_accuracy"],
            "test_accuracy": alone["test_accuracy"],
            "inherited_val_accuracy": chosen.val_accuracy,
            "inherited_test_accuracy": chosen.test_accuracy,
            "training_seconds": alone["seconds"],
        }
    card = {
        "predicted": chosen.predicted,
        "measured_latency_ms": chosen.measured_latency_ms,
        "latency_settings": asdict(request.measure),
        **accuracies,
        "targets": [str(c) for c in request.constraints],
    }
    model = export_model(
        supernet,
        request.space,
        arch,
        request.out / "chosen.onnx",
        fmt="onnx",
        dataset=request.dataset,
        card=card,
        network=None if alone is None else load_trained(request.space, alone, request.out),
    )
    if request.measure.runtime in OPENVINO_RUNTIMES:
        precision = openvino_precision(request.measure.runtime)
        openvino_copy(model, request.out / "chosen.xml", precision)
    return model


def _write_run_file(request: SearchRequest, settings: dict[str, Any]) -> None:
    data = {
        "space": request.space.name,
        "workdir": str(request.workdir),
        "targets": [c.text or str(c) for c in request.constraints],
        "objectives": list(request.search.objectives),
        **settings,
    }
    atomic_write_text(request.out / RUN_FILE, json.dumps(data, indent=2) + "\n")
