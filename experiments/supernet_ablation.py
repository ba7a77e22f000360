"""Where weight sharing fails: inherited accuracy one dimension away from the trained extremes.

The sandwich rule trains the largest and the smallest subnet at every step and a few random
ones. This script takes a trained supernet and measures, after batch-norm recalibration, the
largest and the smallest subnet and the subnets that differ from one of them in a single
dimension applied to every stage (resolution, width, kernel size, expand ratio, depth, number of
stages, where the network keeps its size; block type and precision where the space chooses them),
plus uniformly random subnets. A subnet one step
from an extreme that scores far below both extremes shows which dimension the supernet does not
share; stand-alone, every one of them trains to within a few points of the extremes
(train_once_vs_each.py).

Resumable: each measured subnet goes into the results file at once; a rerun skips it.

    python experiments/supernet_ablation.py --supernet runs/supernet-mbv3-28 --tag default
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import search_spaces as ss
from nas.data import load_dataset, resize_images
from nas.defaults import DEFAULT_DATA
from nas.files import atomic_write_json
from nas.measure import library_versions, machine_info
from nas.train import accuracy, load_supernet, recalibrated
from search_spaces import Arch, Space, StageArch


def _per_stage(arch: Arch, change: Callable[[int, StageArch], StageArch]) -> Arch:
    return dataclasses.replace(
        arch, stages=tuple(change(i, stage) for i, stage in enumerate(arch.stages))
    )


def _blocks(stage: StageArch, depth: int, kernel: int, expand: float) -> StageArch:
    return dataclasses.replace(stage, kernel_size=(kernel,) * depth, expand_ratio=(expand,) * depth)


def _other(stage: StageArch, spec: ss.StageSpec, name: str) -> StageArch:
    """``stage`` with its ``name`` choice (block type, precision) at another value of
    ``spec``'s, where it has one."""
    others = [v for v in getattr(spec, name).values if v != getattr(stage, name)]
    return dataclasses.replace(stage, **{name: others[0]}) if others else stage


def neighbours(space: Space, largest: bool) -> dict[str, Arch]:
    """The extreme and, per dimension, the extreme with that dimension at the other end."""
    base = space.largest() if largest else space.smallest()
    other = space.smallest() if largest else space.largest()
    specs = space.stages
    out = {"base": base, "resolution": dataclasses.replace(base, resolution=other.resolution)}
    pick = min if largest else max
    out["width_mult"] = _per_stage(
        base, lambda i, s: dataclasses.replace(s, width_mult=pick(specs[i].width_mult.values))
    )
    out["kernel_size"] = _per_stage(
        base, lambda i, s: _blocks(s, s.depth, pick(specs[i].kernel_size.values), s.expand_ratio[0])
    )
    out["expand_ratio"] = _per_stage(
        base, lambda i, s: _blocks(s, s.depth, s.kernel_size[0], pick(specs[i].expand_ratio.values))
    )
    out["depth"] = _per_stage(
        base,
        lambda i, s: _blocks(s, pick(specs[i].depth.values), s.kernel_size[0], s.expand_ratio[0]),
    )
    # Block type and precision, where the space chooses them: every stage to its other value
    # (the largest is fused everywhere, so its block-type neighbour is the largest subnet with
    # inverted residuals only, what a float-only search deploys at its top).
    for name in ("block_type", "precision"):
        if any(len(getattr(spec, name)) > 1 for spec in specs):
            out[name] = _per_stage(base, lambda i, s, n=name: _other(s, specs[i], n))
    # The other number of stages, then every place the stride-1 stage can take.
    own = max if largest else min  # an added stage takes the base's end of every choice
    stages = list(base.stages[: other.num_stages])
    for index in range(len(stages), other.num_stages):
        spec = specs[index]
        depth = int(own(spec.depth.values))
        stages.append(
            StageArch(
                width_mult=own(spec.width_mult.values),
                stride=2,
                kernel_size=(own(spec.kernel_size.values),) * depth,
                expand_ratio=(own(spec.expand_ratio.values),) * depth,
            )
        )
    for count in sorted({base.num_stages, other.num_stages}):
        for keep in range(count):
            strides = [1 if i == keep else 2 for i in range(count)]
            if count == base.num_stages:
                candidate = _per_stage(
                    base, lambda i, s, st=strides: dataclasses.replace(s, stride=st[i])
                )
            else:
                candidate = _per_stage(
                    dataclasses.replace(base, stages=tuple(stages)),
                    lambda i, s, st=strides: dataclasses.replace(s, stride=st[i]),
                )
            name = f"stages{count}-stride1-at{keep}"
            try:
                ss.validate(space, candidate)
            except ss.ArchError:
                all_two = _per_stage(candidate, lambda i, s: dataclasses.replace(s, stride=2))
                try:
                    ss.validate(space, all_two)
                except ss.ArchError:
                    continue
                candidate, name = all_two, f"stages{count}-stride2"
            if candidate != base:
                out[name] = candidate
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supernet", required=True, help="checkpoint directory")
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--images", type=int, default=5000, help="validation images measured")
    parser.add_argument("--calibration", type=int, default=2000, help="BN recalibration images")
    parser.add_argument("--random", type=int, default=16, help="uniformly random subnets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="default")
    args = parser.parse_args()

    supernet, checkpoint = load_supernet(args.supernet)
    space = checkpoint.space
    dataset = load_dataset(args.data, resolution=max(space.resolution.values), seed=args.seed)
    out_file = (
        Path(__file__).with_name("results") / f"supernet_ablation-{space.name}-{args.tag}.json"
    )
    report: dict[str, Any] = json.loads(out_file.read_text()) if out_file.exists() else {}
    report.update(
        {
            "command": " ".join(["python", *sys.argv]),
            "space": space.name,
            "data": args.data,
            "supernet": args.supernet,
            "supernet_config": checkpoint.metadata.get("config", {}),
            "supernet_schedule": checkpoint.metadata.get("schedule", {}),
            "validation_images": args.images,
            "calibration_images": args.calibration,
            "machine": machine_info(),
            "versions": library_versions(),
        }
    )
    measured = report.setdefault("subnets", {})
    archs = {f"largest.{k}": a for k, a in neighbours(space, largest=True).items()}
    archs |= {f"smallest.{k}": a for k, a in neighbours(space, largest=False).items()}
    rng = np.random.default_rng(args.seed)
    archs |= {f"random{i}": space.sample(rng) for i in range(args.random)}
    for name, arch in archs.items():
        if name in measured and measured[name]["arch"] == arch.to_dict():
            continue
        network = recalibrated(supernet, arch, dataset, calibration_size=args.calibration)
        x = resize_images(dataset.x_val[: args.images], arch.resolution)
        measured[name] = {
            "arch": arch.to_dict(),
            "flops": space.flops(arch),
            "val_accuracy": accuracy(network, x, dataset.y_val[: args.images]),
        }
        print(f"{name}: {measured[name]['val_accuracy']:.2%}", file=sys.stderr)
        atomic_write_json(out_file, report)

    largest = measured["largest.base"]["val_accuracy"]
    smallest = measured["smallest.base"]["val_accuracy"]
    randoms = [measured[f"random{i}"]["val_accuracy"] for i in range(args.random)]
    report["summary"] = {
        "largest": largest,
        "smallest": smallest,
        "random_median": float(np.median(randoms)),
        "random_range": [min(randoms), max(randoms)],
        "drop_from_largest_points": {
            k.split(".", 1)[1]: 100 * (largest - v["val_accuracy"])
            for k, v in measured.items()
            if k.startswith("largest.") and k != "largest.base"
        },
        "drop_from_smallest_points": {
            k.split(".", 1)[1]: 100 * (smallest - v["val_accuracy"])
            for k, v in measured.items()
            if k.startswith("smallest.") and k != "smallest.base"
        },
    }
    atomic_write_json(out_file, report)

    summary = report["summary"]
    print(f"## supernet ablation: {space.name} on {args.data}, {args.supernet}")
    print(
        f"- largest {largest:.2%}, smallest {smallest:.2%}, random median "
        f"{summary['random_median']:.2%} ({min(randoms):.2%}-{max(randoms):.2%})"
    )
    for side in ("largest", "smallest"):
        drops = summary[f"drop_from_{side}_points"]
        print(
            f"- one dimension away from the {side} (points lost): "
            + ", ".join(f"{k} {v:+.1f}" for k, v in drops.items())
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
