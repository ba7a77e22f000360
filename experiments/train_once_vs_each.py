"""Train once vs train each, on Fashion-MNIST: does the supernet rank its subnets as training
each of them from scratch would?

Takes a trained supernet (by default the one `nas search` builds in runs/), picks --subnets
subnets stratified over FLOPs (equal bins in log-FLOPs from the smallest subnet to the largest),
measures each inherited from the supernet (batch norm recalibrated) on the 10,000 test images,
and trains each from scratch with the supernet's own recipe (same epochs, images per epoch,
batch, learning rate; ``--epochs`` changes the epochs only) once per seed. Reports the mean
gap (stand-alone minus inherited), the Kendall tau of inherited vs the mean of the seeds, the
ceiling (Kendall tau of seed vs seed), and the cost of training each against training once.

Resumable: every finished training goes into the results file at once; a rerun skips it.

    python experiments/train_once_vs_each.py --supernet runs/supernet-mbv3-28 --subnets 16
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau
from standalone_pool import Job, add_backend_arguments, backend_of, log_flops_strata, run_jobs

import search_spaces as ss
from nas.data import load_dataset, resize_images
from nas.defaults import DEFAULT_DATA, DEFAULT_SPACE
from nas.files import atomic_write_json
from nas.measure import library_versions, machine_info
from nas.train import Recipe, accuracy, cross_entropy, load_supernet, recalibrated


def _tau(a: list[float], b: list[float]) -> float:
    return float(kendalltau(a, b).statistic)


def summarise(rows: list[dict[str, Any]], seeds: int, supernet_seconds: float) -> dict:
    inherited = [row["inherited"] for row in rows]
    alone = [[row["alone"][s] for row in rows] for s in range(seeds)]
    mean_alone = [float(np.mean(row["alone"])) for row in rows]
    result: dict[str, Any] = {
        "subnets": len(rows),
        "mean_gap_points": 100 * float(np.mean(np.subtract(mean_alone, inherited))),
        "mean_abs_gap_points": 100 * float(np.mean(np.abs(np.subtract(mean_alone, inherited)))),
        "kendall_tau": _tau(inherited, mean_alone),
        "kendall_tau_per_seed": [_tau(inherited, a) for a in alone],
        "kendall_tau_nll": _tau(
            [row["inherited_nll"] for row in rows],
            [float(np.mean(row["alone_nll"])) for row in rows],
        ),
        # the proxy with no training at all: multiply-adds
        "kendall_tau_flops": _tau([row["flops"] for row in rows], mean_alone),
        "supernet_seconds": supernet_seconds,
        "standalone_core_seconds": float(
            sum(row["alone_seconds"][0] * row["alone_threads"] for row in rows)
        ),
    }
    result["cost_each_over_once"] = result["standalone_core_seconds"] / (supernet_seconds * 2)
    if seeds > 1:
        result["ceiling_kendall_tau"] = _tau(alone[0], alone[1])
        result["tau_over_ceiling"] = result["kendall_tau"] / result["ceiling_kendall_tau"]
        result["seed_spread_points"] = 100 * float(
            np.mean([max(row["alone"]) - min(row["alone"]) for row in rows])
        )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default=DEFAULT_SPACE)
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--supernet", help="checkpoint directory (default: runs/supernet-SPACE)")
    parser.add_argument("--subnets", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--processes", type=int, default=2, help="trainings at once")
    add_backend_arguments(parser)
    parser.add_argument("--calibration", type=int, default=2000, help="BN recalibration images")
    parser.add_argument(
        "--epochs", type=int, help="stand-alone epochs (default: the supernet's own recipe)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="default")
    parser.add_argument(
        "--standalone-from",
        help="take the stand-alone trainings from this results file (same --subnets and --seed, "
        "so the same subnets) instead of training them: compares another supernet with them",
    )
    args = parser.parse_args()
    if args.subnets < 4 or args.seeds < 1 or args.processes < 1:
        parser.error("--subnets must be >= 4, --seeds and --processes >= 1")

    space = ss.get_space(args.space)
    supernet_dir = Path(args.supernet or f"runs/supernet-{space.name}")
    supernet, checkpoint = load_supernet(supernet_dir)
    recipe = Recipe.from_checkpoint(checkpoint.metadata)
    if args.epochs is not None:
        if args.epochs < 1:
            parser.error("--epochs must be >= 1")
        recipe = dataclasses.replace(recipe, epochs=args.epochs)
    dataset = load_dataset(args.data, resolution=max(space.resolution.values), seed=args.seed)
    out_file = (
        Path(__file__).with_name("results") / f"train_once_vs_each-{space.name}-{args.tag}.json"
    )
    report: dict[str, Any] = {}
    if out_file.exists():
        report = json.loads(out_file.read_text())
    report.update(
        {
            "command": " ".join(["python", *sys.argv]),
            "space": space.name,
            "data": args.data,
            "supernet": str(supernet_dir),
            "recipe": recipe.__dict__,
            "calibration_images": args.calibration,
            "machine": machine_info(),
            "versions": library_versions(),
        }
    )
    archs = log_flops_strata(space, np.random.default_rng(1000 + args.seed), args.subnets)
    inherited = report.setdefault("inherited", {})
    torch.set_num_threads(2)
    for index, arch in enumerate(archs):
        key = f"subnet{index}"
        if key in inherited:
            continue
        network = recalibrated(supernet, arch, dataset, calibration_size=args.calibration)
        x_test = resize_images(dataset.x_test, arch.resolution)
        inherited[key] = {
            "arch": arch.to_dict(),
            "flops": space.flops(arch),
            "test_accuracy": accuracy(network, x_test, dataset.y_test),
            "test_nll": cross_entropy(network, x_test, dataset.y_test),
        }
        print(
            f"{key}: {space.flops(arch) / 1e6:.2f}M MACs, inherited "
            f"{inherited[key]['test_accuracy']:.4f}",
            file=sys.stderr,
        )
    atomic_write_json(out_file, report)

    if args.standalone_from:
        borrowed = json.loads(Path(args.standalone_from).read_text())
        if borrowed["inherited"].keys() != inherited.keys() or any(
            borrowed["inherited"][k]["arch"] != inherited[k]["arch"] for k in inherited
        ):
            parser.error(f"{args.standalone_from} holds other subnets; use the same --subnets")
        report["standalone"] = borrowed["standalone"]
        report["standalone_from"] = args.standalone_from
        report["standalone_recipe"] = borrowed["recipe"]
    alone = report.setdefault("standalone", {})
    jobs = [
        Job(key=f"subnet{index}-seed{seed}", arch=arch, seed=seed)
        for seed in range(args.seeds)
        for index, arch in enumerate(archs)
    ]
    run_jobs(
        space,
        dataset,
        recipe,
        jobs,
        alone,
        lambda: atomic_write_json(out_file, report),
        processes=args.processes,
        backend=backend_of(args),
    )

    rows = []
    for index in range(len(archs)):
        key = f"subnet{index}"
        runs = [alone[f"{key}-seed{seed}"] for seed in range(args.seeds)]
        rows.append(
            {
                "flops": inherited[key]["flops"],
                "inherited": inherited[key]["test_accuracy"],
                "inherited_nll": inherited[key]["test_nll"],
                "alone": [run["test_accuracy"] for run in runs],
                "alone_nll": [run["test_nll"] for run in runs],
                "alone_seconds": [run["seconds"] for run in runs],
                "alone_threads": runs[0]["threads"],
            }
        )
    supernet_seconds = float(sum(e["seconds"] for e in checkpoint.metadata["history"]))
    report["rows"] = rows
    report["summary"] = summary = summarise(rows, args.seeds, supernet_seconds)
    atomic_write_json(out_file, report)

    print(f"## train once vs each: {space.name} on {args.data}, {len(rows)} subnets")
    print("| MACs | inherited | stand-alone (seeds) |")
    print("|---:|---:|---|")
    for row in rows:
        seeds = " / ".join(f"{a:.2%}" for a in row["alone"])
        print(f"| {row['flops'] / 1e6:.2f}M | {row['inherited']:.2%} | {seeds} |")
    print(
        f"- mean gap (stand-alone minus inherited) {summary['mean_gap_points']:+.2f} points "
        f"(mean |gap| {summary['mean_abs_gap_points']:.2f}); Kendall tau inherited vs mean of "
        f"seeds {summary['kendall_tau']:.3f} (by cross-entropy {summary['kendall_tau_nll']:.3f}; "
        f"multiply-adds as the proxy {summary['kendall_tau_flops']:.3f})"
    )
    if "ceiling_kendall_tau" in summary:
        print(
            f"- ceiling (seed vs seed) {summary['ceiling_kendall_tau']:.3f}: tau is "
            f"{summary['tau_over_ceiling']:.0%} of it; seeds differ by "
            f"{summary['seed_spread_points']:.2f} points on average"
        )
    print(
        f"- cost: supernet {supernet_seconds / 60:.1f} min on 2 threads; one stand-alone "
        f"training per subnet {summary['standalone_core_seconds'] / 60:.1f} core-min "
        f"({summary['cost_each_over_once']:.2f}x the supernet's core time); median "
        f"{statistics.median(r['alone_seconds'][0] for r in rows):.0f} s each"
    )
    print(f"written: {out_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
