"""int8 calibration without data, and QAT where post-training quantization loses: measured.

For subnets of a trained supernet (the largest, the smallest and N random ones; batch norm
recalibrated as a search does), the float ONNX graph and its int8 QDQ forms are scored on the
whole test split of the data set:

- PTQ calibrated on training images (what ``nas quantize`` does by default; per-channel
  weights, min-max ranges), and the same with one weight scale per tensor (``--per-tensor``),
  which loses more on depthwise convolutions;
- PTQ calibrated on images synthesized from the model's batch norm statistics (``nas quantize
  --calib batch-norm``, ZeroQ-style, data-free), and on standard-normal noise of the same count
  (the naive data-free baseline);
- quantization-aware fine-tuning (``nas quantize --qat-epochs``): fake quantization,
  distilled from the float subnet, ``--qat-epochs`` epochs of ``--qat-images`` training images.

Reports each form's loss against float (mean and worst), the cost of synthesizing images and of
QAT, and writes ``experiments/results/calibration-<tag>.json``. Resumable: each subnet goes into
the results file when measured; a rerun skips it.

    OMP_NUM_THREADS=1 python experiments/calibration.py --supernet runs/supernet-mbv3-28
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from compress import evaluate_onnx, export_qat_onnx, quantize_onnx
from compress.data_free import batch_norm_images
from compress.quantization import finetune_qat
from nas.data import Dataset, load_dataset
from nas.defaults import DEFAULT_DATA
from nas.files import atomic_write_json
from nas.measure import export_onnx, library_versions, machine_info
from nas.train import load_supernet, recalibrated

FORMS = ("ptq_train", "ptq_train_per_tensor", "ptq_batch_norm", "ptq_noise", "qat")


def measure(supernet: Any, arch: Any, dataset: Dataset, args: argparse.Namespace) -> dict[str, Any]:
    """Test accuracy of the float subnet and of each int8 form, and what each form cost."""
    network = recalibrated(supernet, arch, dataset, calibration_size=2000, seed=args.seed)
    example = torch.as_tensor(dataset.x_train[:1])
    graph = export_onnx(network, example)
    shape = dataset.image_shape
    count = args.calib_images

    def score(model: bytes) -> float:
        return evaluate_onnx(model, dataset.x_test, dataset.y_test)

    row: dict[str, Any] = {"float": score(graph)}
    train = dataset.x_train[:count]
    row["ptq_train"] = score(quantize_onnx(graph, train, batch_size=32))
    row["ptq_train_per_tensor"] = score(
        quantize_onnx(graph, train, batch_size=32, per_channel=False)
    )
    start = time.perf_counter()
    synthesized = batch_norm_images(
        network, shape, count=count, steps=args.bn_steps, seed=args.seed
    )
    row["batch_norm_seconds"] = time.perf_counter() - start
    row["ptq_batch_norm"] = score(quantize_onnx(graph, synthesized, batch_size=32))
    noise = np.random.default_rng(args.seed).standard_normal(synthesized.shape, dtype=np.float32)
    row["ptq_noise"] = score(quantize_onnx(graph, noise, batch_size=32))
    subset = dataclasses.replace(
        dataset,
        x_train=dataset.x_train[: args.qat_images],
        y_train=dataset.y_train[: args.qat_images],
    )
    start = time.perf_counter()
    prepared = finetune_qat(network, subset, epochs=args.qat_epochs, seed=args.seed)
    row["qat_seconds"] = time.perf_counter() - start
    row["qat"] = score(export_qat_onnx(prepared, example))
    return row


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per form: mean and worst loss against float in points, subnets within 1 point."""
    out: dict[str, Any] = {"subnets": len(rows)}
    for form in FORMS:
        losses = [100 * (r["float"] - r[form]) for r in rows]
        out[form] = {
            "mean_loss_points": statistics.fmean(losses),
            "worst_loss_points": max(losses),
            "within_1_point": sum(loss <= 1.0 for loss in losses),
        }
    out["batch_norm_seconds_median"] = statistics.median(r["batch_norm_seconds"] for r in rows)
    out["qat_seconds_median"] = statistics.median(r["qat_seconds"] for r in rows)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supernet", default="runs/supernet-mbv3-28")
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--subnets", type=int, default=6, help="random subnets besides the ends")
    parser.add_argument("--calib-images", type=int, default=256)
    parser.add_argument("--bn-steps", type=int, default=100)
    parser.add_argument("--qat-epochs", type=int, default=1)
    parser.add_argument("--qat-images", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="default")
    parser.add_argument("--out", help="results JSON (default: results/calibration-<tag>.json)")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    supernet, checkpoint = load_supernet(args.supernet)
    space = checkpoint.space
    rng = np.random.default_rng(args.seed)
    archs = {"largest": space.largest(), "smallest": space.smallest()}
    archs.update({f"random-{i}": space.sample(rng) for i in range(args.subnets)})
    out = (
        Path(args.out)
        if args.out
        else Path(__file__).with_name("results") / f"calibration-{args.tag}.json"
    )
    done: dict[str, Any] = {}
    if out.exists():
        done = {r["name"]: r for r in json.loads(out.read_text()).get("rows", [])}
    datasets: dict[int, Dataset] = {}
    rows: list[dict[str, Any]] = []
    for name, arch in archs.items():
        if name in done and done[name]["arch"] == arch.to_dict():
            rows.append(done[name])
            continue
        if arch.resolution not in datasets:
            datasets[arch.resolution] = load_dataset(
                args.data, resolution=arch.resolution, seed=args.seed
            )
        row = {"name": name, "arch": arch.to_dict(), "macs": space.flops(arch)}
        row.update(measure(supernet, arch, datasets[arch.resolution], args))
        rows.append(row)
        print(
            f"{name}: {row['macs'] / 1e6:.2f}M MACs, float {row['float']:.2%}, "
            + ", ".join(f"{form} {row[form]:.2%}" for form in FORMS),
            file=sys.stderr,
        )
        result = {
            "command": " ".join(sys.argv),
            "supernet": args.supernet,
            "space": space.name,
            "data": args.data,
            "settings": {
                key: getattr(args, key)
                for key in ("calib_images", "bn_steps", "qat_epochs", "qat_images", "seed")
            }
            | {"threads": torch.get_num_threads(), "calibration": "minmax, batch 32"},
            "machine": machine_info(),
            "versions": library_versions(),
            "rows": rows,
            "summary": summarise(rows),
        }
        out.parent.mkdir(exist_ok=True)
        atomic_write_json(out, result)

    summary = summarise(rows)
    print(f"## int8 calibration and QAT: {space.name} on {args.data}, {len(rows)} subnets")
    print("| MACs | float | " + " | ".join(FORMS) + " |")
    print("|---:|---:|" + "---:|" * len(FORMS))
    for row in rows:
        cells = " | ".join(f"{row[form]:.2%}" for form in FORMS)
        print(f"| {row['macs'] / 1e6:.2f}M | {row['float']:.2%} | {cells} |")
    for form in FORMS:
        s = summary[form]
        print(
            f"- {form}: mean loss {s['mean_loss_points']:+.2f} points, worst "
            f"{s['worst_loss_points']:+.2f}, within 1 point {s['within_1_point']}/{len(rows)}"
        )
    print(
        f"- cost: batch-norm images {summary['batch_norm_seconds_median']:.1f} s, QAT "
        f"{summary['qat_seconds_median']:.1f} s (medians per subnet)"
    )
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
