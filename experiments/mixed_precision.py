"""Subnets whose stages run in int8: how fast, how accurate, and how well the latency table
predicts them, on this CPU.

Space ``mbv3-28-int8`` (the default space, every stage free to run in fp32 or int8). For
``--subnets`` random subnets, three forms each: all stages fp32, all int8, and a random mix.

- Latency, per runtime in ``--runtimes``: every form measured whole
  (:func:`nas.measure.profiling.profile_latency`, its int8 stages quantized in QDQ form) and
  measured again in a second pass (the noise floor: how often a second measurement of the same
  subnet lands within 10% of the first); the latency lookup table (operators timed alone, int8
  blocks with their quantize/dequantize, boundaries between int8 blocks subtracted) is
  calibrated on the first half of the subnets and judged on the second half: share within 10%
  of the first measurement, fp32 and mixed forms apart. Also the int8/fp32 speed ratio.
- Accuracy, with ``--supernet`` (an mbv3-28 checkpoint: the int8 space has the same weights):
  on ``--images`` test images, the float subnet (batch norm recalibrated), its int8 and mixed
  forms simulated in torch (:func:`nas.supernet.fake_quant.simulate_int8`, what the search's
  accuracy predictor learns from) and deployed for real (ONNX Runtime QDQ graph, calibrated on
  the same 500 training images).

Writes ``experiments/results/mixed_precision-TAG.json`` and prints Markdown.

    python experiments/mixed_precision.py --supernet runs/supernet-mbv3-28 --subnets 8
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
from runtimes import cpu_flags

import search_spaces as ss
from compress.quantization import evaluate_onnx
from nas.data import load_dataset, resize_images
from nas.defaults import DEFAULT_DATA
from nas.files import atomic_write_json
from nas.measure import MeasureConfig, library_versions, machine_info
from nas.measure.precision import arch_graph, float_arch
from nas.measure.profiling import profile_blocks, profile_latency
from nas.predictors import LatencyTable
from nas.supernet import Supernet
from nas.train import accuracy, load_supernet, recalibrated
from nas.train.evaluate import calibration_images

SPACE = "mbv3-28-int8"


def forms(space: ss.Space, rng: np.random.Generator, count: int) -> list[dict[str, ss.Arch]]:
    """``count`` random subnets, each as fp32, int8 and a random mix (at least one of each)."""
    result = []
    for _ in range(count):
        arch = float_arch(space.sample(rng))
        mix = rng.permutation([i % 2 == 0 for i in range(arch.num_stages)])
        result.append(
            {
                "fp32": arch,
                "int8": _with(arch, [True] * arch.num_stages),
                "mixed": _with(arch, list(mix)),
            }
        )
    return result


def _with(arch: ss.Arch, int8: list[bool]) -> ss.Arch:
    stages = tuple(
        dataclasses.replace(stage, precision="int8" if flag else "fp32")
        for stage, flag in zip(arch.stages, int8, strict=True)
    )
    return dataclasses.replace(arch, stages=stages)


def _within(predicted: np.ndarray, true: np.ndarray, tolerance: float = 0.10) -> float:
    return float(np.mean(np.abs(predicted - true) <= tolerance * true))


def latency(
    space: ss.Space, subnets: list[dict[str, ss.Arch]], runtime: str, work: Path, threads: int
) -> dict[str, Any]:
    config = MeasureConfig(runtime=runtime, threads=threads, batch_size=1)
    archs = [form for subnet in subnets for form in subnet.values()]
    print(f"{runtime}: timing the operators of {len(archs)} subnets", file=sys.stderr)
    records = profile_blocks(space, config, work / f"blocks-{runtime}.jsonl", archs=archs)
    first = profile_latency(space, archs, config, work / f"first-{runtime}.jsonl")
    second = profile_latency(space, archs, config, work / f"second-{runtime}.jsonl")
    measured = np.array([r.median_ms for r in first])
    again = np.array([r.median_ms for r in second])
    half = 3 * (len(subnets) // 2)  # the forms of the first half of the subnets
    table = LatencyTable(space, records).fit(archs[:half], measured[:half])
    predicted = table.predict(archs[half:])
    kinds = np.array([kind for subnet in subnets for kind in subnet])[half:]
    held_out = measured[half:]
    per_kind = {
        kind: {
            "within_10pct": _within(predicted[kinds == kind], held_out[kinds == kind]),
            "noise_floor_within_10pct": _within(
                again[half:][kinds == kind], held_out[kinds == kind]
            ),
        }
        for kind in ("fp32", "int8", "mixed")
    }
    by_form = measured.reshape(len(subnets), 3)
    return {
        "settings": dataclasses.asdict(config),
        "subnets_ms": [
            {"fp32": float(row[0]), "int8": float(row[1]), "mixed": float(row[2])}
            for row in by_form
        ],
        "int8_speedup_median": float(np.median(by_form[:, 0] / by_form[:, 1])),
        "int8_speedup_range": [
            float(np.min(by_form[:, 0] / by_form[:, 1])),
            float(np.max(by_form[:, 0] / by_form[:, 1])),
        ],
        "mixed_speedup_median": float(np.median(by_form[:, 0] / by_form[:, 2])),
        "table_held_out_within_10pct": _within(predicted, held_out),
        "noise_floor_within_10pct": _within(again[half:], held_out),
        "per_form": per_kind,
        "table_intercept_ms": table.intercept,
        "table_scale": table.scale,
    }


def accuracies(
    space: ss.Space, subnets: list[dict[str, ss.Arch]], supernet_dir: Path, images: int
) -> list[dict[str, Any]]:
    trained, _ = load_supernet(supernet_dir)
    supernet = Supernet(space)
    supernet.load_state_dict(trained.state_dict())
    supernet.eval()
    dataset = load_dataset(DEFAULT_DATA, resolution=28, seed=0)
    rows = []
    for index, subnet in enumerate(subnets):
        arch = subnet["fp32"]
        x = resize_images(dataset.x_test[:images], arch.resolution)
        y = dataset.y_test[:images]
        float_net = recalibrated(supernet, arch, dataset).eval()
        calibration = calibration_images(dataset, arch.resolution, 500)
        row: dict[str, Any] = {"arch": arch.to_dict(), "flops": space.flops(arch)}
        row["fp32"] = accuracy(float_net, x, y)
        for kind in ("int8", "mixed"):
            form = subnet[kind]
            row[f"{kind}_stages"] = [s.precision for s in form.stages]
            row[f"{kind}_simulated"] = accuracy(recalibrated(supernet, form, dataset), x, y)
            deployed = arch_graph(space, form, float_net, calibration)
            row[f"{kind}_deployed"] = evaluate_onnx(deployed, x, y)
            row[f"{kind}_weight_bytes"] = space.weight_bytes(form)
        row["fp32_weight_bytes"] = space.weight_bytes(arch)
        print(
            f"subnet {index}: fp32 {row['fp32']:.4f}, int8 simulated {row['int8_simulated']:.4f}"
            f" deployed {row['int8_deployed']:.4f}, mixed simulated {row['mixed_simulated']:.4f}"
            f" deployed {row['mixed_deployed']:.4f}",
            file=sys.stderr,
        )
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supernet", help="an mbv3-28 supernet checkpoint (accuracy part)")
    parser.add_argument("--subnets", type=int, default=8)
    parser.add_argument("--runtimes", default="onnxruntime,openvino")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--images", type=int, default=10000, help="test images per accuracy")
    parser.add_argument("--work", default="runs/mixed-precision", help="measurement files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="default")
    args = parser.parse_args()
    if args.subnets < 2:
        parser.error("--subnets must be >= 2")
    torch.set_num_threads(args.threads)
    space = ss.get_space(SPACE)
    subnets = forms(space, np.random.default_rng(args.seed), args.subnets)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out = Path(__file__).with_name("results") / f"mixed_precision-{args.tag}.json"
    report: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    report.update(
        {
            "command": " ".join(["python", *sys.argv]),
            "space": SPACE,
            "machine": machine_info(),
            "cpu_flags": cpu_flags(),
            "versions": library_versions(),
            "threads": args.threads,
        }
    )
    report.setdefault("latency", {})
    for runtime in args.runtimes.split(","):
        if runtime not in report["latency"]:
            report["latency"][runtime] = latency(space, subnets, runtime, work, args.threads)
            atomic_write_json(out, report)
    if args.supernet and "accuracy" not in report:
        report["supernet"] = args.supernet
        report["accuracy"] = accuracies(space, subnets, Path(args.supernet), args.images)
        atomic_write_json(out, report)

    print(
        f"## Mixed precision on {report['machine'].get('cpu')} ({', '.join(report['cpu_flags'])})\n"
    )
    print(
        "| runtime | int8 / fp32 speed, median (range) | mixed / fp32 "
        "| table within 10%, fp32 / int8 / mixed | noise floor |"
    )
    print("|---|---|---|---|---|")
    for runtime, part in report["latency"].items():
        forms_ = part["per_form"]
        low, high = part["int8_speedup_range"]
        print(
            f"| {runtime} | {part['int8_speedup_median']:.2f}x ({low:.2f}-{high:.2f}) | "
            f"{part['mixed_speedup_median']:.2f}x | "
            + " / ".join(f"{forms_[k]['within_10pct']:.0%}" for k in ("fp32", "int8", "mixed"))
            + f" | {part['noise_floor_within_10pct']:.0%} |"
        )
    if "accuracy" in report:
        rows = report["accuracy"]
        print(
            "\n| subnet MACs | fp32 | int8 simulated | int8 deployed "
            "| mixed simulated | mixed deployed |"
        )
        print("|---:|---:|---:|---:|---:|---:|")
        for row in rows:
            print(
                f"| {row['flops'] / 1e6:.2f}M | {row['fp32']:.2%} | {row['int8_simulated']:.2%} | "
                f"{row['int8_deployed']:.2%} | {row['mixed_simulated']:.2%} | "
                f"{row['mixed_deployed']:.2%} |"
            )
        gaps = [
            abs(r[f"{k}_simulated"] - r[f"{k}_deployed"]) for r in rows for k in ("int8", "mixed")
        ]
        losses = [r["fp32"] - r["int8_deployed"] for r in rows]
        print(
            f"\nsimulated vs deployed: mean |gap| {100 * statistics.mean(gaps):.2f} points, "
            f"max {100 * max(gaps):.2f}; int8 deployed loses {100 * statistics.median(losses):.2f}"
            f" points (median) against fp32"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
