"""Search strategies side by side, on the predictors that `nas search` built.

1. Predictor-driven NSGA-II over the default space: wall time of 50,000 candidate evaluations
   (strategy plus both predictors).
2. Same predictors, same budget (2,000 evaluations), one run each, several seeds: hypervolume
   (accuracy up, latency down, fixed reference) and wall time of this NSGA-II, Optuna's
   NSGAIISampler through the same ask/tell wrapper, and random sampling.
3. A sub-space small enough to enumerate (32,768 subnets of the default space): hypervolume of
   the front found with 5% of the evaluations against the exact front.

Needs the cached supernet and predictors of `nas search` (`--workdir`, default `runs`).
Writes ``experiments/results/search_benchmarks.json`` and prints Markdown.

    python experiments/search_benchmarks.py --workdir runs
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import statistics
import sys
from pathlib import Path

import numpy as np

import search_spaces as ss
from nas.files import atomic_write_json
from nas.measure import MeasureConfig, library_versions, machine_info, time_callable
from nas.predictors import load_predictor
from nas.search import Evaluator, objective_matrix
from nas.search.workdir import Workdir
from nas.strategies import make_strategy
from nas.strategies.pareto import hypervolume, pareto_mask


def _run(strategy_name: str, space: ss.Space, evaluate, budget: int, batch: int, seed: int):  # type: ignore[no-untyped-def]
    strategy = make_strategy(strategy_name, space, seed=seed, num_objectives=2)
    told = 0
    genomes_all, values_all = [], []
    while told < budget:
        count = min(batch, budget - told)
        genomes = strategy.ask(count)
        values = evaluate(genomes)
        strategy.tell(genomes, values)
        genomes_all.append(genomes)
        values_all.append(values)
        told += count
    return np.concatenate(genomes_all), np.concatenate(values_all)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs")
    parser.add_argument("--space", default="mbv3-small")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=2000)
    args = parser.parse_args()

    space = ss.get_space(args.space)
    work = Workdir(Path(args.workdir), space.name)
    measure = MeasureConfig()
    latency_path = work.latency / f"{measure.runtime}-t{measure.threads}-b{measure.batch_size}"
    latency = load_predictor(latency_path / "latency-learned.json", space)
    accuracy = load_predictor(work.accuracy, space)
    evaluator = Evaluator(space, accuracy=accuracy, latency=latency)

    def objectives(genomes: np.ndarray) -> np.ndarray:
        return objective_matrix(evaluator(genomes), ("accuracy", "latency"))

    report: dict = {"machine": machine_info(), "versions": library_versions(), "space": space.name}

    # 1. 50,000 evaluations of NSGA-II with the predictors in the loop.
    samples = time_callable(
        lambda: _run("nsga2", space, objectives, 50_000, 100, 0), warmup=0, repeats=3
    )
    report["nsga2_50k_seconds"] = statistics.median(samples) / 1e3
    print(
        f"NSGA-II, 50,000 predictor evaluations: {report['nsga2_50k_seconds']:.2f} s (median of 3)",
        file=sys.stderr,
    )

    # 2. Side by side at a fixed budget.
    probe = objectives(ss.sample_genomes(space, np.random.default_rng(99), 5000))
    reference = np.array([0.0, float(probe[:, 1].max()) * 1.1])
    side: dict[str, dict[str, list[float]]] = {}
    for name in ("nsga2", "optuna-nsga2", "random"):
        side[name] = {"hypervolume": [], "seconds": []}
        for seed in range(args.seeds):
            result: dict = {}

            def run(name: str = name, seed: int = seed, result: dict = result) -> None:
                result["out"] = _run(name, space, objectives, args.budget, 100, seed)

            (ms,) = time_callable(run, warmup=0, repeats=1)
            values = result["out"][1]
            side[name]["hypervolume"].append(hypervolume(values[pareto_mask(values)], reference))
            side[name]["seconds"].append(ms / 1e3)
        print(f"{name}: {side[name]}", file=sys.stderr)
    report["side_by_side"] = {"budget": args.budget, "reference": reference.tolist(), **side}

    # 3. An enumerable sub-space of the default space.
    sub_stages = tuple(
        dataclasses.replace(
            stage,
            depth=ss.Choice((2,)),
            width_mult=ss.Choice((0.5, 1.0)),
            stride=ss.Choice((2,)),
            kernel_size=ss.Choice((3, 7)),
            expand_ratio=ss.Choice((3, 6)),
        )
        for stage in space.stages[:3]
    )
    sub = dataclasses.replace(
        space,
        name=f"{space.name}-sub",
        resolution=ss.Choice((32,)),
        num_stages=ss.Choice((3,)),
        stages=sub_stages,
        min_downsamples=3,
        max_downsamples=3,
    )
    layout = ss.genome_layout(sub)
    every = np.array(list(itertools.product(*(range(c) for c in layout.cardinalities))))
    every = np.unique(ss.canonicalize(sub, every), axis=0)

    def sub_objectives(genomes: np.ndarray) -> np.ndarray:
        full = np.array([ss.to_genome(space, ss.decode_genome(sub, g)) for g in genomes])
        return objectives(full)

    exact_values = sub_objectives(every)
    sub_reference = np.array([0.0, float(exact_values[:, 1].max()) * 1.1])
    exact = hypervolume(exact_values[pareto_mask(exact_values)], sub_reference)
    budget = int(0.05 * len(every))
    found = []
    for seed in range(args.seeds):
        _, values = _run("nsga2", sub, sub_objectives, budget, 64, seed)
        found.append(hypervolume(values[pareto_mask(values)], sub_reference) / exact)
    report["enumerable"] = {
        "subnets": int(len(every)),
        "evaluations": budget,
        "share_of_exact_hypervolume": found,
    }

    out = Path(__file__).with_name("results") / "search_benchmarks.json"
    out.parent.mkdir(exist_ok=True)
    atomic_write_json(out, report)
    print(f"## search benchmarks ({space.name}, predictors from {args.workdir})")
    print(
        f"- NSGA-II with both predictors, 50,000 evaluations: "
        f"{report['nsga2_50k_seconds']:.2f} s (median of 3)"
    )
    print(
        f"\n| strategy ({args.budget} evaluations, {args.seeds} seeds) | hypervolume (mean) | "
        "wall time s (mean) |"
    )
    print("|---|---:|---:|")
    for name, data in side.items():
        print(f"| {name} | {np.mean(data['hypervolume']):.5f} | {np.mean(data['seconds']):.2f} |")
    ratio = np.mean(side["optuna-nsga2"]["seconds"]) / np.mean(side["nsga2"]["seconds"])
    print(f"\nOptuna NSGA-II / this NSGA-II wall time: {ratio:.0f}x")
    print(
        f"- enumerable sub-space: {len(every)} subnets; with {budget} evaluations (5%) NSGA-II "
        f"reaches {min(found):.2%}-{max(found):.2%} of the exact front's hypervolume"
    )
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
