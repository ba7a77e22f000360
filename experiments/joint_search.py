"""Joint search (architecture, block type, squeeze-excitation, activation and precision)
against a float-only search and against search-then-quantize, on one supernet.

A joint space (``--space``: ``mbv3-28-fused``, or ``mbv3-28-joint`` whose stages choose
squeeze-excitation and activation) and its float-only view (the same space with only ``fp32``
and ``mbconv`` choices and each stage's squeeze-excitation and activation at their first,
reference value: what a search that knows nothing of those choices explores, ``mbv3-28`` for
``mbv3-28-joint``; it searches on the same trained supernet,
``search_spaces.subspace_problem``). For each latency
target in ``--targets`` both are searched with ``nas search`` (same work directory, same
supernet, each its own latency predictor and accuracy predictor, verified fronts: every front
point measured whole and its test accuracy taken). Reported:

- what the user gets: at three accuracy levels (quartiles of the float-only searches' verified
  test accuracies, each distinct subnet counted once), the fastest verified point (front
  points measured whole, and each search's choice) of the joint searches within 0.5 points of
  the level (or above it) against the fastest of the float-only searches: the speed ratio;
- the floor: the float view's smallest subnet (each float-only search measures it beside its
  front) and which levels it reaches itself (``at_floor``: no smaller network exists, so a
  speed-up there can only come from a faster form of the same subnet); that subnet's forms
  (inverted residual or fused, fp32 or int8, on each joint runtime) timed side by side with
  today's path, whose best ratio bounds every speed-up at those levels; and the same rows at
  three levels above the floor (quartiles of the float-only verified accuracies the smallest
  subnet does not reach); each pair of points is timed side by side once and kept
  (``level_pairs``), so rows that share a pair, and a report computed again, show one timing;
- joint search vs search-then-quantize at each target: the joint search's choice against the
  float-only choice with every stage quantized to int8 (ONNX Runtime QDQ graph calibrated on
  500 training images), each measured; both deployed the same way (ONNX graphs, int8 stages
  quantized, inherited weights) and compared image by image on the test split (McNemar's exact
  test: a difference with p >= 0.05 is a tie);
- each joint choice that runs int8 somewhere against its own float form (the same arch in
  fp32; both timed side by side on the search's runtime and batch, accuracies deployed, with
  inherited weights): speed, points lost and how many times smaller its weights are, beside
  the issue's bar (>= 1.5x faster, <= 1 point lost, >= 3.5x smaller);
- which block types, precisions, squeeze-excitation and activations the joint fronts use;
- how well each search's latency predictor foresaw its verified points (within 10%), beside
  the noise floor: every verified point measured a second time after all searches, in this
  process, and the share of second measurements within 10% of the search's;
- with ``--joint-runtime`` (``openvino``, say) the joint searches measure on that runtime and
  the float-only ones on ONNX Runtime (today's path); the two points of each accuracy level
  are also timed side by side, each on its own runtime; a comma-separated list
  (``openvino,onnxruntime``) runs the joint searches on each runtime and pools their points:
  what the user gets who lets the search choose the runtime too;
- with ``--standalone-seeds N``, the subnets of the accuracy-level rows trained from scratch
  (the supernet's recipe, ``--standalone-epochs`` epochs, N seeds; int8 stages deployed as
  above) and their test accuracies: whether the speed-up holds outside the supernet;
- with ``--rerank K``, every search runs ``nas search --rerank K`` (its K best verified subnets
  and the widest uniform network trained alone, ``--rerank-epochs``), and each float-only
  choice is set against the fastest joint choice whose trained-alone test accuracy is within
  0.5 points of it; ``--joint-extra-targets`` adds latency targets for the joint space only
  (the float targets divided by 1.5, say), so that a joint choice can be that much faster;
- ``--latency-predictor`` is passed to every ``nas search`` (``learned`` skips the operator
  table, whose profile takes long at large batches).

Writes ``experiments/results/joint_search-TAG.json`` (resumable: each finished search is kept)
and prints Markdown.

    python experiments/joint_search.py --workdir runs/fused-work --targets 0.04,0.06,0.1
    python experiments/joint_search.py --space mbv3-28-joint --workdir runs/joint-work --tag joint
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from block_types import form
from scipy.stats import binomtest

import search_spaces as ss
from compress.quantization import evaluate_onnx, onnx_outputs
from nas.data import load_dataset, resize_images
from nas.defaults import DEFAULT_DATA
from nas.files import atomic_write_json
from nas.measure import MeasureConfig, library_versions, machine_info, measure_arch
from nas.measure.precision import arch_graph, uses_int8
from nas.measure.timing import graph_runner, time_side_by_side
from nas.train import load_supernet, recalibrated
from nas.train.checkpoint import load_checkpoint
from nas.train.evaluate import calibration_images
from nas.train.standalone import Recipe, train_from_scratch

OWN_ROUNDS, OWN_REPEATS = 9, 30  # a joint choice and its float form, timed side by side


def _search(
    space_arg: str,
    workdir: Path,
    target: float,
    out: Path,
    evaluations: int,
    rerank: int = 0,
    rerank_epochs: int = 12,
    batch_size: int = 1,
    runtime: str = "onnxruntime",
    latency_predictor: str = "auto",
) -> None:
    """``nas search`` for ``latency<target ms`` on ``runtime`` into ``out`` (resumed when it
    was cut short), with ``--rerank`` when ``rerank`` is positive."""
    if (out / "pareto.json").exists():
        return
    command = [
        sys.executable, "-m", "nas.cli", "search",
        "--space", space_arg,
        "--workdir", str(workdir),
        "--target", f"latency<{target}ms",
        "--evaluations", str(evaluations),
        "--out", str(out),
        "--batch-size", str(batch_size),
        "--runtime", runtime,
        "--latency-predictor", latency_predictor,
    ]  # fmt: skip
    if rerank:
        command += ["--rerank", str(rerank), "--rerank-epochs", str(rerank_epochs)]
    if (out / "search.json").exists():
        command.append("--resume")
    print(" ".join(command), file=sys.stderr)
    subprocess.run(command, check=True)


def _run_dir(
    workdir: Path, key: str, rerank: int, batch_size: int, on: dict[str, list[str]]
) -> Path:
    """The work directory of the search kept under ``key`` (``joint-0.3``,
    ``joint-onnxruntime-0.3``, ``float-0.45``) in the report."""
    name = key.split("-")[0]
    runtime = next((r for r in on[name][1:] if key.startswith(f"{name}-{r}-")), on[name][0])
    run = workdir / f"search-{key}{f'-rerank{rerank}' if rerank else ''}"
    if batch_size != 1:
        run = run.with_name(f"{run.name}-b{batch_size}")
    if runtime != "onnxruntime":
        run = run.with_name(f"{run.name}-{runtime}")
    return run


def _kept(front: dict[str, Any]) -> dict[str, Any]:
    """A search's ``pareto.json`` as the report keeps it: what its whole front uses
    (:func:`_uses`), and of the front only the points measured for real."""
    front["uses"] = _uses(front["front"])
    front["front"] = [p for p in front["front"] if p.get("test_accuracy") is not None]
    return front


def _front(out: Path) -> dict[str, Any]:
    front = _kept(json.loads((out / "pareto.json").read_text()))
    references = out / "references.json"
    if references.exists():  # the space's smallest and largest subnets, measured and scored
        front["references"] = json.loads(references.read_text())
    rerank = out / "rerank.json"
    if rerank.exists() and front.get("chosen"):
        # What the deployed choice scores trained alone (nas search --rerank), by its arch.
        arch = json.dumps(front["chosen"]["arch"], sort_keys=True)
        for result in json.loads(rerank.read_text())["results"].values():
            if json.dumps(result["arch"], sort_keys=True) == arch:
                front["chosen"]["alone_test_accuracy"] = result["test_accuracy"]
                front["chosen"]["alone_val_accuracy"] = result["val_accuracy"]
    return front


def _cell(point: dict[str, Any] | None, accuracy: str) -> str:
    """A table cell: a point's measured latency and its ``accuracy`` field, or "none"."""
    if point is None:
        return "none"
    return f"{point['measured_latency_ms']:.3f} ms, {point[accuracy]:.2%}"


def _equal_alone(
    searches: dict[str, Any], targets: list[float], joint_targets: list[float]
) -> list[dict[str, Any]]:
    """For each float-only choice (trained alone, --rerank), the fastest joint choice whose
    trained-alone test accuracy is within 0.5 points of it or above, and the speed ratio."""
    rows = []
    for target in targets:
        ours = searches[f"float-{target}"]["chosen"]
        if not ours or "alone_test_accuracy" not in ours:
            continue
        level = ours["alone_test_accuracy"] - 0.005
        joint = [searches[f"joint-{t}"]["chosen"] for t in joint_targets]
        good = [c for c in joint if c and c.get("alone_test_accuracy", -1.0) >= level]
        best = min(good, key=lambda c: c["measured_latency_ms"]) if good else None
        row: dict[str, Any] = {"target": target, "float": ours, "joint": best}
        if best is not None:
            row["speedup"] = ours["measured_latency_ms"] / best["measured_latency_ms"]
        rows.append(row)
    return rows


def _key(name: str, target: float, runtime: str, runtimes: list[str]) -> str:
    """A search's key in the report: ``joint-0.3`` on the first joint runtime (as reports of
    one runtime have it), ``joint-onnxruntime-0.3`` on another."""
    return f"{name}-{target}" if runtime == runtimes[0] else f"{name}-{runtime}-{target}"


def _distinct(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``points`` with each subnet (arch and runtime) once: a subnet on several targets'
    fronts is one subnet."""
    seen: dict[str, dict[str, Any]] = {}
    for point in points:
        seen.setdefault(json.dumps([point["arch"], point.get("runtime")], sort_keys=True), point)
    return list(seen.values())


def _predictor_share(
    points: list[dict[str, Any]], again: dict[str, float] | None = None
) -> dict[str, Any]:
    """How well the search's latency predictor foresaw its verified points (each timed as
    deployed): the share within 10% of measured, the median error and how many points; with
    ``again`` (each point's arch JSON to a second measurement, in another process after every
    search), the noise floor (the share of second measurements within 10% of the search's) and
    the predictor's share within 10% of the second measurement."""
    errors, floor, second = [], [], []
    for point in points:
        predicted = point.get("predicted_latency", point.get("predicted", {}).get("latency"))
        if predicted and point.get("measured_latency_ms"):
            errors.append(abs(predicted / point["measured_latency_ms"] - 1.0))
            repeat = (again or {}).get(json.dumps(point["arch"], sort_keys=True))
            if repeat:
                floor.append(abs(repeat / point["measured_latency_ms"] - 1.0))
                second.append(abs(predicted / repeat - 1.0))
    share = {
        "points": len(errors),
        "within_10pct": float(np.mean(np.array(errors) <= 0.1)) if errors else None,
        "median_error": float(np.median(errors)) if errors else None,
    }
    if floor:
        share["floor_within_10pct"] = float(np.mean(np.array(floor) <= 0.1))
        share["within_10pct_of_again"] = float(np.mean(np.array(second) <= 0.1))
    return share


def _measured_again(
    space: ss.Space, points: list[dict[str, Any]], config: MeasureConfig, known: dict[str, float]
) -> dict[str, float]:
    """A second measurement of each point's arch (as deployed, on ``config``'s runtime and
    batch), those in ``known`` kept."""
    for point in points:
        key = json.dumps(point["arch"], sort_keys=True)
        if key not in known:
            known[key] = measure_arch(space, ss.Arch.from_dict(point["arch"]), config).median_ms
    return known


def _fastest_at(front: list[dict[str, Any]], level: float) -> dict[str, Any] | None:
    """The front point with the lowest measured latency whose test accuracy is at least
    ``level`` minus half a point."""
    eligible = [p for p in front if p["test_accuracy"] >= level - 0.005]
    return min(eligible, key=lambda p: p["measured_latency_ms"], default=None)


def _level_rows(
    joint_front: list[dict[str, Any]],
    float_front: list[dict[str, Any]],
    levels: list[float],
    floor: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """One row per accuracy level: the fastest verified point of each search at it (within
    half a point), the speed ratio, and whether the float view's smallest subnet (``floor``)
    reaches the level itself."""
    rows = []
    for level in levels:
        row: dict[str, Any] = {"accuracy_level": float(level)}
        if floor is not None:
            row["at_floor"] = bool(floor["test_accuracy"] >= level - 0.005)
        best = {"joint": _fastest_at(joint_front, level), "float": _fastest_at(float_front, level)}
        for name, point in best.items():
            keys = ("arch", "measured_latency_ms", "test_accuracy", "runtime")
            row[name] = None if point is None else {k: point[k] for k in keys}
        if best["joint"] and best["float"]:
            row["speedup"] = (
                best["float"]["measured_latency_ms"] / best["joint"]["measured_latency_ms"]
            )
        rows.append(row)
    return rows


def _floor(searches: dict[str, Any], targets: list[float]) -> dict[str, Any] | None:
    """The float view's smallest subnet as its searches measured and scored it (the first
    float-only search that kept it), or None."""
    for target in targets:
        smallest = searches[f"float-{target}"].get("references", {}).get("smallest")
        if smallest and smallest.get("test_accuracy") is not None:
            keys = ("arch", "measured_latency_ms", "test_accuracy")
            return {k: smallest[k] for k in keys}
    return None


def _floor_forms(
    space: ss.Space, arch: ss.Arch, runtimes: list[str], config: MeasureConfig
) -> dict[str, Any]:
    """The float view's smallest subnet in every whole-network form (inverted residual or
    fused, fp32 or int8) on each of ``runtimes``, timed side by side with today's path (the
    inverted-residual fp32 form on ONNX Runtime): milliseconds, speed against today's path,
    and the best of those speeds. No network of the space is smaller, so no network at an
    accuracy level the smallest reaches can beat today's path by more than a form of it does
    (a stage-by-stage mix of these forms runs between them)."""
    graphs = {}
    for name in ("mbconv-fp32", "mbconv-int8", "fused-fp32", "fused-int8"):
        graph = arch_graph(space, form(space, _in_joint(space, arch, None), name))
        for runtime in runtimes:
            graphs[f"{runtime}-{name}"] = (runtime, graph, arch.resolution)
        if name == "mbconv-fp32":
            graphs["today"] = ("onnxruntime", graph, arch.resolution)
    ms = _side_by_side(space, graphs, config)
    speed = {k: ms["today"] / v for k, v in ms.items() if k != "today"}
    best = max(speed, key=lambda k: speed[k])
    return {"ms": ms, "speed": speed, "best": best, "bound": speed[best]}


def _in_joint(space: ss.Space, arch: ss.Arch, precision: str | None) -> ss.Arch:
    """An arch of the float view or of the joint ``space`` as an arch of the joint space: every
    stage at ``precision`` (None: as it is), squeeze-excitation and activation as the arch has
    them or, where it leaves them out but the joint space chooses them, their first, reference
    value (what the float view fixed)."""
    stages = []
    for spec, stage in zip(space.stages, arch.stages, strict=False):
        se, activation = stage.se, stage.activation
        if spec.has_se_choice and se is None:
            se = spec.se.values[0]
        if spec.has_activation_choice and activation is None:
            activation = spec.activation.values[0]
        stages.append(
            dataclasses.replace(
                stage,
                precision=precision or stage.precision,
                se=se,
                activation=activation,
            )
        )
    return dataclasses.replace(arch, stages=tuple(stages))


@functools.cache
def _supernet_and_data(workdir: Path, space: str) -> tuple[Any, Any]:
    """The trained supernet of ``space`` in ``workdir`` and Fashion-MNIST, loaded once for all
    the checks that score subnets with inherited weights."""
    supernet, _ = load_supernet(workdir / f"supernet-{space}")
    return supernet, load_dataset(DEFAULT_DATA, resolution=28, seed=0)


def _deployed_correct(space: ss.Space, arch: ss.Arch, workdir: Path) -> np.ndarray:
    """Which test images ``arch`` (of the joint ``space``) classifies right as deployed: the
    ONNX graph ``nas export`` writes (int8 stages quantized with 500 training images), weights
    inherited from the supernet, batch norm recalibrated on its float form."""
    supernet, dataset = _supernet_and_data(workdir, space.name)
    network = recalibrated(supernet, _in_joint(space, arch, "fp32"), dataset).eval()
    calibration = calibration_images(dataset, arch.resolution, 500)
    graph = arch_graph(space, arch, network, calibration)
    x = resize_images(dataset.x_test, arch.resolution)
    logits = next(iter(onnx_outputs(graph, x).values()))
    return np.asarray(logits.argmax(axis=1) == dataset.y_test)


def _paired(ours: np.ndarray, theirs: np.ndarray) -> dict[str, Any]:
    """Two classifiers' right/wrong on the same test images: the difference in points and
    McNemar's exact test (a two-sided binomial test on the images only one gets right); a
    difference with p >= 0.05 is a tie."""
    only_ours = int(np.sum(ours & ~theirs))
    only_theirs = int(np.sum(~ours & theirs))
    discordant = only_ours + only_theirs
    p = binomtest(only_ours, discordant).pvalue if discordant else 1.0
    points = 100 * (float(ours.mean()) - float(theirs.mean()))
    verdict = "tie" if p >= 0.05 else ("win" if points > 0 else "loss")
    return {"points": points, "p_value": float(p), "verdict": verdict}


def _quantized(
    space: ss.Space,
    chosen: ss.Arch,
    joint_choices: dict[str, ss.Arch],
    workdir: Path,
    config: MeasureConfig,
) -> dict[str, Any]:
    """``chosen`` (an arch of the float view) with every stage int8: measured latency and
    deployed test accuracy; and the joint searches' choices at the same target (by runtime)
    deployed the same way, each compared with it image by image."""
    int8 = _in_joint(space, chosen, "int8")
    correct = _deployed_correct(space, int8, workdir)
    joint = {}
    scored: dict[str, np.ndarray] = {}  # by arch: runtimes often choose the same subnet
    for runtime, arch in joint_choices.items():
        key = arch.to_json()
        if key not in scored:
            scored[key] = _deployed_correct(space, _in_joint(space, arch, None), workdir)
        ours = scored[key]
        joint[runtime] = {"deployed_test_accuracy": float(ours.mean())} | _paired(ours, correct)
    return {
        "arch": int8.to_dict(),
        "measured_latency_ms": measure_arch(space, int8, config).median_ms,
        "test_accuracy": float(correct.mean()),
        "joint": joint,
    }


def _own_float(
    space: ss.Space, arch: ss.Arch, workdir: Path, config: MeasureConfig
) -> dict[str, Any]:
    """``arch`` (of the joint ``space``, int8 somewhere) against the same arch in fp32: both
    timed side by side on ``config``'s runtime and batch, both deployed (the int8 stages as the
    QDQ graph ``nas export`` writes) and scored on the test images with inherited weights."""
    floats = _in_joint(space, arch, "fp32")
    supernet, dataset = _supernet_and_data(workdir, space.name)
    network = recalibrated(supernet, floats, dataset).eval()
    calibration = calibration_images(dataset, arch.resolution, 500)
    graphs = {
        "float": arch_graph(space, floats, network, calibration),
        "int8": arch_graph(space, arch, network, calibration),
    }
    x = resize_images(dataset.x_test, arch.resolution)
    ms = _side_by_side(
        space, {k: (config.runtime, g, arch.resolution) for k, g in graphs.items()}, config
    )
    accuracy = {k: evaluate_onnx(g, x, dataset.y_test) for k, g in graphs.items()}
    case: dict[str, Any] = {
        "arch": arch.to_dict(),
        "float_ms": ms["float"],
        "int8_ms": ms["int8"],
        "float_test_accuracy": accuracy["float"],
        "int8_test_accuracy": accuracy["int8"],
        "speed": ms["float"] / ms["int8"],
        "points_lost": 100 * (accuracy["float"] - accuracy["int8"]),
        "smaller": space.weight_bytes(floats) / space.weight_bytes(arch),
    }
    case["meets_bar"] = case["speed"] >= 1.5 and case["points_lost"] <= 1.0
    case["meets_bar"] = case["meets_bar"] and case["smaller"] >= 3.5
    return case


def _side_by_side(
    space: ss.Space, graphs: dict[str, tuple[str, bytes, int]], config: MeasureConfig
) -> dict[str, float]:
    """Median milliseconds of each ``(runtime, ONNX graph, resolution)``, timed side by side
    (alternating rounds) at ``config``'s batch and threads on a fixed random batch."""
    runners = {}
    for name, (runtime, graph, resolution) in graphs.items():
        shape = (config.batch_size, space.in_channels, resolution, resolution)
        example = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        runners[name] = graph_runner(runtime, graph, example, config.threads)
    return time_side_by_side(runners, rounds=OWN_ROUNDS, repeats=OWN_REPEATS, warmup=10)


def _level_side_by_side(
    space: ss.Space, row: dict[str, Any], config: MeasureConfig
) -> dict[str, float]:
    """The two points of an accuracy-level row timed side by side, each on its search's runtime
    (the float-only point on ``config``'s, the joint one on the runtime it was found on), same
    batch."""
    graphs = {}
    for name, runtime in (("joint", row["joint"]["runtime"]), ("float", config.runtime)):
        arch = _in_joint(space, ss.Arch.from_dict(row[name]["arch"]), None)
        graphs[name] = (runtime, arch_graph(space, arch), arch.resolution)
    ms = _side_by_side(space, graphs, config)
    return {"joint_ms": ms["joint"], "float_ms": ms["float"], "speed": ms["float"] / ms["joint"]}


def _standalone(
    space: ss.Space, arch: ss.Arch, workdir: Path, epochs: int, seeds: int
) -> list[float]:
    """Test accuracies of ``arch`` (of the joint ``space``) trained from scratch with the
    supernet's recipe for ``epochs`` epochs, once per seed; int8 stages deployed as QDQ."""
    metadata = load_checkpoint(workdir / f"supernet-{space.name}").metadata  # no weights
    recipe = dataclasses.replace(Recipe.from_checkpoint(metadata), epochs=epochs)
    dataset = load_dataset(DEFAULT_DATA, resolution=28, seed=0)
    calibration = calibration_images(dataset, arch.resolution, 500)
    x = resize_images(dataset.x_test, arch.resolution)
    floats = _in_joint(space, arch, "fp32")
    scores = []
    for seed in range(seeds):
        network = train_from_scratch(space, floats, dataset, recipe, seed=seed)
        graph = arch_graph(space, arch, network, calibration)
        scores.append(evaluate_onnx(graph, x, dataset.y_test))
    return scores


def _uses(front: list[dict[str, Any]]) -> dict[str, int]:
    counts = {"points": len(front), "with_int8": 0, "with_fused": 0}
    counts |= {"without_se_somewhere": 0, "with_relu_chosen": 0}
    for point in front:
        stages = point["arch"]["stages"]
        counts["with_int8"] += any(s.get("precision") == "int8" for s in stages)
        counts["with_fused"] += any(s.get("block_type") == "fused" for s in stages)
        counts["without_se_somewhere"] += any(s.get("se") is False for s in stages)
        counts["with_relu_chosen"] += any(s.get("activation") == "relu" for s in stages)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mbv3-28-fused", help="the joint space")
    parser.add_argument("--workdir", default="runs/fused-work")
    parser.add_argument("--targets", default="0.04,0.06,0.1", help="latency targets in ms")
    parser.add_argument("--evaluations", type=int, default=20000)
    parser.add_argument("--tag", default="default")
    parser.add_argument("--standalone-seeds", type=int, default=0)
    parser.add_argument("--standalone-epochs", type=int, default=12)
    parser.add_argument(
        "--rerank",
        type=int,
        default=0,
        help="nas search --rerank K: every choice trained alone, compared at equal accuracy",
    )
    parser.add_argument("--rerank-epochs", type=int, default=12)
    parser.add_argument(
        "--batch-size", type=int, default=1, help="the batch latency is measured at"
    )
    parser.add_argument(
        "--joint-extra-targets",
        default="",
        help="more latency targets (ms) for the joint space only, e.g. the targets / 1.5",
    )
    parser.add_argument(
        "--joint-runtime",
        default="onnxruntime",
        help="the runtime the joint searches measure on, or several, comma-separated, whose "
        "points are pooled (the float-only ones: onnxruntime)",
    )
    parser.add_argument(
        "--latency-predictor",
        choices=("auto", "learned", "table"),
        default="auto",
        help="nas search --latency-predictor for every search (learned: no operator table to "
        "profile, which takes long at large batches)",
    )
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    joint = ss.get_space(args.space)
    floats = ss.float_view(joint)
    float_file = workdir / f"{floats.name}.yaml"
    ss.save_space(floats, float_file)
    out = Path(__file__).with_name("results") / f"joint_search-{args.tag}.json"
    report: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    report.update(
        {
            "command": " ".join(["python", *sys.argv]),
            "space": joint.name,
            "machine": machine_info(),
            "versions": library_versions(),
        }
    )
    searches = report.setdefault("searches", {})
    for search in searches.values():  # a report written before fronts were trimmed
        if "uses" not in search:
            _kept(search)
    targets = [float(t) for t in args.targets.split(",")]
    extra = [float(t) for t in args.joint_extra_targets.split(",") if t]
    joint_targets = sorted({*targets, *extra})
    runtimes = args.joint_runtime.split(",")
    runs = [("joint", args.space, t, runtimes[0]) for t in joint_targets]
    runs += [("float", str(float_file), t, "onnxruntime") for t in targets]
    runs += [("joint", args.space, t, r) for r in runtimes[1:] for t in joint_targets]
    on = {"joint": runtimes, "float": ["onnxruntime"]}  # the runtimes each kind searches on
    for name, space_arg, target, runtime in runs:
        key = _key(name, target, runtime, on[name])
        if key in searches:
            continue
        run = _run_dir(workdir, key, args.rerank, args.batch_size, on)
        link = workdir / f"supernet-{floats.name}"
        if name == "float" and not link.is_symlink():
            link.symlink_to(f"supernet-{joint.name}")  # the joint space's supernet, trained
        _search(
            space_arg,
            workdir,
            target,
            run,
            args.evaluations,
            args.rerank,
            args.rerank_epochs,
            args.batch_size,
            runtime,
            args.latency_predictor,
        )
        searches[key] = _front(run)
        atomic_write_json(out, report)
    for key, search in searches.items():  # kept before the report kept references
        run = _run_dir(workdir, key, args.rerank, args.batch_size, on)
        if "references" not in search and (run / "references.json").exists():
            search["references"] = json.loads((run / "references.json").read_text())

    config = MeasureConfig(**searches[f"float-{targets[0]}"]["settings"]["measure"])
    quantized = report.setdefault("search_then_quantize", {})
    for target in targets:
        key = str(target)
        if set(quantized.get(key, {}).get("joint", {})) != set(runtimes):
            chosen = ss.Arch.from_dict(searches[f"float-{target}"]["chosen"]["arch"])
            ours = {
                r: ss.Arch.from_dict(searches[_key("joint", target, r, runtimes)]["chosen"]["arch"])
                for r in runtimes
            }
            quantized[key] = _quantized(joint, chosen, ours, workdir, config)
            atomic_write_json(out, report)

    def verified(name: str) -> list[dict[str, Any]]:
        """The front points of every target that were measured for real, and the choices, each
        subnet once, with the runtime it was measured on."""
        which = joint_targets if name == "joint" else targets
        points = []
        for runtime in on[name]:
            for target in which:
                search = searches[_key(name, target, runtime, on[name])]
                for point in [*search["front"], search["chosen"] or {}]:
                    if point.get("test_accuracy") is not None:
                        points.append(point | {"runtime": runtime})
        return _distinct(points)

    def verified_on(name: str, runtime: str) -> list[dict[str, Any]]:
        return [p for p in verified(name) if p["runtime"] == runtime]

    again = report.setdefault("measured_again", {})
    for name, space in (("joint", joint), ("float", floats)):
        for runtime in on[name]:
            known = again.setdefault(f"{name}-{runtime}", {})
            points = verified_on(name, runtime)
            _measured_again(space, points, dataclasses.replace(config, runtime=runtime), known)
            atomic_write_json(out, report)
    report["latency_predictor"] = {
        f"{name}-{runtime}": _predictor_share(
            verified_on(name, runtime), again[f"{name}-{runtime}"]
        )
        for name in ("joint", "float")
        for runtime in on[name]
    }

    joint_front, float_front = verified("joint"), verified("float")
    quartiles = [0.25, 0.5, 0.75]
    kept_floor = report.get("floor") or {}
    floor = report["floor"] = _floor(searches, targets)
    if floor is not None and kept_floor.get("arch") == floor["arch"] and "forms" in kept_floor:
        floor["forms"] = kept_floor["forms"]
    levels = np.quantile([p["test_accuracy"] for p in float_front], quartiles)
    rows = report["levels"] = _level_rows(joint_front, float_front, list(levels), floor)
    above: list[dict[str, Any]] = []
    if floor is not None:
        floor_arch = ss.Arch.from_dict(floor["arch"])
        if "forms" not in floor:
            floor["forms"] = _floor_forms(joint, floor_arch, runtimes, config)
        higher = [
            p["test_accuracy"]
            for p in float_front
            if p["test_accuracy"] - 0.005 > floor["test_accuracy"]
        ]
        if higher:
            levels = np.quantile(higher, quartiles)
            above = _level_rows(joint_front, float_front, list(levels), floor)
    report["levels_above_floor"] = above
    paired = report.setdefault("level_pairs", {})  # a pair on several rows is timed once
    for row in [*rows, *above]:
        if "speedup" in row:
            pair = json.dumps(
                [row["joint"]["arch"], row["joint"]["runtime"], row["float"]["arch"]],
                sort_keys=True,
            )
            if pair not in paired:
                paired[pair] = _level_side_by_side(joint, row, config)
                atomic_write_json(out, report)
            row["side_by_side"] = paired[pair]
    own = report.setdefault("against_own_float", {})
    for runtime in runtimes:
        for target in joint_targets:
            chosen = searches[_key("joint", target, runtime, runtimes)]["chosen"]
            key = _key("", target, runtime, runtimes)[1:]  # "0.3", "onnxruntime-0.3"
            arch = ss.Arch.from_dict(chosen["arch"]) if chosen else None
            if arch and key not in own and uses_int8(arch):
                joint_config = dataclasses.replace(config, runtime=runtime)
                own[key] = _own_float(joint, arch, workdir, joint_config)
                atomic_write_json(out, report)
    report["uses"] = {
        name: {
            k: sum(
                searches[_key(name, t, r, on[name])]["uses"][k] for r in on[name] for t in targets
            )
            for k in _uses([])
        }
        for name in ("joint", "float")
    }
    if args.rerank:
        report["equal_alone"] = _equal_alone(searches, targets, joint_targets)
    atomic_write_json(out, report)
    if args.standalone_seeds:
        trained = report.setdefault("standalone", {})
        report["standalone_settings"] = {
            "epochs": args.standalone_epochs,
            "seeds": args.standalone_seeds,
        }
        for row in rows:
            for name in ("joint", "float"):
                if row[name] is None:
                    continue
                key = json.dumps(row[name]["arch"], sort_keys=True)
                if key not in trained:
                    arch = _in_joint(joint, ss.Arch.from_dict(row[name]["arch"]), None)
                    trained[key] = _standalone(
                        joint, arch, workdir, args.standalone_epochs, args.standalone_seeds
                    )
                    atomic_write_json(out, report)
                row[name]["standalone_test_accuracy"] = trained[key]
        atomic_write_json(out, report)

    print(f"## Joint vs float-only search ({joint.name}, {report['machine'].get('cpu')})\n")
    print("| accuracy level | joint: latency, accuracy | float-only: latency, accuracy | speed |")
    print("|---:|---|---|---:|")
    for index, row in enumerate([*rows, *above]):
        if index == len(rows):
            print("| *above the floor* | | | |")
        cells = [_cell(row[n], "test_accuracy") for n in ("joint", "float")]
        if row["joint"] and len(runtimes) > 1:
            cells[0] += f" ({row['joint']['runtime']})"
        speed = f"{row['speedup']:.2f}x" if "speedup" in row else "-"
        if "side_by_side" in row:
            speed += f" (side by side {row['side_by_side']['speed']:.2f}x)"
        alone = [
            "/".join(f"{a:.2%}" for a in (row[n] or {}).get("standalone_test_accuracy", []))
            for n in ("joint", "float")
        ]
        trained_alone = f" (alone: {alone[0]} vs {alone[1]})" if any(alone) else ""
        at_floor = " (floor)" if row.get("at_floor") else ""
        print(
            f"| {row['accuracy_level']:.2%}{at_floor} | {cells[0]} | {cells[1]} | "
            f"{speed}{trained_alone} |"
        )
    if floor is not None:
        forms = floor["forms"]
        print(
            f"\nfloor: the smallest float subnet, {floor['measured_latency_ms']:.3f} ms, "
            f"{floor['test_accuracy']:.2%}; its forms against today's path, side by side: "
            + ", ".join(f"{k} {v:.2f}x" for k, v in forms["speed"].items())
            + f" (bound at floor levels: {forms['bound']:.2f}x, {forms['best']})"
        )
    print(
        "\n| target | "
        + " | ".join(f"joint choice ({r})" for r in runtimes)
        + " | float choice | float choice quantized |"
    )
    print("|---:|" + "---|" * (len(runtimes) + 2))
    for target in targets:
        picks = [searches[_key("joint", target, r, runtimes)]["chosen"] for r in runtimes]
        picks += [searches[f"float-{target}"]["chosen"], quantized[str(target)]]
        cells = [_cell(p, "test_accuracy") for p in picks]
        for i, runtime in enumerate(runtimes):  # deployed, against the quantized float choice
            paired = quantized[str(target)]["joint"][runtime]
            cells[i] += (
                f" (deployed {paired['deployed_test_accuracy']:.2%}: {paired['verdict']}, "
                f"p {paired['p_value']:.2f})"
            )
        print(f"| {target} ms | " + " | ".join(cells) + " |")
    if args.rerank:
        print(
            "\n| float target | float-only choice, alone | fastest joint choice within 0.5 "
            "points, alone | speed |"
        )
        print("|---:|---|---|---:|")
        for row in report["equal_alone"]:
            cells = [_cell(row[n], "alone_test_accuracy") for n in ("float", "joint")]
            speed = f"{row['speedup']:.2f}x" if "speedup" in row else "-"
            print(f"| {row['target']} ms | {cells[0]} | {cells[1]} | {speed} |")
        print(
            "joint choices, alone: "
            + ", ".join(
                f"{t} ms: {c['measured_latency_ms']:.3f} ms {c.get('alone_test_accuracy', 0):.2%}"
                for t in joint_targets
                if (c := searches[f"joint-{t}"]["chosen"])
            )
        )
    if own:
        print(
            "\n| joint target | int8 choice: ms, deployed | its float form | "
            "speed, points lost, smaller |"
        )
        print("|---:|---|---|---|")
        for key, case in own.items():
            print(
                f"| {key} ms | {case['int8_ms']:.3f} ms, {case['int8_test_accuracy']:.2%} | "
                f"{case['float_ms']:.3f} ms, {case['float_test_accuracy']:.2%} | "
                f"{case['speed']:.2f}x, {case['points_lost']:.2f}, {case['smaller']:.2f}x"
                f"{' (meets the bar)' if case['meets_bar'] else ''} |"
            )
    print(f"\nfronts: {report['uses']}")
    print(
        "latency predictor on the verified points (within 10%, median error; a second "
        "measurement within 10% of the search's, the predictor within 10% of the second): "
        + ", ".join(
            f"{k}: {v['within_10pct']:.0%}, {v['median_error']:.1%} ({v['points']} points; "
            f"floor {v.get('floor_within_10pct', float('nan')):.0%}, "
            f"{v.get('within_10pct_of_again', float('nan')):.0%} of the second)"
            for k, v in report["latency_predictor"].items()
            if v["points"]
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
