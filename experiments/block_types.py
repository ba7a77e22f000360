"""Fused blocks and int8: what each block type and precision costs on this CPU, per runtime.

Space ``--space``: ``mbv3-28-fused`` (the default: the first two stages may be fused, one dense
kxk convolution in place of the 1x1 expansion and the depthwise kxk; every stage fp32 or int8)
or ``quant-28`` (every stage may be fused; ReLU, no squeeze-excitation). For ``--subnets``
random subnets, five forms each, which differ only in block type and precision:

- ``mbconv-fp32``: inverted residuals everywhere, fp32 (what a float-only search deploys);
- ``mbconv-int8``: the same, every stage int8;
- ``fused-fp32``: every stage that may be fused fused, fp32;
- ``fused-int8``: the same, every stage int8;
- ``fused-int8-early``: the first two stages fused and int8, the rest mbconv fp32.

Per runtime and batch size, the five forms of a subnet are timed side by side, in rounds that
alternate between them (their ONNX graphs, int8 stages in QDQ form; resumable per subnet). At
batch 1 every form is also measured whole as ``nas latency profile`` does, twice (the second
pass is the noise floor), and the latency table (operators timed alone, fused blocks and int8
blocks with their own keys, boundaries subtracted) is calibrated on the first half of the
subnets and judged on the second half. Reported: each form's speed against ``mbconv-fp32``
(and, on OpenVINO, against ``mbconv-fp32`` on ONNX Runtime, today's path, timed in the same
rounds) and int8 against its own float form (median and range), weight bytes, the table's share
within 10% beside the floor. With ``--supernet`` (a checkpoint of the space), the test accuracy
of each form (float batch-norm recalibrated; int8 forms deployed as ONNX Runtime QDQ graphs
calibrated on 500 training images), and for each int8 form against its own float form: points
lost, weight bytes, and the subnets that are at once >= 1.5x faster, at most 1 point less
accurate and >= 3.5x smaller (the issue's bar), per runtime and batch.

Writes ``experiments/results/block_types-TAG.json`` and prints Markdown.

    python experiments/block_types.py --subnets 12 --supernet runs/supernet-mbv3-28-fused
    python experiments/block_types.py --space quant-28 --subnets 12 --tag quant-28
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
import torch
from runtimes import cpu_flags

import search_spaces as ss
from compress.quantization import evaluate_onnx
from nas.data import load_dataset, resize_images
from nas.defaults import DEFAULT_DATA
from nas.files import atomic_write_json
from nas.measure import MeasureConfig, library_versions, machine_info, time_callable
from nas.measure.precision import arch_graph, float_arch
from nas.measure.profiling import profile_blocks, profile_latency
from nas.measure.timing import graph_runner, time_side_by_side
from nas.predictors import LatencyTable
from nas.train import accuracy, load_supernet, recalibrated
from nas.train.evaluate import calibration_images

SPACE = "mbv3-28-fused"
EARLY = 2  # the stages of the fused-int8-early form
TODAY = "onnxruntime-mbconv-fp32"  # today's path, timed beside the forms on other runtimes
ROUNDS, REPEATS, WARMUP = 7, 30, 10  # per form of a subnet, the rounds alternating
FORMS = ("mbconv-fp32", "mbconv-int8", "fused-fp32", "fused-int8", "fused-int8-early")


def form(space: ss.Space, arch: ss.Arch, name: str) -> ss.Arch:
    """``arch`` in the form ``name`` of :data:`FORMS` (block type and precision of every stage)."""
    block_type, precision = name.split("-")[:2]
    early = name.endswith("early")
    stages = []
    for index, (spec, stage) in enumerate(zip(space.stages, arch.stages, strict=False)):
        fused = block_type == "fused" and "fused" in spec.block_type.values
        fused = fused and (index < EARLY or not early)
        int8 = precision == "int8" and (fused if early else True)
        stages.append(
            dataclasses.replace(
                stage,
                block_type="fused" if fused else "mbconv",
                precision="int8" if int8 else "fp32",
            )
        )
    return dataclasses.replace(arch, stages=tuple(stages))


def subnets(space: ss.Space, rng: np.random.Generator, count: int) -> list[dict[str, ss.Arch]]:
    """``count`` random subnets, each in every form of :data:`FORMS`."""
    result = []
    for _ in range(count):
        arch = space.sample(rng)
        result.append({name: form(space, arch, name) for name in FORMS})
    return result


def _within(predicted: np.ndarray, true: np.ndarray, tolerance: float = 0.10) -> float:
    return float(np.mean(np.abs(predicted - true) <= tolerance * true))


def _ratios(numerator: np.ndarray, denominator: np.ndarray) -> dict[str, float]:
    ratio = numerator / denominator
    return {"median": float(np.median(ratio)), "min": float(ratio.min()), "max": float(ratio.max())}


def _paired(
    space: ss.Space, subnet: dict[str, ss.Arch], runtime: str, batch: int, threads: int
) -> dict[str, float]:
    """Median milliseconds of each form of one subnet, the rounds alternating between the
    forms, so that a slower spell of this shared machine slows every form alike. On another
    runtime than ONNX Runtime, ``today`` too: ``mbconv-fp32`` on ONNX Runtime (today's path),
    timed in the same rounds."""
    runners = {}
    cases = [(name, runtime, arch) for name, arch in subnet.items()]
    if runtime != "onnxruntime":
        cases.append((TODAY, "onnxruntime", subnet["mbconv-fp32"]))
    for name, engine, arch in cases:
        shape = (space.in_channels, arch.resolution, arch.resolution)
        example = np.random.default_rng(0).standard_normal((batch, *shape)).astype(np.float32)
        runners[name] = graph_runner(engine, arch_graph(space, arch), example, threads)
        time_callable(runners[name], warmup=WARMUP, repeats=1)
    return time_side_by_side(runners, rounds=ROUNDS, repeats=REPEATS)


def latency(
    space: ss.Space,
    forms: list[dict[str, ss.Arch]],
    runtime: str,
    batch: int,
    work: Path,
    threads: int,
    part: dict[str, Any],
    save: Callable[[], None],
) -> None:
    """Fill ``part`` with the forms' latencies (one subnet at a time, saved as it goes), their
    ratios and, at batch 1, the latency table's accuracy beside the noise floor."""
    config = MeasureConfig(runtime=runtime, threads=threads, batch_size=batch)
    part["settings"] = dataclasses.asdict(config) | {"rounds": ROUNDS, "repeats": REPEATS}
    rows = part.setdefault("subnets_ms", [])
    for index in range(len(rows), len(forms)):
        print(f"{runtime} batch {batch}: subnet {index}", file=sys.stderr)
        rows.append(_paired(space, forms[index], runtime, batch, threads))
        save()
    measured = np.array([[row[name] for name in FORMS] for row in rows])
    base = measured[:, 0]
    part["speed_vs_mbconv_fp32"] = {
        name: _ratios(base, measured[:, i]) for i, name in enumerate(FORMS)
    }
    if all(TODAY in row for row in rows):
        today = np.array([row[TODAY] for row in rows])
        part["speed_vs_onnxruntime_mbconv_fp32"] = {
            name: _ratios(today, measured[:, i]) for i, name in enumerate(FORMS)
        }
    part["int8_vs_own_float"] = {
        "mbconv": _ratios(measured[:, 0], measured[:, 1]),
        "fused": _ratios(measured[:, 2], measured[:, 3]),
        "fused_early": _ratios(measured[:, 2], measured[:, 4]),
    }
    if batch == 1 and "table_held_out_within_10pct" not in part:
        # The latency table and its floor, at the batch nas search times: whole subnets
        # measured as nas latency profile does, twice.
        archs = [form for subnet in forms for form in subnet.values()]
        tag = f"{runtime}-b{batch}"
        records = profile_blocks(space, config, work / f"blocks-{tag}.jsonl", archs=archs)
        first = profile_latency(space, archs, config, work / f"first-{tag}.jsonl")
        second = profile_latency(space, archs, config, work / f"second-{tag}.jsonl")
        flat = np.array([r.median_ms for r in first])
        again = np.array([r.median_ms for r in second])
        half = len(FORMS) * (len(forms) // 2)
        table = LatencyTable(space, records).fit(archs[:half], flat[:half])
        predicted = table.predict(archs[half:])
        part["table_held_out_within_10pct"] = _within(predicted, flat[half:])
        part["noise_floor_within_10pct"] = _within(again[half:], flat[half:])
        names = np.array(list(FORMS) * len(forms))[half:]
        part["table_within_10pct_per_form"] = {
            name: _within(predicted[names == name], flat[half:][names == name]) for name in FORMS
        }
    save()


def accuracies(
    space: ss.Space, forms: list[dict[str, ss.Arch]], supernet_dir: Path, images: int
) -> list[dict[str, Any]]:
    supernet, _ = load_supernet(supernet_dir)
    supernet.eval()
    dataset = load_dataset(DEFAULT_DATA, resolution=28, seed=0)
    rows = []
    for index, subnet in enumerate(forms):
        row: dict[str, Any] = {}
        for name, arch in subnet.items():
            x = resize_images(dataset.x_test[:images], arch.resolution)
            y = dataset.y_test[:images]
            network = recalibrated(supernet, float_arch(arch), dataset).eval()
            if name.endswith("fp32"):
                row[name] = accuracy(network, x, y)
            else:
                calibration = calibration_images(dataset, arch.resolution, 500)
                row[name] = evaluate_onnx(arch_graph(space, arch, network, calibration), x, y)
            row[f"{name}_flops"] = space.flops(arch)
            row[f"{name}_weight_bytes"] = space.weight_bytes(arch)
        row["arch"] = subnet["mbconv-fp32"].to_dict()
        print(f"subnet {index}: " + ", ".join(f"{n} {row[n]:.4f}" for n in FORMS), file=sys.stderr)
        rows.append(row)
    return rows


PAIRS = {"mbconv": ("mbconv-fp32", "mbconv-int8"), "fused": ("fused-fp32", "fused-int8")}


def against_own_float(report: dict[str, Any]) -> dict[str, Any]:
    """Per runtime and batch and block type, each subnet's int8 form against its own float
    form: speed, points lost and how many times smaller its weights are, and how many subnets
    clear the issue's bar (>= 1.5x faster, <= 1 point lost, >= 3.5x smaller) at once."""
    result: dict[str, Any] = {}
    rows = report["accuracy"]
    for tag, part in report["latency"].items():
        for kind, (floats, ints) in PAIRS.items():
            cases = [
                {
                    "speed": ms[floats] / ms[ints],
                    "points_lost": 100 * (row[floats] - row[ints]),
                    "smaller": row[f"{floats}_weight_bytes"] / row[f"{ints}_weight_bytes"],
                }
                for ms, row in zip(part["subnets_ms"], rows, strict=False)
            ]
            meets = [
                c["speed"] >= 1.5 and c["points_lost"] <= 1.0 and c["smaller"] >= 3.5 for c in cases
            ]
            result[f"{tag}-{kind}"] = {
                "median": {k: float(np.median([c[k] for c in cases])) for k in cases[0]},
                "meets_bar": int(sum(meets)),
                "subnets": len(cases),
                "cases": cases,
            }
    return result


def _print(report: dict[str, Any]) -> None:
    print(f"## Block types and int8 on {report['machine'].get('cpu')}\n")
    print("| runtime, batch | " + " | ".join(FORMS[1:]) + " | int8/own float, mbconv / fused |")
    print("|---|" + "---|" * len(FORMS))
    for tag, part in report["latency"].items():
        speeds = part["speed_vs_mbconv_fp32"]
        own = part["int8_vs_own_float"]
        cells = [
            f"{speeds[n]['median']:.2f}x ({speeds[n]['min']:.2f}-{speeds[n]['max']:.2f})"
            for n in FORMS[1:]
        ]
        print(
            f"| {tag} | "
            + " | ".join(cells)
            + f" | {own['mbconv']['median']:.2f}x / {own['fused']['median']:.2f}x |"
        )
    for tag, part in report["latency"].items():
        if "speed_vs_onnxruntime_mbconv_fp32" in part:
            speeds = part["speed_vs_onnxruntime_mbconv_fp32"]
            print(
                f"\n{tag} against ONNX Runtime, mbconv-fp32, timed beside: "
                + ", ".join(
                    f"{n} {v['median']:.2f}x ({v['min']:.2f}-{v['max']:.2f})"
                    for n, v in speeds.items()
                )
            )
    for tag, part in report["latency"].items():
        if "table_held_out_within_10pct" in part:
            print(
                f"\n{tag}: table within 10% on held-out subnets "
                f"{part['table_held_out_within_10pct']:.0%} (noise floor "
                f"{part['noise_floor_within_10pct']:.0%})"
            )
    if "accuracy" in report:
        rows = report["accuracy"]
        print("\n| subnet | " + " | ".join(FORMS) + " |")
        print("|---|" + "---:|" * len(FORMS))
        for index, row in enumerate(rows):
            print(f"| {index} | " + " | ".join(f"{row[n]:.2%}" for n in FORMS) + " |")
        print(
            "\n| runtime, batch, blocks | int8 / own float: speed, points lost, smaller | "
            "subnets >= 1.5x, <= 1 point, >= 3.5x |"
        )
        print("|---|---|---:|")
        for tag, bar in report["against_own_float"].items():
            m = bar["median"]
            print(
                f"| {tag} | {m['speed']:.2f}x, {m['points_lost']:.2f}, {m['smaller']:.2f}x | "
                f"{bar['meets_bar']} of {bar['subnets']} |"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default=SPACE, help="a space with block-type choices")
    parser.add_argument("--supernet", help="a supernet checkpoint of the space (accuracy)")
    parser.add_argument("--subnets", type=int, default=12)
    parser.add_argument("--runtimes", default="onnxruntime,openvino")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--images", type=int, default=10000, help="test images per accuracy")
    parser.add_argument("--work", default="runs/block-types", help="measurement files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="default")
    args = parser.parse_args()
    if args.subnets < 2:
        parser.error("--subnets must be >= 2")
    torch.set_num_threads(args.threads)
    space = ss.get_space(args.space)
    if not space.has_block_type or not space.has_precision:
        parser.error(f"--space {args.space}: needs block-type and precision choices")
    forms = subnets(space, np.random.default_rng(args.seed), args.subnets)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out = Path(__file__).with_name("results") / f"block_types-{args.tag}.json"
    report: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    report.update(
        {
            "command": " ".join(["python", *sys.argv]),
            "space": space.name,
            "forms": list(FORMS),
            "machine": machine_info(),
            "cpu_flags": cpu_flags(),
            "versions": library_versions(),
            "threads": args.threads,
        }
    )
    report.setdefault("latency", {})
    for runtime in args.runtimes.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            part = report["latency"].setdefault(f"{runtime}-b{batch}", {})
            latency(
                space,
                forms,
                runtime,
                batch,
                work,
                args.threads,
                part,
                lambda: atomic_write_json(out, report),
            )
    if args.supernet and "accuracy" not in report:
        report["supernet"] = args.supernet
        report["accuracy"] = accuracies(space, forms, Path(args.supernet), args.images)
    if "accuracy" in report:
        report["against_own_float"] = against_own_float(report)
        atomic_write_json(out, report)
    _print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
