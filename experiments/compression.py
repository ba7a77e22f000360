"""Compression figures, side by side in one run: channel pruning, int8 PTQ and distillation.

Two networks are trained on the digits at 32 px: a ResNet-18-style CIFAR-sized network
(3x3 stem, four stages of two basic blocks, widths w/2w/4w/8w) and a MobileNetV2-style one
(inverted residuals with depthwise convolutions). Then:

1. Pruning: 50% of the channels of each (torch-pruning, l2 importance, classifier kept),
   fine-tuned with distillation from the unpruned network: measured ONNX Runtime speed-up
   (goal >= 1.8x for the ResNet-style), ONNX size reduction, and accuracy drop (goal <= 1
   point).
2. int8 post-training static quantization (QDQ, per-channel, min-max calibration) of the
   ResNet-style network and of the subnet the newest `nas search` run chose
   (``--search-run``): speed-up (goal >= 1.5x), accuracy drop (goal <= 1 point), size (goal
   about 4x smaller).
3. Distillation: a half-width ResNet-style student trained from scratch for the same epochs
   with and without the teacher.

Latency: ONNX Runtime, ``--threads`` threads, batch ``--batch``, after warm-up; the models
being compared are measured in alternating rounds and the median of the round medians is
reported. Writes JSON (settings, machine, versions, every figure) and prints Markdown.
The defaults take about 12 minutes on 2 cores (with another job beside them); a smoke run:

    python experiments/compression.py --resolution 16 --width 8 --epochs 1 \
        --finetune-epochs 1 --student-epochs 1 --train-limit 200 --rounds 1 --repeats 5 \
        --warmup 1 --out /tmp/compression-smoke.json
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compress import (
    count_flops,
    count_params,
    evaluate_onnx,
    prune,
    quantize_onnx,
    train_student,
)
from nas.data import Dataset, load_dataset
from nas.files import atomic_write_json
from nas.measure import (
    MeasureConfig,
    export_onnx,
    library_versions,
    machine_info,
    measure_latency,
)
from nas.train import accuracy, train_network

# ---------------------------------------------------------------------------------- models


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18Style(nn.Module):
    """ResNet-18 in its CIFAR layout (3x3 stem, no max-pool), base width ``width``."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 32) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        channels = width
        for stage, stride in enumerate((1, 2, 2, 2)):
            out = width * 2**stage
            layers += [BasicBlock(channels, out, stride), BasicBlock(out, out, 1)]
            channels = out
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.layers(self.stem(x)).mean(dim=(2, 3)))


class InvertedResidual(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = in_channels * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [
                nn.Conv2d(in_channels, hidden, 1, bias=False),
                nn.BatchNorm2d(hidden),
                nn.ReLU6(inplace=True),
            ]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.residual else out


class MobileNetV2Style(nn.Module):
    """MobileNetV2's block layout for small images (stride-1 stem), scaled by ``width_mult``."""

    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1))

    def __init__(self, in_channels: int, num_classes: int, width_mult: float = 0.5) -> None:
        super().__init__()

        def scaled(channels: int) -> int:
            return max(8, int(channels * width_mult + 4) // 8 * 8)

        channels = scaled(32)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU6(inplace=True),
        ]
        for expand, out, repeats, stride in self.SETTINGS:
            for index in range(repeats):
                layers.append(
                    InvertedResidual(channels, scaled(out), stride if index == 0 else 1, expand)
                )
                channels = scaled(out)
        head = scaled(640)
        layers += [nn.Conv2d(channels, head, 1, bias=False), nn.BatchNorm2d(head), nn.ReLU6()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(head, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3)))


# ---------------------------------------------------------------------------------- helpers


def _limit(dataset: Dataset, count: int | None) -> Dataset:
    if not count:
        return dataset
    return dataclasses.replace(
        dataset, x_train=dataset.x_train[:count], y_train=dataset.y_train[:count]
    )


def _latencies(
    graphs: dict[str, bytes], shape: tuple[int, int, int], config: MeasureConfig, rounds: int
) -> dict[str, dict[str, Any]]:
    """Median of round medians per graph; graphs are measured in alternating rounds."""
    medians: dict[str, list[float]] = {name: [] for name in graphs}
    for _ in range(rounds):
        for name, graph in graphs.items():
            medians[name].append(measure_latency(graph, shape, config).median_ms)
    return {
        name: {"median_ms": statistics.median(values), "round_medians_ms": values}
        for name, values in medians.items()
    }


def _goal(value: float, goal: float, *, at_least: bool) -> dict[str, Any]:
    return {"value": value, "goal": goal, "met": value >= goal if at_least else value <= goal}


def _train(model: nn.Module, dataset: Dataset, args: argparse.Namespace) -> tuple[nn.Module, float]:
    start = time.perf_counter()
    torch.manual_seed(args.seed)
    train_network(model, dataset, epochs=args.epochs, lr=args.lr, batch_size=64, seed=args.seed)
    logging.info("trained %s in %.0f s", type(model).__name__, time.perf_counter() - start)
    return model.eval(), time.perf_counter() - start


def _pruning(
    name: str,
    model: nn.Module,
    dataset: Dataset,
    args: argparse.Namespace,
    measure: MeasureConfig,
) -> dict[str, Any]:
    example = torch.as_tensor(dataset.x_train[:2])
    base_accuracy = accuracy(model, dataset.x_test, dataset.y_test)
    pruned = prune(model, example, ratio=args.ratio, importance=args.importance)
    raw_accuracy = accuracy(pruned, dataset.x_test, dataset.y_test)
    start = time.perf_counter()
    train_student(
        pruned,
        dataset,
        teacher=model,
        epochs=args.finetune_epochs,
        lr=args.finetune_lr,
        temperature=args.temperature,
        alpha=args.alpha,
        seed=args.seed,
    )
    finetune_s = time.perf_counter() - start
    tuned_accuracy = accuracy(pruned, dataset.x_test, dataset.y_test)
    graphs = {
        "original": export_onnx(model, example[:1]),
        "pruned": export_onnx(pruned, example[:1]),
    }
    latency = _latencies(graphs, dataset.image_shape, measure, args.rounds)
    speedup = latency["original"]["median_ms"] / latency["pruned"]["median_ms"]
    drop = (base_accuracy - tuned_accuracy) * 100
    return {
        "network": name,
        "ratio": args.ratio,
        "importance": args.importance,
        "params": [count_params(model), count_params(pruned)],
        "macs": [count_flops(model, example[:1]), count_flops(pruned, example[:1])],
        "onnx_bytes": [len(graphs["original"]), len(graphs["pruned"])],
        "size_reduction": len(graphs["original"]) / len(graphs["pruned"]),
        "accuracy": {
            "original": base_accuracy,
            "pruned": raw_accuracy,
            "finetuned": tuned_accuracy,
        },
        "finetune_seconds": finetune_s,
        "latency": latency,
        "speedup": speedup,
        "accuracy_drop_points": drop,
        "_graphs": graphs,
        "_pruned": pruned,
    }


def _quantization(
    model_graph: bytes, dataset: Dataset, args: argparse.Namespace, measure: MeasureConfig
) -> dict[str, Any]:
    calibration = dataset.x_train[: args.calib_batches * 32]
    start = time.perf_counter()
    quantized = quantize_onnx(model_graph, calibration, batch_size=32, method=args.method)
    seconds = time.perf_counter() - start
    float_accuracy = evaluate_onnx(model_graph, dataset.x_test, dataset.y_test)
    int8_accuracy = evaluate_onnx(quantized, dataset.x_test, dataset.y_test)
    latency = _latencies(
        {"float32": model_graph, "int8": quantized}, dataset.image_shape, measure, args.rounds
    )
    return {
        "method": args.method,
        "per_channel": True,
        "calibration_images": len(calibration),
        "quantize_seconds": seconds,
        "accuracy": {"float32": float_accuracy, "int8": int8_accuracy},
        "accuracy_drop_points": (float_accuracy - int8_accuracy) * 100,
        "onnx_bytes": [len(model_graph), len(quantized)],
        "size_reduction": len(model_graph) / len(quantized),
        "latency": latency,
        "speedup": latency["float32"]["median_ms"] / latency["int8"]["median_ms"],
    }


def _latest_search_run(workdir: Path) -> Path | None:
    """The newest search run directory under ``workdir`` holding a chosen ONNX model."""
    runs = sorted(workdir.glob("search-*/chosen.onnx"), key=lambda path: path.stat().st_mtime)
    return runs[-1].parent if runs else None


def _subnet_quantization(
    run: Path, args: argparse.Namespace, measure: MeasureConfig
) -> dict[str, Any]:
    """int8 PTQ of the subnet ``nas search`` chose, on the digits at its resolution."""
    card = json.loads((run / "chosen.onnx.json").read_text())
    resolution = int(card["arch"]["resolution"])
    data = load_dataset("digits", resolution=resolution, seed=args.seed)
    result = _quantization((run / "chosen.onnx").read_bytes(), data, args, measure)
    return {"run": str(run), "arch": card["arch"], "resolution": resolution, **result}


def _distillation(teacher: nn.Module, dataset: Dataset, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"student_width": max(1, args.width // 2)}
    for label, with_teacher in (("without_teacher", None), ("with_teacher", teacher)):
        torch.manual_seed(args.seed)
        student = ResNet18Style(dataset.in_channels, dataset.num_classes, results["student_width"])
        start = time.perf_counter()
        train_student(
            student,
            dataset,
            teacher=with_teacher,
            epochs=args.student_epochs,
            lr=args.lr,
            temperature=args.temperature,
            alpha=args.alpha,
            seed=args.seed,
        )
        results[label] = {
            "accuracy": accuracy(student, dataset.x_test, dataset.y_test),
            "seconds": time.perf_counter() - start,
        }
    results["teacher_accuracy"] = accuracy(teacher, dataset.x_test, dataset.y_test)
    results["gain_points"] = (
        results["with_teacher"]["accuracy"] - results["without_teacher"]["accuracy"]
    ) * 100
    results["epochs"] = args.student_epochs
    return results


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Latency: {report['settings']['runtime']}, {report['settings']['threads']} thread(s), "
        f"batch {report['settings']['batch']}, {report['settings']['resolution']} px; median "
        f"of {report['settings']['rounds']} alternating rounds of {report['settings']['repeats']}.",
        "",
        "| network | change | accuracy before | after | drop (pts) | latency ms | speed-up "
        "| size smaller | MACs |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["pruning"]:
        lat = row["latency"]
        lines.append(
            f"| {row['network']} | prune {row['ratio']:.0%} + distil FT | "
            f"{row['accuracy']['original']:.2%} | {row['accuracy']['finetuned']:.2%} | "
            f"{row['accuracy_drop_points']:.2f} | {lat['original']['median_ms']:.3f} -> "
            f"{lat['pruned']['median_ms']:.3f} | {row['speedup']:.2f}x | "
            f"{row['size_reduction']:.2f}x | {row['macs'][0]:,} -> {row['macs'][1]:,} |"
        )
    rows = [("resnet18-style", report["quantization"])]
    if report.get("subnet_quantization"):
        rows.append(("chosen subnet (nas search)", report["subnet_quantization"]))
    for network, q in rows:
        lines.append(
            f"| {network} | int8 PTQ ({q['method']}) | {q['accuracy']['float32']:.2%} | "
            f"{q['accuracy']['int8']:.2%} | {q['accuracy_drop_points']:.2f} | "
            f"{q['latency']['float32']['median_ms']:.3f} -> "
            f"{q['latency']['int8']['median_ms']:.3f} | "
            f"{q['speedup']:.2f}x | {q['size_reduction']:.2f}x | |"
        )
    d = report["distillation"]
    lines += [
        "",
        f"Distillation ({d['epochs']} epochs, half-width ResNet-style student, teacher "
        f"{d['teacher_accuracy']:.2%}): without teacher {d['without_teacher']['accuracy']:.2%}, "
        f"with teacher {d['with_teacher']['accuracy']:.2%} ({d['gain_points']:+.2f} points).",
        "",
        "| goal | value | target | met |",
        "|---|---:|---:|---|",
    ]
    for name, goal in report["goals"].items():
        lines.append(f"| {name} | {goal['value']:.3f} | {goal['goal']} | {goal['met']} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--width", type=int, default=32, help="ResNet-style base width")
    parser.add_argument("--mbv2-width", type=float, default=0.5, help="MobileNetV2 width mult")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs of the originals")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--importance", default="l2")
    parser.add_argument("--finetune-epochs", type=int, default=8)
    parser.add_argument("--finetune-lr", type=float, default=0.01)
    parser.add_argument("--student-epochs", type=int, default=6)
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--alpha", type=float, default=0.9)
    parser.add_argument("--method", default="minmax")
    parser.add_argument("--calib-batches", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="latency threads")
    parser.add_argument("--batch", type=int, default=1, help="latency batch size")
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--train-threads", type=int, default=2)
    parser.add_argument("--train-limit", type=int, help="use only this many training images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--search-run",
        help="a `nas search` run directory whose chosen.onnx is quantized too "
        "(default: the newest under --workdir; skipped when there is none)",
    )
    parser.add_argument("--workdir", default="runs")
    parser.add_argument(
        "--out", default=str(Path(__file__).with_name("results") / "compression.json")
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.train_threads)
    started = time.perf_counter()

    dataset = _limit(
        load_dataset("digits", resolution=args.resolution, seed=args.seed), args.train_limit
    )
    measure = MeasureConfig(
        threads=args.threads, batch_size=args.batch, warmup=args.warmup, repeats=args.repeats
    )
    channels, classes = dataset.in_channels, dataset.num_classes
    resnet, resnet_s = _train(ResNet18Style(channels, classes, args.width), dataset, args)
    mbv2, mbv2_s = _train(MobileNetV2Style(channels, classes, args.mbv2_width), dataset, args)
    pruning = [
        _pruning("resnet18-style", resnet, dataset, args, measure),
        _pruning("mobilenetv2-style", mbv2, dataset, args, measure),
    ]
    quantization = _quantization(pruning[0]["_graphs"]["original"], dataset, args, measure)
    distillation = _distillation(copy.deepcopy(resnet), dataset, args)
    run = Path(args.search_run) if args.search_run else _latest_search_run(Path(args.workdir))
    subnet_quantization = None
    if run is not None:
        subnet_quantization = _subnet_quantization(run, args, measure)
    else:
        logging.warning("no nas search run found: the chosen subnet's int8 PTQ is skipped")
    for row in pruning:
        row.pop("_graphs")
        row.pop("_pruned")
    report: dict[str, Any] = {
        "settings": {
            **vars(args),
            "runtime": measure.runtime,
            "batch": measure.batch_size,
            "data": dataset.summary(),
            "train_seconds": {"resnet18-style": resnet_s, "mobilenetv2-style": mbv2_s},
        },
        "machine": machine_info(),
        "versions": library_versions(),
        "pruning": pruning,
        "quantization": quantization,
        "subnet_quantization": subnet_quantization,
        "distillation": distillation,
        "goals": {
            "resnet pruning speed-up >= 1.8x": _goal(pruning[0]["speedup"], 1.8, at_least=True),
            "resnet pruning accuracy drop <= 1 pt": _goal(
                pruning[0]["accuracy_drop_points"], 1.0, at_least=False
            ),
            "mbv2 pruning accuracy drop <= 1 pt": _goal(
                pruning[1]["accuracy_drop_points"], 1.0, at_least=False
            ),
            "int8 speed-up >= 1.5x": _goal(quantization["speedup"], 1.5, at_least=True),
            "int8 accuracy drop <= 1 pt": _goal(
                quantization["accuracy_drop_points"], 1.0, at_least=False
            ),
            "int8 size reduction ~4x (>= 3.5x)": _goal(
                quantization["size_reduction"], 3.5, at_least=True
            ),
        },
        "wall_seconds": time.perf_counter() - started,
    }
    if subnet_quantization is not None:
        report["goals"].update(
            {
                "subnet int8 speed-up >= 1.5x": _goal(
                    subnet_quantization["speedup"], 1.5, at_least=True
                ),
                "subnet int8 accuracy drop <= 1 pt": _goal(
                    subnet_quantization["accuracy_drop_points"], 1.0, at_least=False
                ),
                "subnet int8 size reduction ~4x (>= 3.5x)": _goal(
                    subnet_quantization["size_reduction"], 3.5, at_least=True
                ),
            }
        )
    out = Path(args.out)
    atomic_write_json(out, report)
    print(_markdown(report))
    print(f"\n{report['wall_seconds']:.0f} s; results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
