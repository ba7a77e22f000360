"""Where lower precision pays on this CPU: ``quant-28`` subnets at larger inputs, and float32
with denormals flushed.

The forms of ``block_types.py`` (seed 0: the same subnets) at 28 px and, with their resolution
raised (the networks are fully convolutional; ``--resolutions``), at larger inputs, timed side
by side, alternating, against today's path (ONNX Runtime, inverted residuals, float32).
``--cases`` picks among:

- ``ort-f32``: today's path (always timed); ``ort-f32-ftz``: the same with denormals read and
  written as zero;
- ``ort-int8``: every stage int8 (QDQ), ONNX Runtime;
- ``ov-f32``: OpenVINO, precision hint f32; ``ov-f32-ftz``: the same with OpenVINO's denormals
  optimization (flush to zero);
- ``ov-bf16``: OpenVINO, hint bf16 (every operation in bfloat16), where the CPU has it;
- ``ov-int8``: the int8 graph on OpenVINO (f32 hint for what stays float);
- ``ov-fused-int8``: every stage fused and int8, OpenVINO; ``ort-fused-int8``: the same on
  ONNX Runtime.

Flushing denormals sets the floating-point mode of the thread that runs a one-thread
inference, and the cases timed beside share it: time an ``-ftz`` case in its own run, beside
``ort-f32`` alone. The weights are those the space's networks start with (seeded; no
supernet): latency only.

Writes ``experiments/results/precision_by_input-TAG.json`` (resumable per resolution and
subnet) and prints Markdown.

    OMP_NUM_THREADS=1 python experiments/precision_by_input.py --subnets 12 --batch 8
    OMP_NUM_THREADS=1 python experiments/precision_by_input.py --cases ort-f32,ov-f32-ftz
    OMP_NUM_THREADS=1 python experiments/precision_by_input.py --corner --resolutions 28
    OMP_NUM_THREADS=1 python experiments/precision_by_input.py --smallest --resolutions 20
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
import yaml
from block_types import form, subnets
from runtimes import cpu_flags

import search_spaces as ss
from nas.files import atomic_write_json
from nas.measure import library_versions, machine_info, time_callable
from nas.measure.precision import arch_graph
from nas.measure.timing import graph_runner, time_side_by_side

SPACE = "quant-28"
ROUNDS, REPEATS, WARMUP = 7, 20, 5
BASE = "ort-f32"


def _ort_ftz(graph: bytes, example: np.ndarray, threads: int) -> Callable[[], object]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda: session.run(None, {name: example})


def _ov_ftz(graph: bytes, example: np.ndarray, threads: int) -> Callable[[], object]:
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(
        core.read_model(model=graph, weights=b""),
        "CPU",
        {
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": "f32",
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            "CPU_DENORMALS_OPTIMIZATION": True,
        },
    )
    request = compiled.create_infer_request()
    request.set_input_tensor(ov.Tensor(np.ascontiguousarray(example), shared_memory=True))
    return lambda: request.infer()


def _space_with(resolutions: list[int]) -> ss.Space:
    """``quant-28`` with its resolution choices widened to ``resolutions``."""
    builtin = Path(ss.__file__).with_name("builtin") / f"{SPACE}.yaml"
    data = yaml.safe_load(builtin.read_text())
    data["resolution"] = sorted(set(data["resolution"]) | set(resolutions))
    data["name"] = f"{SPACE}-wide"
    return ss.space_from_dict(data)


CASES = (
    "ort-f32",
    "ort-f32-ftz",
    "ort-int8",
    "ov-f32",
    "ov-f32-ftz",
    "ov-int8",
    "ov-fused-int8",
    "ort-fused-int8",
    "ov-bf16",
)


def _runner(
    name: str, graphs: dict[str, bytes], example: np.ndarray, threads: int
) -> Callable[[], object]:
    graph = graphs[
        "fused-int8" if "fused" in name else "mbconv-int8" if "int8" in name else "mbconv-fp32"
    ]
    if name.endswith("ftz"):
        return (_ort_ftz if name.startswith("ort") else _ov_ftz)(graph, example, threads)
    runtime = (
        "onnxruntime"
        if name.startswith("ort")
        else "openvino-bf16"
        if name.endswith("bf16")
        else "openvino"
    )
    return graph_runner(runtime, graph, example, threads)


def _paired(
    space: ss.Space,
    forms: dict[str, ss.Arch],
    resolution: int,
    batch: int,
    threads: int,
    cases: list[str],
) -> dict[str, float]:
    """Median milliseconds of each of ``cases`` on one subnet, the rounds alternating. Flushing
    denormals sets the calling thread's floating-point mode, which one-thread inference shares:
    a ``-ftz`` case makes the cases timed beside it flush too (time them apart)."""
    shape = (batch, space.in_channels, resolution, resolution)
    example = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    graphs = {
        name: arch_graph(space, dataclasses.replace(forms[name], resolution=resolution))
        for name in ("mbconv-fp32", "mbconv-int8", "fused-int8")
    }
    runners = {name: _runner(name, graphs, example, threads) for name in cases}
    for run in runners.values():
        time_callable(run, warmup=WARMUP, repeats=1)
    return time_side_by_side(runners, rounds=ROUNDS, repeats=REPEATS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subnets", type=int, default=8)
    parser.add_argument("--resolutions", default="28,56,112")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", default="ort-f32,ort-int8,ov-f32,ov-int8,ov-fused-int8,ov-bf16")
    parser.add_argument(
        "--corner",
        action="store_true",
        help="time the space's corners (its largest subnet of each block type) instead",
    )
    parser.add_argument(
        "--smallest",
        action="store_true",
        help="time the space's smallest subnet instead (no network of the space runs faster "
        "than its fastest form)",
    )
    parser.add_argument("--tag", default="default")
    args = parser.parse_args()
    resolutions = [int(r) for r in args.resolutions.split(",")]
    cases = args.cases.split(",")
    if args.corner and args.smallest:
        parser.error("--corner and --smallest: choose one")
    if BASE not in cases or not set(cases) <= set(CASES):
        parser.error(f"--cases: a comma list of {', '.join(CASES)}, {BASE} among them")
    space = _space_with(resolutions)
    base = ss.get_space(SPACE)
    forms = subnets(base, np.random.default_rng(args.seed), args.subnets)
    if args.corner:  # the space's corners in place of random subnets (nas search measures them)
        corners = {
            ({s.block_type for s in a.stages}.pop(), {s.precision for s in a.stages}.pop()): a
            for a in ss.corner_family(base)
        }
        top = {
            "mbconv-fp32": corners["mbconv", "fp32"],
            "mbconv-int8": corners["mbconv", "int8"],
            "fused-int8": corners["fused", "int8"],
        }
        forms, args.subnets = [top], 1
    if args.smallest:
        small = base.smallest()
        forms = [
            {name: form(base, small, name) for name in ("mbconv-fp32", "mbconv-int8", "fused-int8")}
        ]
        args.subnets = 1
    out = Path(__file__).with_name("results") / f"precision_by_input-{args.tag}.json"
    report: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    report |= {
        "command": " ".join(["python", *sys.argv]),
        "machine": machine_info(),
        "cpu_flags": cpu_flags(),
        "versions": library_versions(),
        "threads": args.threads,
        "cases": cases,
        "batch": args.batch,
        "settings": {"rounds": ROUNDS, "repeats": REPEATS, "warmup": WARMUP},
    }
    report.setdefault("subnets_ms", {})
    for resolution in resolutions:
        rows = report["subnets_ms"].setdefault(str(resolution), [])
        for index in range(len(rows), args.subnets):
            print(f"{resolution} px: subnet {index}", file=sys.stderr)
            rows.append(_paired(space, forms[index], resolution, args.batch, args.threads, cases))
            atomic_write_json(out, report)
    report["speed_vs_today"] = {}
    for resolution, rows in report["subnets_ms"].items():
        base = np.array([row[BASE] for row in rows])
        report["speed_vs_today"][resolution] = {
            name: float(np.median(base / np.array([row[name] for row in rows]))) for name in rows[0]
        }
        report["speed_vs_today"][resolution]["today_ms_median"] = float(np.median(base))
    atomic_write_json(out, report)
    print(
        f"## Against ONNX Runtime float32 (median of {args.subnets} subnets), batch {args.batch}\n"
    )
    names = list(next(iter(report["subnets_ms"].values()))[0])
    print("| input | today ms | " + " | ".join(names) + " |")
    print("|---|---:|" + "---:|" * len(names))
    for resolution, speeds in report["speed_vs_today"].items():
        cells = " | ".join(f"{speeds[n]:.2f}x" for n in names)
        print(f"| {resolution} px | {speeds['today_ms_median']:.3f} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
