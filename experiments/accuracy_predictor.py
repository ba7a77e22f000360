"""The accuracy predictor against held-out supernet accuracies.

Takes the trained supernet under ``--workdir`` (what `nas search` or `nas train` built),
evaluates training subnets chosen as `nas search` chooses them (smallest, largest, the rest
stratified over FLOPs) and held-out uniform random subnets (validation accuracy after batch-norm
recalibration, as the search does), fits the :class:`AccuracyPredictor` on the first and
reports on the second: Kendall tau (goal >= 0.7), RMSE in points, and the share within 1 and 3
points. FLOPs as a proxy (more MACs, more accuracy) is reported beside it. Also the noise floor:
the spread of one subnet's accuracy when the batch-norm recalibration images are drawn with
other seeds. Writes ``experiments/results/accuracy_predictor-SPACE.json`` and prints Markdown.

    python experiments/accuracy_predictor.py --workdir runs --train 100 --test 100
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import search_spaces as ss
from nas.data import load_dataset
from nas.defaults import DEFAULT_DATA, DEFAULT_SPACE
from nas.files import atomic_write_json
from nas.measure import library_versions, machine_info
from nas.measure.profiling import sample_for_coverage
from nas.predictors import AccuracyPredictor, kendall_tau, rmse
from nas.predictors.base import training_from_dict
from nas.search.workdir import Workdir
from nas.train import evaluate, load_supernet


def _evaluate_all(
    supernet, archs, dataset, seed: int, label: str, split: str = "val"
) -> list[float]:  # type: ignore[no-untyped-def]
    scores = []
    for index, arch in enumerate(archs):
        scores.append(evaluate(supernet, arch, dataset, split=split, seed=seed))
        if (index + 1) % 25 == 0:
            logging.info("%s: %d/%d evaluated", label, index + 1, len(archs))
    return scores


def _within(predicted: np.ndarray, true: np.ndarray, points: float) -> float:
    return float(np.mean(np.abs(predicted - true) <= points / 100))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs")
    parser.add_argument("--space", default=DEFAULT_SPACE)
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--train", type=int, default=100)
    parser.add_argument("--test", type=int, default=100)
    parser.add_argument(
        "--from-search",
        action="store_true",
        help="fit on the accuracy predictor's own training set in --workdir (the subnets `nas "
        "search` measured) instead of evaluating --train new ones",
    )
    parser.add_argument(
        "--other-recalibration",
        action="store_true",
        help="also rank the held-out subnets after recalibrating on other images (a ceiling)",
    )
    parser.add_argument("--noise-subnets", type=int, default=5)
    parser.add_argument("--noise-runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", help="results file (default: results/accuracy_predictor-SPACE.json)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    space = ss.get_space(args.space)
    work = Workdir(Path(args.workdir), space.name)
    supernet, _ = load_supernet(work.supernet)
    dataset = load_dataset(args.data, resolution=max(space.resolution.values), seed=args.seed)
    test_archs = [space.sample(np.random.default_rng([args.seed, 7, i])) for i in range(args.test)]
    start = time.perf_counter()
    saved = work.accuracy
    if args.from_search and saved.exists():  # exactly the subnets `nas search` fit on
        train_archs, known = training_from_dict(json.loads(saved.read_text())["predictor"]["train"])
        train_y = np.asarray(known, dtype=float)
    else:
        train_archs = sample_for_coverage(space, np.random.default_rng(args.seed + 1), args.train)
        train_y = np.array(_evaluate_all(supernet, train_archs, dataset, args.seed, "train"))
    test_y = np.array(_evaluate_all(supernet, test_archs, dataset, args.seed, "test"))
    evaluate_s = time.perf_counter() - start

    start = time.perf_counter()
    predictor = AccuracyPredictor(space).fit(train_archs, train_y)
    fit_s = time.perf_counter() - start
    predicted = np.asarray(predictor.predict(test_archs))
    flops = np.array([space.flops(arch) for arch in test_archs], dtype=float)

    # the ceiling: the same subnets measured again, on other images or recalibrated otherwise
    test_split_y = np.array(
        _evaluate_all(supernet, test_archs, dataset, args.seed, "test split", "test")
    )
    recalibrated_y = (
        np.array(_evaluate_all(supernet, test_archs, dataset, args.seed + 1, "recal"))
        if args.other_recalibration
        else np.full(len(test_archs), np.nan)
    )
    ceiling = {
        "tau_val_vs_test_split": kendall_tau(test_y, test_split_y),
        "tau_val_vs_other_recalibration": (
            kendall_tau(test_y, recalibrated_y) if args.other_recalibration else None
        ),
        "test_split_accuracy": test_split_y.tolist(),
        "other_recalibration_accuracy": (
            recalibrated_y.tolist() if args.other_recalibration else None
        ),
    }

    noise = []
    for arch in test_archs[: args.noise_subnets]:
        runs = [
            evaluate(supernet, arch, dataset, split="val", seed=args.seed + 100 + run)
            for run in range(args.noise_runs)
        ]
        noise.append(
            {"min": min(runs), "max": max(runs), "spread_points": (max(runs) - min(runs)) * 100}
        )

    report = {
        "command": " ".join(["python", *sys.argv]),
        "data": args.data,
        "validation_images": len(dataset.y_val),
        "space": space.name,
        "args": vars(args),
        "machine": machine_info(),
        "versions": library_versions(),
        "model": {
            "selected": f"{predictor.model_name}/{predictor.transform}",
            "cv": predictor.cv_scores,
        },
        "train_accuracy": train_y.tolist(),
        "test_accuracy": test_y.tolist(),
        "predicted": predicted.tolist(),
        "predictor": {
            "kendall_tau": kendall_tau(predicted, test_y),
            "rmse_points": rmse(predicted, test_y) * 100,
            "within_1_point": _within(predicted, test_y, 1),
            "within_3_points": _within(predicted, test_y, 3),
        },
        "flops_proxy_kendall_tau": kendall_tau(flops, test_y),
        "noise": noise,
        "ceiling": ceiling,
        "evaluate_s": evaluate_s,
        "fit_s": fit_s,
        "wall_s": time.perf_counter() - started,
    }
    default = Path(__file__).with_name("results") / f"accuracy_predictor-{space.name}.json"
    out = Path(args.out or default)
    atomic_write_json(out, report)

    p = report["predictor"]
    spread = statistics.median(item["spread_points"] for item in noise) if noise else float("nan")
    print(f"## accuracy predictor ({space.name}, supernet from {args.workdir})")
    print(
        f"{len(train_archs)} training subnets, {args.test} held-out random subnets; validation "
        f"accuracy after BN recalibration spans {test_y.min():.1%}-{test_y.max():.1%} on the "
        "held-out set."
    )
    print("\n| predictor | Kendall tau | RMSE (points) | within 1 point | within 3 points |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| {report['model']['selected']} | {p['kendall_tau']:.3f} | {p['rmse_points']:.2f} | "
        f"{p['within_1_point']:.0%} | {p['within_3_points']:.0%} |"
    )
    print(f"| FLOPs as proxy | {report['flops_proxy_kendall_tau']:.3f} | | | |")
    print(
        f"\nNoise floor: median spread {spread:.2f} points over {args.noise_runs} recalibrations "
        f"of {len(noise)} subnets. Evaluating took {evaluate_s:.0f} s, fitting {fit_s:.1f} s."
    )
    print(
        f"Ceiling: the held-out subnets' validation accuracy ranks like their test-split accuracy "
        f"with tau {ceiling['tau_val_vs_test_split']:.3f} and like a second recalibration's with "
        f"tau {ceiling['tau_val_vs_other_recalibration'] or float('nan'):.3f}."
    )
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
