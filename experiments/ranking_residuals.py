"""Which subnets the supernet rates below (or above) their stand-alone accuracy, by architecture.

Reads results files the other experiments wrote (no training, no torch): a train-once-vs-each
file (its 16 subnets, inherited and stand-alone) and any search-vs-baselines files trained with
the same recipe (their search, random and hand-scaled subnets). For every subnet the residual is
stand-alone test accuracy (mean over seeds) minus inherited test accuracy (batch norm
recalibrated), in points; a positive residual means the supernet under-rates the subnet. The
report gives Pearson's correlation of the residual with each architecture feature (number of
blocks, mean expand ratio, mean width multiplier, mean kernel size, resolution, number of stages,
a stage keeping its size, log multiply-adds), how well the features predict the residual of a
subnet left out (ridge regression, leave-one-out: could a correction learned from a few subnets
trained alone fix the supernet's ratings?) and the residuals of the subnets themselves.

    python experiments/ranking_residuals.py --space experiments/spaces/mbv3-28-s2.yaml \\
        --once experiments/results/train_once_vs_each-mbv3-28-s2-e144-worst-up.json \\
        --baselines \\
        experiments/results/search_vs_baselines-mbv3-28-s2-s2-e144-worst-up-anchored.json \\
        --tag s2-e144-worst-up
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import pearsonr

import search_spaces as ss
from nas.files import atomic_write_json

RIDGE_ALPHA = 1.0  # the best of 1, 10 and 100 for this check on the s2 residuals
FEATURES = ("blocks", "expand", "width", "kernel", "resolution", "stages", "keeps_size", "log_macs")


def features(space: ss.Space, arch: ss.Arch) -> dict[str, float]:
    blocks = [
        (k, e)
        for stage in arch.stages
        for k, e in zip(stage.kernel_size, stage.expand_ratio, strict=True)
    ]
    return {
        "blocks": float(len(blocks)),
        "expand": float(np.mean([e for _, e in blocks])),
        "width": float(np.mean([stage.width_mult for stage in arch.stages])),
        "kernel": float(np.mean([k for k, _ in blocks])),
        "resolution": float(arch.resolution),
        "stages": float(len(arch.stages)),
        "keeps_size": float(any(stage.stride == 1 for stage in arch.stages)),
        "log_macs": float(np.log(space.flops(arch))),
    }


def leave_one_out(table: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """Each subnet's residual predicted by a ridge regression on the standardised features of
    all the others."""
    predicted = np.empty_like(residual)
    for left in range(len(residual)):
        keep = np.arange(len(residual)) != left
        mean, scale = table[keep].mean(0), table[keep].std(0) + 1e-9
        x = np.column_stack([np.ones(keep.sum()), (table[keep] - mean) / scale])
        penalty = RIDGE_ALPHA * np.diag([0.0] + [1.0] * table.shape[1])
        w = np.linalg.solve(x.T @ x + penalty, x.T @ residual[keep])
        predicted[left] = np.concatenate([[1.0], (table[left] - mean) / scale]) @ w
    return predicted


def collect(once: dict[str, Any], baselines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """(arch, inherited test, stand-alone test over seeds) of every subnet trained both ways."""
    rows: list[dict[str, Any]] = []
    alone: dict[str, list[float]] = defaultdict(list)
    for key, result in once["standalone"].items():
        alone[key.rsplit("-seed", 1)[0]].append(result["test_accuracy"])
    for name, entry in once["inherited"].items():
        rows.append(
            {"arch": entry["arch"], "inherited": entry["test_accuracy"], "alone": alone[name]}
        )
    for report in baselines:
        for target, summary in report["summary"].items():
            for method, item in summary.items():
                entry = report["per_target"][target]
                arch = (
                    entry["random_pool"][entry["random_best"]]["arch"]
                    if method == "random"
                    else entry[method]["arch"]
                )
                rows.append(
                    {"arch": arch, "inherited": item["inherited"]["test"], "alone": item["test"]}
                )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", required=True, help="a train_once_vs_each results file")
    parser.add_argument(
        "--baselines", nargs="*", default=[], help="search_vs_baselines results files"
    )
    parser.add_argument("--space", default="mbv3-28", help="the space the files were run on")
    parser.add_argument("--tag", required=True)
    args = parser.parse_args()
    once = json.loads(Path(args.once).read_text())
    baselines = [json.loads(Path(path).read_text()) for path in args.baselines]
    space = ss.get_space(args.space)
    if space.name != once["space"]:
        parser.error(f"{args.once} was run on space {once['space']!r}, not {space.name!r}")
    rows = collect(once, baselines)
    described = [features(space, ss.Arch.from_dict(r["arch"])) for r in rows]
    table = np.array([[d[f] for f in FEATURES] for d in described])
    residual = np.array([100 * (np.mean(r["alone"]) - r["inherited"]) for r in rows])
    correlation = {
        name: float(pearsonr(table[:, i], residual)[0])
        for i, name in enumerate(FEATURES)
        if np.ptp(table[:, i]) > 0
    }
    predicted = leave_one_out(table, residual)
    report = {
        "command": " ".join(["python", *sys.argv]),
        "once": args.once,
        "baselines": args.baselines,
        "subnets": len(rows),
        "mean_residual_points": float(residual.mean()),
        "correlation_with_residual": correlation,
        "leave_one_out": {
            "ridge_alpha": RIDGE_ALPHA,
            "pearson_r": float(pearsonr(predicted, residual)[0]),
            "rmse_points": float(np.sqrt(np.mean((predicted - residual) ** 2))),
            "residual_sd_points": float(residual.std()),
        },
        "rows": [
            {**d, "residual_points": float(r)} for d, r in zip(described, residual, strict=True)
        ],
    }
    out = Path(__file__).with_name("results") / f"ranking_residuals-{args.tag}.json"
    atomic_write_json(out, report)
    print(f"{len(rows)} subnets, mean residual {residual.mean():+.2f} points (alone - inherited)")
    for name, value in sorted(correlation.items(), key=lambda item: -abs(item[1])):
        print(f"  {name:>11}: r = {value:+.2f}")
    loo = report["leave_one_out"]
    print(
        f"  predicted for a subnet left out (ridge on all features): r = {loo['pearson_r']:+.2f}, "
        f"RMSE {loo['rmse_points']:.2f} points against a spread of {loo['residual_sd_points']:.2f}"
    )
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
