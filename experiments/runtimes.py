"""Which runtime and precision is fastest on this CPU: ONNX Runtime and OpenVINO, float32,
bfloat16 and int8, one layer at a time and whole subnets, measured side by side.

For every case (single convolutions of the shapes the default space uses, and whole subnets of
``--space``: the smallest, the largest and random ones) one float ONNX graph is exported and
quantized once (:func:`compress.quantize_onnx`: QDQ, per-channel weights, MinMax calibration on
random inputs). Each round then times every variant once, in turn, so that a slow period of the
shared machine hits all of them alike:

- ``ort-f32``: ONNX Runtime on the float graph;
- ``ort-int8``: ONNX Runtime on the QDQ graph;
- ``ov-f32``: OpenVINO on the float graph with its precision hint set to f32 (OpenVINO's own
  default on a CPU with bfloat16 instructions is bf16, not f32);
- ``ov-bf16``: OpenVINO on the float graph in bfloat16 (where the CPU has it);
- ``ov-int8``: OpenVINO on the QDQ graph (it runs the quantized operators in int8).

A variant's figure is the median of its round medians; ratios are against ``ort-f32`` (today's
path). The CPU model and its SIMD flags are recorded beside the figures: machines of this kind
differ.

Writes ``experiments/results/runtimes.json`` and prints Markdown.

    python experiments/runtimes.py                     # 1 thread, batch 1 and 8
    python experiments/runtimes.py --rounds 7 --subnets 5
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import search_spaces as ss
from compress import quantize_onnx
from nas.defaults import DEFAULT_SPACE
from nas.files import atomic_write_json
from nas.measure import (
    MeasureConfig,
    export_onnx,
    library_versions,
    machine_info,
    measure_latency,
)
from nas.supernet.static import build_network

OUT = Path("experiments/results/runtimes.json")
# name -> (input channels, output channels, kernel, groups, feature map size): the default
# space's shapes (28 px input, stride-2 stem: 14x14 and 7x7 maps).
LAYERS: dict[str, tuple[int, int, int, int, int]] = {
    "depthwise 7x7, 96 ch, 14x14": (96, 96, 7, 96, 14),
    "depthwise 3x3, 96 ch, 14x14": (96, 96, 3, 96, 14),
    "depthwise 7x7, 192 ch, 7x7": (192, 192, 7, 192, 7),
    "pointwise 1x1, 24 -> 96, 14x14": (24, 96, 1, 1, 14),
    "pointwise 1x1, 96 -> 24, 14x14": (96, 24, 1, 1, 14),
    "dense 3x3, 48 -> 48, 14x14 (fused block)": (48, 48, 3, 1, 14),
}
VARIANTS: dict[str, tuple[str, str]] = {  # name -> (runtime, graph)
    "ort-f32": ("onnxruntime", "float"),
    "ort-int8": ("onnxruntime", "int8"),
    "ov-f32": ("openvino", "float"),
    "ov-bf16": ("openvino-bf16", "float"),
    "ov-int8": ("openvino", "int8"),
}
SIMD_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def cpu_flags() -> list[str]:
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return [flag for flag in SIMD_FLAGS if flag in flags]
    return []


def layer(cin: int, cout: int, kernel: int, groups: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=kernel // 2, groups=groups, bias=True), nn.ReLU()
    ).eval()


def graphs(model: nn.Module, shape: tuple[int, ...]) -> dict[str, bytes]:
    """The float ONNX graph of ``model`` at ``shape`` (C, H, W), batch 1, and its QDQ form."""
    torch.manual_seed(0)
    example = torch.randn(1, *shape)
    float_graph = export_onnx(model, example)
    calibration = np.random.default_rng(0).standard_normal((64, *shape)).astype(np.float32)
    return {"float": float_graph, "int8": quantize_onnx(float_graph, calibration, batch_size=16)}


def measure_case(
    variants: dict[str, tuple[str, str]],
    model_graphs: dict[str, bytes],
    shape: tuple[int, int, int],
    batch: int,
    rounds: int,
    repeats: int,
) -> dict[str, Any]:
    """Round medians of every variant, the rounds alternating between variants."""
    per_round: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (runtime, graph) in variants.items():
            config = MeasureConfig(
                runtime=runtime, threads=1, batch_size=batch, warmup=5, repeats=repeats, rounds=1
            )
            per_round[name].append(measure_latency(model_graphs[graph], shape, config).median_ms)
    medians = {name: statistics.median(values) for name, values in per_round.items()}
    base = medians["ort-f32"]
    return {
        "median_ms": medians,
        "round_ms": per_round,
        "speed_vs_ort_f32": {name: base / value for name, value in medians.items()},
    }


def _cases(
    space: ss.Space, subnets: int
) -> list[tuple[str, Callable[[], nn.Module], tuple[int, int, int]]]:
    cases: list[tuple[str, Callable[[], nn.Module], tuple[int, int, int]]] = []
    for name, (cin, cout, kernel, groups, size) in LAYERS.items():
        cases.append(
            (name, lambda c=cin, o=cout, k=kernel, g=groups: layer(c, o, k, g), (cin, size, size))
        )
    rng = np.random.default_rng(0)
    archs = [("smallest", space.smallest()), ("largest", space.largest())]
    archs += [(f"random {i}", space.sample(rng)) for i in range(subnets)]
    for label, arch in archs:
        shape = (space.in_channels, arch.resolution, arch.resolution)
        flops = space.flops(arch)

        def build(a: ss.Arch = arch) -> nn.Module:
            torch.manual_seed(0)
            return build_network(space, a).eval()

        cases.append((f"subnet {label} ({flops / 1e6:.2f}M MACs)", build, shape))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--space", default=DEFAULT_SPACE)
    parser.add_argument("--batches", default="1,8", help="batch sizes, comma-separated")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per round")
    parser.add_argument("--subnets", type=int, default=3, help="random subnets besides the two")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    import openvino

    core = openvino.Core()
    variants = dict(VARIANTS)
    if "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        variants.pop("ov-bf16")
    space = ss.get_space(args.space)
    batches = [int(b) for b in args.batches.split(",")]
    report: dict[str, Any] = {
        "machine": {**machine_info(), "simd_flags": cpu_flags()},
        "libraries": library_versions(),
        "openvino_default_precision": str(core.get_property("CPU", "INFERENCE_PRECISION_HINT")),
        "settings": {
            "threads": 1,
            "batches": batches,
            "rounds": args.rounds,
            "repeats": args.repeats,
            "warmup": 5,
            "quantization": "QDQ, per-channel weights, MinMax on 64 random inputs",
            "space": args.space,
        },
        "variants": {name: {"runtime": rt, "graph": g} for name, (rt, g) in variants.items()},
        "cases": {},
    }
    for name, build, shape in _cases(space, args.subnets):
        model_graphs = graphs(build(), shape)
        for batch in batches:
            print(f"{name}, batch {batch}", file=sys.stderr, flush=True)
            report["cases"][f"{name}, batch {batch}"] = measure_case(
                variants, model_graphs, shape, batch, args.rounds, args.repeats
            )
        atomic_write_json(args.out, report)  # partial results survive a kill

    names = list(variants)
    print(f"CPU: {report['machine'].get('cpu')} ({', '.join(report['machine']['simd_flags'])})")
    print("| case | ort-f32 ms | " + " | ".join(f"{n} speed" for n in names[1:]) + " |")
    print("|---|---:|" + "---:|" * (len(names) - 1))
    for case, item in report["cases"].items():
        speeds = " | ".join(f"{item['speed_vs_ort_f32'][n]:.2f}x" for n in names[1:])
        print(f"| {case} | {item['median_ms']['ort-f32']:.4f} | {speeds} |")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
