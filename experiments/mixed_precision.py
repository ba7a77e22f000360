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
- The latency predictors the search builds, with ``--profile N``, per runtime: N subnets of
  the space (mixed precisions, chosen as ``nas search`` chooses them) measured whole with their
  operators (:func:`nas.measure.latency.profile`); the learned predictor ``nas search`` uses
  and the lookup table fitted on three quarters of them and judged on the rest (share within
  10%, per form: every stage fp32, every stage int8, mixed), beside the noise floor (the
  held-out subnets measured a second time).
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
from nas.measure.latency import ProfileConfig, profile, profiled_archs
from nas.measure.precision import arch_graph, float_arch
from nas.measure.profiling import BLOCKS_FILE, profile_blocks, profile_latency
from nas.predictors import LatencyTable, LearnedConfig, LearnedPredictor
from nas.predictors.records import read_records
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


def _form(arch: ss.Arch) -> str:
    int8 = sum(stage.precision == "int8" for stage in arch.stages)
    return "fp32" if int8 == 0 else "int8" if int8 == arch.num_stages else "mixed"


def _per_form(values: np.ndarray, truth: np.ndarray, kinds: np.ndarray) -> dict[str, float]:
    """Share within 10% of ``truth`` for each form present among ``kinds``."""
    return {
        k: _within(values[kinds == k], truth[kinds == k])
        for k in ("fp32", "int8", "mixed")
        if np.any(kinds == k)
    }


def predictors(
    space: ss.Space, runtime: str, work: Path, threads: int, count: int, seed: int
) -> dict[str, Any]:
    """The learned predictor and the lookup table on ``count`` profiled subnets: fitted on three
    quarters, judged on the rest beside a second measurement of the rest."""
    config = MeasureConfig(runtime=runtime, threads=threads, batch_size=1)
    folder = work / f"profile-{runtime}"
    print(f"{runtime}: profiling {count} subnets and their operators", file=sys.stderr)
    profile(space, ProfileConfig(measure=config, subnets=count, seed=seed, table=True), folder)
    archs, measured = profiled_archs(space, folder)
    order = np.random.default_rng(seed).permutation(len(archs))
    cut = round(0.75 * len(archs))
    train, test = order[:cut], order[cut:]
    held_out = [archs[i] for i in test]
    again = np.array(
        [r.median_ms for r in profile_latency(space, held_out, config, folder / "again.jsonl")]
    )
    truth = measured[test]
    operators = [r for r in read_records(folder / BLOCKS_FILE) if r.space == space.name]
    fitted = {
        "learned": LearnedPredictor(space, LearnedConfig(seed=seed)),
        "table": LatencyTable(space, operators),
    }
    kinds = np.array([_form(arch) for arch in held_out])
    result: dict[str, Any] = {
        "settings": dataclasses.asdict(config),
        "subnets": len(archs),
        "held_out": len(held_out),
        "held_out_forms": {k: int(np.sum(kinds == k)) for k in ("fp32", "int8", "mixed")},
        "noise_floor_within_10pct": _within(again, truth),
        "noise_floor_per_form": _per_form(again, truth, kinds),
    }
    for name, predictor in fitted.items():
        predictor.fit([archs[i] for i in train], measured[train])
        predicted = predictor.predict(held_out)
        result[name] = {
            "within_10pct": _within(predicted, truth),
            "per_form": _per_form(predicted, truth, kinds),
            "mean_abs_rel_error": float(np.mean(np.abs(predicted - truth) / truth)),
        }
    return result


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
    parser.add_argument(
        "--profile", type=int, default=0, help="subnets profiled to judge the search's predictors"
    )
    parser.add_argument("--work", default="runs/mixed-precision", help="measurement files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="default")
    args = parser.parse_args()
    if args.subnets == 1 or args.subnets < 0:
        parser.error("--subnets must be 0 (only --profile) or >= 2")
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
    for runtime in args.runtimes.split(",") if args.subnets else []:
        if runtime not in report["latency"]:
            report["latency"][runtime] = latency(space, subnets, runtime, work, args.threads)
            atomic_write_json(out, report)
    if args.profile:
        report.setdefault("predictors", {})
        for runtime in args.runtimes.split(","):
            if runtime not in report["predictors"]:
                report["predictors"][runtime] = predictors(
                    space, runtime, work, args.threads, args.profile, args.seed
                )
                atomic_write_json(out, report)
    if args.supernet and args.subnets and "accuracy" not in report:
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
    if report.get("predictors"):
        print(
            "\n| runtime | subnets (held out) | learned within 10%, all (fp32 / int8 / mixed) "
            "| table within 10% | noise floor |"
        )
        print("|---|---|---|---|---|")
        for runtime, part in report["predictors"].items():
            cells = []
            for name in ("learned", "table"):
                per = " / ".join(f"{v:.0%}" for v in part[name]["per_form"].values())
                cells.append(f"{part[name]['within_10pct']:.0%} ({per})")
            floor = " / ".join(f"{v:.0%}" for v in part["noise_floor_per_form"].values())
            print(
                f"| {runtime} | {part['subnets']} ({part['held_out']}) | {cells[0]} | {cells[1]} | "
                f"{part['noise_floor_within_10pct']:.0%} ({floor}) |"
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
