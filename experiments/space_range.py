"""Latency and training-cost range of a space, measured on this machine.

Measures the smallest subnet, the largest, and N random ones of the space with ONNX Runtime
(1 thread, batch 1 by default) and torch eager side by side, then times one real training epoch
of the smallest and the largest subnets on the digits data at 2 threads. Writes
``experiments/results/space_range-<space>.json`` and prints a Markdown table.

    python experiments/space_range.py --space mbv3-small --samples 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

import search_spaces as ss
from nas.data import batches, load_dataset
from nas.files import atomic_write_json
from nas.measure import (
    MeasureConfig,
    library_versions,
    machine_info,
    measure_arch,
    time_callable,
    torch_threads,
)
from nas.supernet.static import build_network


def epoch_seconds(space: ss.Space, arch: ss.Arch, threads: int, batch_size: int) -> float:
    """Wall time of one training epoch (forward, backward, SGD step) on digits."""
    data = load_dataset("digits", resolution=arch.resolution, seed=0)
    torch.manual_seed(0)
    network = build_network(space, arch).train()
    optimizer = torch.optim.SGD(network.parameters(), lr=0.05, momentum=0.9)

    def run_epoch() -> None:
        for x, y in batches(data.x_train, data.y_train, batch_size=batch_size, seed=0):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(
                network(torch.as_tensor(x)), torch.as_tensor(y)
            )
            loss.backward()
            optimizer.step()

    with torch_threads(threads):
        (milliseconds,) = time_callable(run_epoch, warmup=0, repeats=1)
    return milliseconds / 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mbv3-small")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--train-threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    space = ss.get_space(args.space)
    rng = np.random.default_rng(args.seed)
    named = [("smallest", space.smallest()), ("largest", space.largest())]
    named += [(f"random-{i}", space.sample(rng)) for i in range(args.samples)]
    rows = []
    for label, arch in named:
        row = {
            "name": label,
            "arch": arch.to_dict(),
            "flops": space.flops(arch),
            "params": space.params(arch),
        }
        for runtime in ("onnxruntime", "torch"):
            config = MeasureConfig(runtime=runtime, threads=args.threads, repeats=args.repeats)
            result = measure_arch(space, arch, config)
            row[f"{runtime}_ms"] = result.median_ms
            row[f"{runtime}_iqr_ms"] = result.iqr_ms
        rows.append(row)
        print(
            f"{label:>10}: {row['flops'] / 1e6:7.2f}M MACs  onnxruntime "
            f"{row['onnxruntime_ms']:.3f} ms  torch {row['torch_ms']:.3f} ms",
            file=sys.stderr,
        )

    training = {
        label: epoch_seconds(space, arch, args.train_threads, 64) for label, arch in named[:2]
    }
    ort = [r["onnxruntime_ms"] for r in rows]
    summary = {
        "space": space.name,
        "size": space.size(),
        "settings": {
            "threads": args.threads,
            "batch_size": 1,
            "repeats": args.repeats,
            "warmup": 10,
            "train_threads": args.train_threads,
            "train_batch": 64,
        },
        "machine": machine_info(),
        "versions": library_versions(),
        "onnxruntime_ms": {
            "smallest": ort[0],
            "largest": ort[1],
            "min": min(ort),
            "max": max(ort),
            "median_random": statistics.median(ort[2:] or ort),
        },
        "range_ratio": max(ort) / min(ort),
        "epoch_seconds": training,
        "rows": rows,
    }
    out = Path(__file__).with_name("results") / f"space_range-{space.name}.json"
    out.parent.mkdir(exist_ok=True)
    atomic_write_json(out, summary)

    print("| subnet | MACs | params | ONNX Runtime ms (IQR) | torch eager ms (IQR) |")
    print("|---|---:|---:|---:|---:|")
    for row in rows[:2]:
        print(
            f"| {row['name']} | {row['flops'] / 1e6:.2f}M | {row['params'] / 1e3:.1f}K | "
            f"{row['onnxruntime_ms']:.3f} ({row['onnxruntime_iqr_ms']:.3f}) | "
            f"{row['torch_ms']:.3f} ({row['torch_iqr_ms']:.3f}) |"
        )
    print(
        f"\nONNX Runtime range over {len(rows)} subnets: {min(ort):.3f}-{max(ort):.3f} ms "
        f"({summary['range_ratio']:.1f}x); median of {len(rows) - 2} random: "
        f"{summary['onnxruntime_ms']['median_random']:.3f} ms"
    )
    print(
        f"one training epoch on digits ({args.train_threads} threads, batch 64): smallest "
        f"{training['smallest']:.1f} s, largest {training['largest']:.1f} s"
    )
    print(f"machine: {machine_info()['cpu']}; versions: {library_versions()}")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
