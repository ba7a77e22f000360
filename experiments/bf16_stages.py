"""bf16 per stage on OpenVINO: what it buys against float32 and int8, and how well it is predicted.

Space ``mbv3-28-fused`` with every stage free to run in fp32, bf16 or int8 (``--space`` may name
another). For ``--subnets`` random architectures, six forms of each, timed side by side in
rounds that alternate between them (untrained weights, 1 thread):

- ``ort-fp32``: every block an inverted residual in float32 on ONNX Runtime (today's path,
  the reference of every ratio);
- ``ov-fp32``: the same graph on OpenVINO with its precision hint at f32;
- ``ov-bf16``: every block in bf16 on OpenVINO (the stem and head in float32);
- ``ov-fused-fp32``: the first two stages fused (one dense kxk convolution), float32;
- ``ov-fused-bf16``: those fused stages in bf16, the rest float32;
- ``ov-fused-int8``: those fused stages in int8, the rest float32.

With ``--profile N``, N subnets of the space (precisions drawn at random) are profiled on
OpenVINO with their operators and the learned predictor and the lookup table are judged on a
held-out quarter (``nas.measure.latency.report``), as ``nas search --latency-predictor auto``
does.

Writes ``experiments/results/bf16_stages-TAG.json`` (resumable per subnet) and prints Markdown.

    OMP_NUM_THREADS=1 python experiments/bf16_stages.py --subnets 8 --profile 60
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
from nas.measure import MeasureConfig, library_versions, machine_info, time_callable
from nas.measure.latency import ProfileConfig, profile, report
from nas.measure.precision import arch_graph
from nas.measure.timing import graph_runner, time_side_by_side

ROUNDS, REPEATS, WARMUP = 7, 30, 10
FORMS = ("ort-fp32", "ov-fp32", "ov-bf16", "ov-fused-fp32", "ov-fused-bf16", "ov-fused-int8")


def with_bf16(space: ss.Space) -> ss.Space:
    """``space`` with every stage free to run in fp32, bf16 or int8."""
    choice = ss.Choice(("fp32", "bf16", "int8"))
    stages = tuple(dataclasses.replace(s, precision=choice) for s in space.stages)
    return dataclasses.replace(space, name=f"{space.name}-bf16", stages=stages)


def form(space: ss.Space, arch: ss.Arch, name: str) -> ss.Arch:
    """``arch`` in the form ``name`` of :data:`FORMS`."""
    fused = "fused" in name
    precision = name.rsplit("-", 1)[1]
    stages = []
    for spec, stage in zip(space.stages, arch.stages, strict=False):
        early = "fused" in spec.block_type.values
        stages.append(
            dataclasses.replace(
                stage,
                block_type="fused" if fused and early else "mbconv",
                precision=precision if (early or not fused) else "fp32",
            )
        )
    return dataclasses.replace(arch, stages=tuple(stages))


def timed(space: ss.Space, arch: ss.Arch, batch: int) -> dict[str, float]:
    """Median milliseconds of each form of ``arch``, the rounds alternating between them."""
    runners = {}
    for name in FORMS:
        variant = form(space, arch, name)
        shape = (space.in_channels, variant.resolution, variant.resolution)
        example = np.random.default_rng(0).standard_normal((batch, *shape)).astype(np.float32)
        runtime = "onnxruntime" if name.startswith("ort") else "openvino"
        runners[name] = graph_runner(runtime, arch_graph(space, variant), example, 1)
        time_callable(runners[name], warmup=WARMUP, repeats=1)
    return time_side_by_side(runners, rounds=ROUNDS, repeats=REPEATS)


def _summary(rows: list[dict[str, float]], over: str, name: str) -> dict[str, float]:
    ratios = [row[over] / row[name] for row in rows]
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mbv3-28-fused")
    parser.add_argument("--subnets", type=int, default=8)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--profile", type=int, default=0, help="subnets profiled for predictors")
    parser.add_argument("--work", default="runs/bf16-stages", help="profile directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="default")
    args = parser.parse_args()
    if args.subnets < 0 or args.profile < 0 or (0 < args.profile < 8):
        parser.error("--subnets must be >= 0 and --profile 0 or >= 8")
    space = with_bf16(ss.get_space(args.space))
    out = Path(__file__).with_name("results") / f"bf16_stages-{args.tag}.json"
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    result.update(
        {
            "command": " ".join(["python", *sys.argv]),
            "space": space.name,
            "machine": machine_info() | {"cpu_flags": cpu_flags()},
            "versions": library_versions(),
            "settings": {"threads": 1, "rounds": ROUNDS, "repeats": REPEATS, "warmup": WARMUP},
        }
    )
    rng = np.random.default_rng(args.seed)
    archs = [space.sample(rng) for _ in range(args.subnets)]
    timings = result.setdefault("timings", {})
    for batch in [int(b) for b in args.batches.split(",")]:
        rows = timings.setdefault(f"b{batch}", {}).setdefault("subnets_ms", [])
        for index in range(len(rows), len(archs)):
            print(f"batch {batch}: subnet {index}", file=sys.stderr)
            rows.append(timed(space, archs[index], batch))
            atomic_write_json(out, result)
        part = timings[f"b{batch}"]
        part["speed_vs_ort_fp32"] = {n: _summary(rows, "ort-fp32", n) for n in FORMS}
        part["against_own_float"] = {
            "ov-bf16 / ov-fp32": _summary(rows, "ov-fp32", "ov-bf16"),
            "ov-fused-bf16 / ov-fused-fp32": _summary(rows, "ov-fused-fp32", "ov-fused-bf16"),
            "ov-fused-int8 / ov-fused-fp32": _summary(rows, "ov-fused-fp32", "ov-fused-int8"),
        }
        atomic_write_json(out, result)
    if args.profile:
        measure = MeasureConfig(runtime="openvino")
        folder = Path(args.work)
        profile(
            space,
            ProfileConfig(measure=measure, subnets=args.profile, seed=args.seed, table=True),
            folder,
        )
        result["predictors"] = {
            "subnets": args.profile,
            "runtime": "openvino",
            "held_out": report(space, folder, kinds=("learned", "table"), seed=args.seed),
        }
        atomic_write_json(out, result)

    print(f"## bf16 per stage on {result['machine'].get('cpu')} ({', '.join(cpu_flags())})\n")
    print("| batch | " + " | ".join(FORMS[1:]) + " | bf16 / own f32: all, fused | int8 / own |")
    print("|---:|" + "---:|" * (len(FORMS) + 1))
    for key, part in timings.items():
        speed = part["speed_vs_ort_fp32"]
        own = part["against_own_float"]
        cells = [f"{speed[n]['median']:.2f}x" for n in FORMS[1:]]
        cells.append(
            f"{own['ov-bf16 / ov-fp32']['median']:.2f}x, "
            f"{own['ov-fused-bf16 / ov-fused-fp32']['median']:.2f}x"
        )
        cells.append(f"{own['ov-fused-int8 / ov-fused-fp32']['median']:.2f}x")
        print(f"| {key[1:]} | " + " | ".join(cells) + " |")
    if "predictors" in result:
        for kind, scores in result["predictors"]["held_out"].items():
            print(
                f"\n{kind}: within 10% {scores['within_tolerance']:.0%}, "
                f"mean error {scores['mean_abs_rel_error']:.1%}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
