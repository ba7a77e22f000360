"""Bayesian search (Optuna TPE and GP) against random search on an expensive objective.

The objective is real: each proposed subnet is extracted from the trained supernet, its batch
norm recalibrated, and its validation accuracy measured; latency comes from the latency
predictor and must meet ``--target``. For each strategy and seed: the best feasible accuracy
and the hypervolume (accuracy up, latency down) after ``--evaluations`` evaluations.

Needs the cached supernet and latency predictor of `nas search` (`--workdir`, default `runs`).

    python experiments/bayes_vs_random.py --evaluations 100 --seeds 5

Strategies may be run separately (``--strategies gp``): results are merged into the JSON file
when the space, target, evaluations and seeds match.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

import search_spaces as ss
from nas.data import load_dataset
from nas.files import atomic_write_json
from nas.measure import MeasureConfig, library_versions, machine_info, time_callable
from nas.predictors import load_predictor
from nas.search import violations
from nas.search.targets import parse_constraints
from nas.search.workdir import Workdir
from nas.strategies import make_strategy
from nas.strategies.pareto import hypervolume, pareto_mask
from nas.train import evaluate, load_supernet


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs")
    parser.add_argument("--space", default="mbv3-small")
    parser.add_argument("--target", default="latency<0.2ms")
    parser.add_argument("--evaluations", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--strategies", default="tpe,gp,random")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument(
        "--out", default=str(Path(__file__).with_name("results") / "bayes_vs_random.json")
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    space = ss.get_space(args.space)
    work = Workdir(Path(args.workdir), space.name)
    supernet, _ = load_supernet(work.supernet)
    measure = MeasureConfig()
    latency = load_predictor(
        work.latency
        / f"{measure.runtime}-t{measure.threads}-b{measure.batch_size}"
        / "latency-learned.json",
        space,
    )
    dataset = load_dataset("digits", resolution=max(space.resolution.values), seed=0)
    constraints = parse_constraints([args.target])
    cache: dict[bytes, float] = {}

    def accuracy_of(genome: np.ndarray) -> float:
        key = genome.tobytes()
        if key not in cache:
            arch = ss.decode_genome(space, genome)
            cache[key] = evaluate(supernet, arch, dataset, split="val", calibration_size=300)
        return cache[key]

    reference = np.array([0.0, 2.0])
    results: dict[str, dict[str, list[float]]] = {}
    for name in args.strategies.split(","):
        results[name] = {"best_feasible_accuracy": [], "hypervolume": [], "seconds": []}
        for seed in range(args.seeds):
            strategy = make_strategy(name, space, seed=seed, num_objectives=2)
            seen: list[tuple[float, float, float]] = []

            def run(strategy=strategy, seen=seen) -> None:  # type: ignore[no-untyped-def]
                for _ in range(args.evaluations):
                    genome = strategy.ask(1)
                    acc = accuracy_of(genome[0])
                    lat = float(latency.predict_genomes(genome)[0])
                    metrics = {"accuracy": np.array([acc]), "latency": np.array([lat])}
                    violation = violations(metrics, constraints)
                    strategy.tell(genome, np.array([[-acc, lat]]), violation)
                    seen.append((acc, lat, float(violation[0])))

            (ms,) = time_callable(run, warmup=0, repeats=1)
            values = np.array([[-a, lat] for a, lat, v in seen if v == 0])
            best = float(-values[:, 0].min()) if len(values) else 0.0
            volume = hypervolume(values[pareto_mask(values)], reference) if len(values) else 0.0
            results[name]["best_feasible_accuracy"].append(best)
            results[name]["hypervolume"].append(volume)
            results[name]["seconds"].append(ms / 1e3)
            print(f"{name} seed {seed}: best {best:.4f}, hypervolume {volume:.4f}", file=sys.stderr)

    report = {
        "space": space.name,
        "target": args.target,
        "evaluations": args.evaluations,
        "seeds": args.seeds,
        "reference": reference.tolist(),
        "machine": machine_info(),
        "versions": library_versions(),
        "results": results,
    }
    out = Path(args.out)
    if out.exists():
        earlier = json.loads(out.read_text())
        same = ("space", "target", "evaluations", "seeds", "reference")
        if all(earlier.get(key) == report[key] for key in same):
            results = {**earlier["results"], **results}
            report["results"] = results
    atomic_write_json(out, report)
    print(
        f"| strategy ({args.evaluations} real evaluations, {args.seeds} seeds, {args.target}) "
        "| best feasible val accuracy (mean) | hypervolume (mean) |"
    )
    print("|---|---:|---:|")
    for name, data in results.items():
        print(
            f"| {name} | {np.mean(data['best_feasible_accuracy']):.4f} | "
            f"{np.mean(data['hypervolume']):.4f} |"
        )
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
