"""Latency predictors against held-out measurements: lookup table, learned model, FLOPs proxy.

Profiles training subnets (smallest, largest, the rest stratified over FLOPs) and held-out
uniform random subnets of a space with ONNX Runtime, at 1 thread and batch 1 and again at
2 threads and batch 8; profiles the operators they use for the lookup table; fits the
:class:`LatencyTable`, the :class:`LearnedPredictor` and FLOPs as a proxy (a line fitted to the
training latencies) and reports, on the held-out subnets, the share within +-10% of the measured
median, Kendall tau and RMSE. Also: the noise floor (the spread of the median when a few subnets
are each measured several times), the transfer of the predictors fit at the first setting to
the second with one fitted factor, profile and fit wall times, and the time to score 50,000
genomes. Writes ``experiments/results/predictors.json`` and prints Markdown tables. Measurements
go to JSON-lines files under ``--workdir``, so an interrupted run resumes (and a rerun with the
same settings only refits).

Cost on two shared CPU cores: about 1 s per subnet at 1 thread/batch 1 and 1.7 s at 2 threads/
batch 8 (mostly the ONNX export), 0.07-0.11 s per operator, so the defaults (150 + 75 subnets,
repeats 50) take about 14 minutes; ``--train 300 --test 100`` about 23.

    python experiments/predictors.py                       # defaults: 150 / 75 / repeats 50
    python experiments/predictors.py --train 60 --test 30 --repeats 20
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

import search_spaces as ss
from nas.files import atomic_write_json
from nas.measure import (
    MeasureConfig,
    export_onnx,
    library_versions,
    machine_info,
    measure_arch,
    measure_latency,
    time_callable,
)
from nas.measure.profiling import (
    BLOCKS_FILE,
    MEASUREMENTS_FILE,
    profile_blocks,
    profile_latency,
    sample_for_coverage,
    settings_of,
)
from nas.predictors import (
    FlopsPredictor,
    LatencyTable,
    LearnedConfig,
    LearnedPredictor,
    Predictor,
    read_records,
    space_operators,
    summarize,
)
from nas.supernet.static import build_network

logger = logging.getLogger("experiments.predictors")
T = TypeVar("T")
RESULTS = Path(__file__).with_name("results")
NAMES = {"latency_table": "LatencyTable", "learned": "LearnedPredictor", "flops": "FLOPs proxy"}


def timed(run: Callable[[], T]) -> tuple[T, float]:
    """The result of ``run()`` and its wall time in seconds (timed by nas.measure)."""
    box: list[T] = []
    (milliseconds,) = time_callable(lambda: box.append(run()), warmup=0, repeats=1)
    return box[0], milliseconds / 1e3


def held_out(
    space: ss.Space, rng: np.random.Generator, count: int, exclude: Sequence[ss.Arch]
) -> list[ss.Arch]:
    """``count`` distinct uniform random subnets, none of them in ``exclude``."""
    seen = {arch.to_json() for arch in exclude}
    archs: list[ss.Arch] = []
    while len(archs) < count:
        arch = space.sample(rng)
        if arch.to_json() not in seen:
            seen.add(arch.to_json())
            archs.append(arch)
    return archs


def log_progress(what: str) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        if done == total or done % 25 == 0:
            logger.info("%s: %d/%d", what, done, total)

    return report


def noise_floor(
    space: ss.Space, archs: Sequence[ss.Arch], config: MeasureConfig, runs: int
) -> dict[str, Any]:
    """The spread of the median latency when each arch is measured ``runs`` times (one ONNX
    export per arch, a fresh runtime session per measurement)."""
    medians = []
    for arch in archs:
        shape = (space.in_channels, arch.resolution, arch.resolution)
        with torch.random.fork_rng():
            torch.manual_seed(0)
            network = build_network(space, arch).eval()
        graph = export_onnx(network, torch.zeros(1, *shape))
        medians.append([measure_latency(graph, shape, config).median_ms for _ in range(runs)])
    deviations = [abs(m / statistics.median(row) - 1) for row in medians for m in row]
    return {
        "subnets": len(archs),
        "runs": runs,
        "medians_ms": medians,
        "within_10pct_of_own_median": float(np.mean(np.array(deviations) <= 0.10)),
        "mean_relative_std": float(np.mean([np.std(row) / np.mean(row) for row in medians])),
        "mean_max_over_min": float(np.mean([max(row) / min(row) for row in medians])),
    }


def new_lines(file: Path, before: int) -> int:
    return len(read_records(file)) - before


def run_setting(
    space: ss.Space,
    label: str,
    config: MeasureConfig,
    train: list[ss.Arch],
    test: list[ss.Arch],
    args: argparse.Namespace,
) -> tuple[dict[str, Any], dict[str, Predictor], np.ndarray, np.ndarray]:
    folder = args.workdir / space.name / label
    arch_file, block_file = folder / MEASUREMENTS_FILE, folder / BLOCKS_FILE
    arch_lines, block_lines = len(read_records(arch_file)), len(read_records(block_file))
    train_records, train_s = timed(
        lambda: profile_latency(space, train, config, folder, progress=log_progress("train"))
    )
    measured_archs = new_lines(arch_file, arch_lines)
    test_records, test_s = timed(
        lambda: profile_latency(space, test, config, folder, progress=log_progress("test"))
    )
    blocks, blocks_s = timed(
        lambda: profile_blocks(
            space, config, folder, archs=train + test, progress=log_progress("operators")
        )
    )
    measured_ops = new_lines(block_file, block_lines)
    y_train = np.array([r.median_ms for r in train_records])
    y_test = np.array([r.median_ms for r in test_records])
    predictors: dict[str, Predictor] = {
        "latency_table": LatencyTable(space, blocks),
        "learned": LearnedPredictor(space, LearnedConfig(seed=args.seed)),
        "flops": FlopsPredictor(space),
    }
    metrics: dict[str, Any] = {}
    for name, predictor in predictors.items():
        _, fit_s = timed(partial(predictor.fit, train, y_train))
        predicted = predictor.predict(test)
        metrics[name] = {**summarize(predicted, y_test), "fit_s": fit_s}
        metrics[name]["predicted_ms"] = predicted.tolist()
    table = predictors["latency_table"]
    learned = predictors["learned"]
    assert isinstance(table, LatencyTable) and isinstance(learned, LearnedPredictor)
    metrics["latency_table"]["calibration"] = {
        "intercept_ms": table.intercept,
        "scale": table.scale,
        "overhead_ms": table.overhead_ms,
    }
    metrics["learned"]["model"] = f"{learned.model_name}/{learned.transform}"
    metrics["learned"]["cv_scores"] = learned.cv_scores
    noise = noise_floor(space, test[: args.noise_subnets], config, args.noise_runs)
    if args.second_pass:
        again, again_s = timed(lambda: [measure_arch(space, a, config).median_ms for a in test])
        noise["second_pass"] = {
            "measured_ms": again,
            "seconds": again_s,
            **summarize(np.array(again), y_test),
            "table_vs_second_pass": summarize(predictors["latency_table"].predict(test), again),
            "learned_vs_second_pass": summarize(predictors["learned"].predict(test), again),
        }
    operators_in_space = len(space_operators(space))
    per_op = blocks_s / measured_ops if measured_ops else None
    result = {
        "settings": settings_of(config),
        "measured_ms": {"train": y_train.tolist(), "test": y_test.tolist()},
        "predictors": metrics,
        "noise_floor": noise,
        "timing_s": {
            "profile_train": train_s,
            "profile_train_per_subnet": train_s / measured_archs if measured_archs else None,
            "subnets_measured_now": new_lines(arch_file, arch_lines),
            "profile_test": test_s,
            "profile_operators": blocks_s,
            "operators": len(blocks),
            "operators_measured_now": measured_ops,
            "operators_in_space": operators_in_space,
            "full_table_estimate": per_op * operators_in_space if per_op else None,
        },
    }
    return result, predictors, y_train, y_test


def transfer(
    source: dict[str, Predictor],
    calibration: list[ss.Arch],
    y_calibration: np.ndarray,
    test: list[ss.Arch],
    y_test: np.ndarray,
) -> dict[str, Any]:
    """Predictors of one setting applied to another, rescaled by one factor: the geometric mean
    ratio measured/predicted on the calibration subnets."""
    out = {}
    for name, predictor in source.items():
        factor = float(np.exp(np.mean(np.log(y_calibration / predictor.predict(calibration)))))
        out[name] = {**summarize(factor * predictor.predict(test), y_test), "factor": factor}
    return out


def genome_speed(
    space: ss.Space, predictor: LearnedPredictor, train: list[ss.Arch], y: np.ndarray, n: int
) -> dict[str, float]:
    """Seconds to score ``n`` random genomes, for the chosen model and every candidate."""
    genomes = ss.sample_genomes(space, np.random.default_rng(1), n)
    speeds = {}
    candidates = {f"chosen ({predictor.model_name}/{predictor.transform})": predictor}
    for model in predictor.config.models:
        config = LearnedConfig(models=(model,), transforms=(str(predictor.transform),))
        candidates[model] = LearnedPredictor(space, config).fit(train, y)
    for name, candidate in candidates.items():
        samples = time_callable(partial(candidate.predict_genomes, genomes), warmup=1, repeats=3)
        speeds[name] = statistics.median(samples) / 1e3
    return speeds


def row(name: str, m: dict[str, Any]) -> str:
    return (
        f"| {name} | {100 * m['within_tolerance']:.0f}% | {m['kendall_tau']:.3f} | "
        f"{m['rmse']:.4f} | {100 * m['mean_abs_rel_error']:.1f}% |"
    )


HEADER = (
    "| predictor | within ±10% | Kendall tau | RMSE ms | mean abs rel error |\n"
    "|---|---:|---:|---:|---:|"
)


def report(summary: dict[str, Any]) -> None:
    args = summary["args"]
    print(
        f"# Latency predictors on {summary['space']} ({args['train']} train, {args['test']} "
        f"held-out, repeats {args['repeats']}, ONNX Runtime)\n"
    )
    for result in summary["settings"].values():
        s = result["settings"]
        print(f"## {s['threads']} thread(s), batch {s['batch_size']}\n\n{HEADER}")
        for name, metrics in result["predictors"].items():
            extra = f" ({metrics['model']})" if name == "learned" else ""
            print(row(NAMES[name] + extra, metrics))
        noise, timing = result["noise_floor"], result["timing_s"]
        y = result["measured_ms"]["test"]
        print(
            f"\nheld-out latency {min(y):.3f}-{max(y):.3f} ms (median {statistics.median(y):.3f}); "
            f"noise floor ({noise['subnets']} subnets x {noise['runs']} runs): "
            f"{100 * noise['within_10pct_of_own_median']:.0f}% within ±10% of their own median, "
            f"mean relative std {100 * noise['mean_relative_std']:.1f}%"
        )
        if "second_pass" in noise:
            again = noise["second_pass"]
            print(
                f"the held-out set measured again after the profile: "
                f"{100 * again['within_tolerance']:.0f}% within ±10% of the first pass, "
                f"Kendall tau {again['kendall_tau']:.3f}; against the second pass the table "
                f"has {100 * again['table_vs_second_pass']['within_tolerance']:.0f}% within "
                f"±10% (tau {again['table_vs_second_pass']['kendall_tau']:.3f}), the learned "
                f"predictor {100 * again['learned_vs_second_pass']['within_tolerance']:.0f}%"
            )
        fits = ", ".join(f"{NAMES[n]} {m['fit_s']:.1f} s" for n, m in result["predictors"].items())
        estimate = timing["full_table_estimate"]
        reused = (
            " (measurements reused from --workdir)" if not timing["subnets_measured_now"] else ""
        )
        print(
            f"profile{reused}: train {timing['profile_train']:.0f} s, "
            f"test {timing['profile_test']:.0f} s, "
            f"{timing['operators']} operators {timing['profile_operators']:.0f} s (whole space: "
            f"{timing['operators_in_space']} operators"
            + (f", about {estimate:.0f} s" if estimate else "")
            + f"); fit: {fits}\n"
        )
    source, target = list(summary["settings"])
    print(
        f"## Transfer {source} -> {target} (one factor fitted on "
        f"{args['calibration']} subnets)\n\n{HEADER}"
    )
    for name, metrics in summary["transfer"].items():
        print(row(f"{NAMES[name]} x{metrics['factor']:.2f}", metrics))
    speed = ", ".join(f"{k} {v:.3f} s" for k, v in summary["predict_genomes_s"].items())
    print(f"\npredict_genomes({args['genomes']}): {speed}")
    print(f"profile-and-fit wall time: {summary['wall_s']:.0f} s; machine: {summary['machine']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mbv3-small")
    parser.add_argument("--train", type=int, default=150)
    parser.add_argument("--test", type=int, default=75)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--noise-subnets", type=int, default=5)
    parser.add_argument("--noise-runs", type=int, default=5)
    parser.add_argument("--calibration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--no-second-pass",
        dest="second_pass",
        action="store_false",
        help="skip measuring the held-out set a second time (the noise floor across minutes)",
    )
    parser.add_argument("--genomes", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=RESULTS / "predictors-work")
    parser.add_argument("--out", type=Path, default=RESULTS / "predictors.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)

    def run() -> dict[str, Any]:
        space = ss.get_space(args.space)
        rng = np.random.default_rng(args.seed)
        train = sample_for_coverage(space, rng, args.train)
        test = held_out(space, rng, args.test, train)
        configs = {
            "t1-b1": MeasureConfig(
                threads=1,
                batch_size=1,
                warmup=args.warmup,
                repeats=args.repeats,
                rounds=args.rounds,
            ),
            "t2-b8": MeasureConfig(
                threads=2,
                batch_size=8,
                warmup=args.warmup,
                repeats=args.repeats,
                rounds=args.rounds,
            ),
        }
        results, fitted, measured = {}, {}, {}
        for label, config in configs.items():
            logger.info("setting %s", label)
            results[label], fitted[label], y_train, y_test = run_setting(
                space, label, config, train, test, args
            )
            measured[label] = (y_train, y_test)
        k = args.calibration
        y_train_2, y_test_2 = measured["t2-b8"]
        learned = fitted["t1-b1"]["learned"]
        assert isinstance(learned, LearnedPredictor)
        return {
            "space": space.name,
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "machine": machine_info(),
            "versions": library_versions(),
            "train_archs": [a.to_dict() for a in train],
            "test_archs": [a.to_dict() for a in test],
            "settings": results,
            "transfer": transfer(fitted["t1-b1"], train[:k], y_train_2[:k], test, y_test_2),
            "predict_genomes_s": genome_speed(
                space, learned, train, measured["t1-b1"][0], args.genomes
            ),
        }

    summary, wall_s = timed(run)
    summary["wall_s"] = wall_s
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, summary)
    report(summary)
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
