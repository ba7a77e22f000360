"""Which convolutions int8 speeds up on ONNX Runtime: one layer at a time, float32 vs int8.

Each case is a single convolution + ReLU (the shapes of the default space's largest subnet at
32 px: 144 channels at 16x16 after a stride-2 stem), exported to ONNX, quantized with
:func:`compress.quantize_onnx` (QDQ, per-channel weights, MinMax calibration on random data) and
timed in alternating rounds with :func:`nas.measure.measure_latency`; the median of the round
medians is reported. It explains the subnet figure in ``experiments/compression.py``: a
MobileNetV3-style subnet spends most of its time in depthwise convolutions.

Writes ``experiments/results/int8_operators.json`` and prints Markdown.

    python experiments/int8_operators.py                 # 1 thread, batch 8
    python experiments/int8_operators.py --batch 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from compress import quantize_onnx
from nas.files import atomic_write_json
from nas.measure import MeasureConfig, export_onnx, library_versions, machine_info, measure_latency

# name -> (input channels, output channels, kernel, groups, feature map size)
CASES: dict[str, tuple[int, int, int, int, int]] = {
    "depthwise 7x7, 144 ch": (144, 144, 7, 144, 16),
    "depthwise 5x5, 144 ch": (144, 144, 5, 144, 16),
    "depthwise 3x3, 144 ch": (144, 144, 3, 144, 16),
    "pointwise 1x1, 24 -> 144": (24, 144, 1, 1, 16),
    "pointwise 1x1, 144 -> 24": (144, 24, 1, 1, 16),
    "dense 3x3, 64 -> 64": (64, 64, 3, 1, 16),
}


def _layer(in_channels: int, out_channels: int, kernel: int, groups: int) -> nn.Module:
    conv = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, groups=groups)
    return nn.Sequential(conv, nn.ReLU()).eval()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    config = MeasureConfig(threads=args.threads, batch_size=args.batch, repeats=args.repeats)
    rows = []
    for name, (cin, cout, kernel, groups, size) in CASES.items():
        shape = (cin, size, size)
        graph = export_onnx(_layer(cin, cout, kernel, groups), torch.randn(1, *shape))
        calibration = rng.standard_normal((64, *shape)).astype(np.float32)
        quantized = quantize_onnx(graph, calibration, batch_size=32)
        medians: dict[str, list[float]] = {"float32": [], "int8": []}
        for _ in range(args.rounds):
            medians["float32"].append(measure_latency(graph, shape, config).median_ms)
            medians["int8"].append(measure_latency(quantized, shape, config).median_ms)
        float_ms, int8_ms = (statistics.median(medians[k]) for k in ("float32", "int8"))
        rows.append(
            {
                "layer": name,
                "input": [args.batch, *shape],
                "float32_ms": float_ms,
                "int8_ms": int8_ms,
                "speedup": float_ms / int8_ms,
                "round_medians_ms": medians,
            }
        )
    report = {
        "config": {"threads": args.threads, "batch": args.batch, "rounds": args.rounds},
        "machine": machine_info(),
        "versions": library_versions(),
        "layers": rows,
    }
    out = Path(__file__).with_name("results") / "int8_operators.json"
    out.parent.mkdir(exist_ok=True)
    atomic_write_json(out, report)
    print(
        f"## int8 vs float32 per layer: ONNX Runtime, {args.threads} thread(s), batch {args.batch}"
    )
    print("| layer | float32 ms | int8 ms | speed-up |\n|---|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['layer']} | {row['float32_ms']:.3f} | {row['int8_ms']:.3f} | "
            f"{row['speedup']:.2f}x |"
        )
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
