"""How much a latency measurement of one subnet varies between repeats, raw and anchored.

On a shared virtual machine the speed can flip between spells a second or so long; a raw
measurement (``MeasureConfig(anchored=False)``: the median of rounds timed back to back, slow
rounds dropped) lands inside one spell. An anchored one (the default; :mod:`nas.measure.anchor`)
rescales each round by a reference network timed beside it. For ``--subnets`` subnets spread
over FLOPs (the smallest and the largest included), each is measured ``--repeats`` times both
ways, alternating, with a pause between measurements as between a search's verifications.
Reported per subnet: the largest over the smallest of the repeats (max/min) and the
coefficient of variation, raw and anchored, and the anchored median over the raw fastest.

Writes ``experiments/results/anchoring.json`` and prints Markdown.

    OMP_NUM_THREADS=1 python experiments/anchoring.py --space experiments/spaces/mbv3-28-s2.yaml
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from runtimes import cpu_flags

import search_spaces as ss
from nas.defaults import DEFAULT_SPACE
from nas.files import atomic_write_json
from nas.measure import MeasureConfig, library_versions, machine_info, measure_arch
from nas.measure.profiling import sample_for_coverage


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "median_ms": statistics.median(values),
        "max_over_min": max(values) / min(values),
        "cv": statistics.pstdev(values) / statistics.mean(values),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default=DEFAULT_SPACE)
    parser.add_argument("--subnets", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between measurements")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.subnets < 2 or args.repeats < 2:
        parser.error("--subnets and --repeats must be >= 2")
    space = ss.get_space(args.space)
    archs = sample_for_coverage(space, np.random.default_rng(args.seed), args.subnets)
    configs = {"raw": MeasureConfig(anchored=False), "anchored": MeasureConfig()}
    measured: dict[str, list[list[float]]] = {name: [[] for _ in archs] for name in configs}
    for repeat in range(args.repeats):
        for index, arch in enumerate(archs):
            for name, config in configs.items():
                measured[name][index].append(measure_arch(space, arch, config).median_ms)
                time.sleep(args.pause)
        print(f"repeat {repeat + 1}/{args.repeats}", file=sys.stderr)
    rows: list[dict[str, Any]] = []
    for index, arch in enumerate(archs):
        raw, anchored = (_spread(measured[name][index]) for name in configs)
        rows.append(
            {
                "arch": arch.to_dict(),
                "macs": space.flops(arch),
                "raw": raw,
                "anchored": anchored,
                "anchored_over_raw_fastest": anchored["median_ms"] / min(measured["raw"][index]),
                "samples_ms": {name: measured[name][index] for name in configs},
            }
        )
    report = {
        "command": " ".join(["python", *sys.argv]),
        "space": space.name,
        "settings": {name: config.__dict__ for name, config in configs.items()},
        "pause_s": args.pause,
        "machine": {**machine_info(), "flags": cpu_flags()},
        "versions": library_versions(),
        "rows": rows,
    }
    out = Path(__file__).with_name("results") / f"anchoring-{space.name}.json"
    atomic_write_json(out, report)
    print(f"## repeatability of one measurement: {space.name}, {args.repeats} repeats")
    print(
        "| MACs | raw median ms | raw max/min | raw CV | anchored median ms | anchored max/min "
        "| anchored CV | anchored / raw fastest |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        raw, anchored = row["raw"], row["anchored"]
        print(
            f"| {row['macs'] / 1e6:.2f}M | {raw['median_ms']:.4f} | {raw['max_over_min']:.2f} | "
            f"{raw['cv']:.1%} | {anchored['median_ms']:.4f} | {anchored['max_over_min']:.2f} | "
            f"{anchored['cv']:.1%} | {row['anchored_over_raw_fastest']:.2f} |"
        )
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
