"""What the activation and squeeze-excitation cost on this CPU, against int8, per runtime.

Before a space makes the activation (hard-swish or ReLU) or squeeze-excitation a searchable
choice, this measures what each is worth in latency. Space ``mbv3-28-int8`` and three variants
built from it that differ only there: every activation ReLU; squeeze-excitation off; both.
For ``--subnets`` random architectures, each variant is timed in fp32 and with every stage int8
(ONNX QDQ, as ``nas search`` deploys int8 stages), the eight forms of one architecture in rounds
that alternate between them, so that a slower spell of this shared machine slows each alike.
Untrained weights: latency only. Reported: each form's speed against the space as it is in fp32
(median and range over the subnets), per runtime and batch.

Writes ``experiments/results/activation_cost.json`` and prints Markdown; resumable per subnet.

    OMP_NUM_THREADS=1 python experiments/activation_cost.py --subnets 8
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
from runtimes import cpu_flags

import search_spaces as ss
from nas.files import atomic_write_json
from nas.measure import library_versions, machine_info, time_callable
from nas.measure.precision import arch_graph
from nas.measure.timing import graph_runner, time_side_by_side

ROUNDS, REPEATS, WARMUP = 5, 20, 5
VARIANTS = ("hswish-se", "relu-se", "hswish", "relu")  # as the space is first
PRECISIONS = ("fp32", "int8")


def variants(space: ss.Space) -> dict[str, ss.Space]:
    """``space`` and its variants with every activation ReLU and/or squeeze-excitation off."""

    def variant(name: str, relu: bool, se: bool) -> ss.Space:
        stages = tuple(
            dataclasses.replace(
                stage,
                activation="relu" if relu else stage.activation,
                se=stage.se if se else False,
            )
            for stage in space.stages
        )
        return dataclasses.replace(
            space,
            name=f"{space.name}-{name}",
            stem=dataclasses.replace(space.stem, activation="relu") if relu else space.stem,
            head=dataclasses.replace(space.head, activation="relu") if relu else space.head,
            stages=stages,
        )

    return {
        "hswish-se": space,
        "relu-se": variant("relu-se", True, True),
        "hswish": variant("hswish", False, False),
        "relu": variant("relu", True, False),
    }


def _every_stage(arch: ss.Arch, precision: str) -> ss.Arch:
    stages = tuple(dataclasses.replace(s, precision=precision) for s in arch.stages)
    return dataclasses.replace(arch, stages=stages)


def paired(
    spaces: dict[str, ss.Space], arch: ss.Arch, runtime: str, batch: int
) -> dict[str, float]:
    """Median milliseconds of the eight forms of ``arch``, timed in alternating rounds."""
    shape = (1, arch.resolution, arch.resolution)
    example = np.random.default_rng(0).standard_normal((batch, *shape)).astype(np.float32)
    runners = {}
    for variant, space in spaces.items():
        for precision in PRECISIONS:
            graph = arch_graph(space, _every_stage(arch, precision))
            run = graph_runner(runtime, graph, example, 1)
            time_callable(run, warmup=WARMUP, repeats=1)
            runners[f"{variant}-{precision}"] = run
    return time_side_by_side(runners, rounds=ROUNDS, repeats=REPEATS)


def speeds(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per form: the base form's time over its time (above 1 is faster), median and range."""
    out = {}
    for name in rows[0]:
        ratios = [row["hswish-se-fp32"] / row[name] for row in rows]
        out[name] = {
            "median": statistics.median(ratios),
            "min": min(ratios),
            "max": max(ratios),
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mbv3-28-int8")
    parser.add_argument("--subnets", type=int, default=8)
    parser.add_argument("--runtimes", default="onnxruntime,openvino")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="results JSON (default: results/activation_cost.json)")
    args = parser.parse_args()

    space = ss.get_space(args.space)
    spaces = variants(space)
    rng = np.random.default_rng(args.seed)
    archs = [space.sample(rng) for _ in range(args.subnets)]
    out = Path(args.out or Path(__file__).with_name("results") / "activation_cost.json")
    report: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    report.update(
        command=" ".join(sys.argv),
        space=space.name,
        settings={"threads": 1, "rounds": ROUNDS, "repeats": REPEATS, "warmup": WARMUP},
        machine=machine_info() | {"cpu_flags": cpu_flags()},
        versions=library_versions(),
    )
    parts = report.setdefault("parts", {})
    for runtime in args.runtimes.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            part = parts.setdefault(f"{runtime}-b{batch}", {"subnets_ms": []})
            rows = part["subnets_ms"]
            for index in range(len(rows), len(archs)):
                print(f"{runtime} batch {batch}: subnet {index}", file=sys.stderr)
                rows.append(paired(spaces, archs[index], runtime, batch))
                part["speed_vs_hswish_se_fp32"] = speeds(rows)
                out.parent.mkdir(exist_ok=True)
                atomic_write_json(out, report)

    names = [f"{v}-{p}" for v in VARIANTS for p in PRECISIONS]
    print(f"## speed against {space.name} as it is (hard-swish, squeeze-excitation), fp32")
    print("| runtime, batch | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for key, part in parts.items():
        speed = part["speed_vs_hswish_se_fp32"]
        print(f"| {key} | " + " | ".join(f"{speed[n]['median']:.2f}x" for n in names) + " |")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
