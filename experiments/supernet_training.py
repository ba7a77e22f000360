"""Train the default supernet once and check what it gives, against training subnets alone.

1. Trains the supernet of the space with the same defaults as `nas train` (wall time).
2. Evaluates the largest, the smallest and 50 random subnets on the test split, each after
   batch-norm recalibration: the spread of their accuracies.
3. Train once vs train each: 12 random subnets trained alone from scratch for as many epochs
   as the supernet had (same optimiser, learning rate schedule, batch size); the mean accuracy
   gap and the Kendall tau between the two rankings, and the cost ratio.
4. Sandwich-rule step time vs a step of the largest subnet alone, measured side by side.

Writes ``experiments/results/supernet_training-<space>.json`` and prints Markdown.

    python experiments/supernet_training.py                # the defaults of `nas train`
    python experiments/supernet_training.py --schedule all --warmup 4 --tag all
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau
from torch import nn

import search_spaces as ss
from nas.data import Dataset, load_dataset, resize_images
from nas.defaults import DEFAULT_EPOCHS, DEFAULT_SCHEDULE, DEFAULT_WARMUP
from nas.files import atomic_write_json
from nas.measure import library_versions, machine_info, time_callable, torch_threads
from nas.supernet.static import build_network
from nas.train import (
    TrainConfig,
    accuracy,
    cross_entropy,
    evaluate,
    load_supernet,
    make_schedule,
    recalibrated,
    train_network,
    train_supernet,
)
from nas.train.layout import as_layout
from nas.train.sampling import step_subnets as _subnets
from nas.train.step import train_step
from search_spaces import decode_genome, sample_genomes


def step_times(
    space: ss.Space, dataset: Dataset, config: TrainConfig, repeats: int
) -> dict[str, float]:
    """Median milliseconds of a sandwich step (every dimension elastic) and of a step of the
    largest subnet alone, in both memory layouts (NCHW, and NHWC as training uses by default),
    and of an NHWC sandwich step on one thread (how well a step uses the second core),
    measured in alternating rounds."""
    from nas.supernet import Supernet

    images = dataset.x_train[: config.batch_size]
    labels = torch.as_tensor(dataset.y_train[: config.batch_size])
    phase = make_schedule("all", epochs=1, lr=0.1).phases[0]
    threads = torch.get_num_threads()
    cases = {}
    for layout, channels_last in (("nchw", False), ("nhwc", True)):
        torch.manual_seed(0)
        supernet = as_layout(Supernet(space).train(), channels_last)
        optimizer = torch.optim.SGD(supernet.parameters(), lr=0.01, momentum=0.9)
        settings = dataclasses.replace(config, channels_last=channels_last)
        rng = np.random.default_rng(0)
        for label, pick in (
            ("largest", lambda: [space.largest()]),
            ("sandwich", lambda rng=rng, settings=settings: _subnets(space, phase, settings, rng)),
        ):
            cases[f"{label}_{layout}_ms"] = (supernet, optimizer, settings, pick, threads)
    nhwc_supernet, nhwc_optimizer, nhwc_settings, _, _ = cases["sandwich_nhwc_ms"]
    one_rng = np.random.default_rng(0)  # the same subnets as the NHWC sandwich case
    cases["sandwich_nhwc_1thread_ms"] = (
        nhwc_supernet,
        nhwc_optimizer,
        nhwc_settings,
        lambda: _subnets(space, phase, nhwc_settings, one_rng),
        1,
    )
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for round_index in range(repeats + 2):
        for name, (supernet, optimizer, settings, pick, count) in cases.items():
            with torch_threads(count):
                start = time.perf_counter()
                train_step(
                    supernet, optimizer, pick(), images, labels, settings, torch.device("cpu")
                )
                ms = (time.perf_counter() - start) * 1e3
            if round_index >= 2:  # two warm-up rounds
                samples[name].append(ms)
    return {name: statistics.median(values) for name, values in samples.items()}


def one_dimension(supernet: nn.Module, space: ss.Space, dataset: Dataset, count: int) -> dict:
    """Test accuracy of the largest subnet with only one dimension sampled (``count`` subnets
    per dimension): which kind of sharing costs the most."""
    rng = np.random.default_rng(5)
    result = {}
    for dimension in ss.DIMENSIONS:
        genomes = sample_genomes(space, rng, count, [dimension])
        scores = [
            evaluate(supernet, decode_genome(space, g), dataset, split="test") for g in genomes
        ]
        result[dimension] = {"mean": float(np.mean(scores)), "min": min(scores), "all": scores}
        print(
            f"only {dimension}: mean {np.mean(scores):.4f} min {min(scores):.4f}", file=sys.stderr
        )
    return result


def _tau(a: list[float], b: list[float]) -> float:
    return float(kendalltau(a, b).statistic) if len(a) > 1 else float("nan")


def compare(pairs: list[dict], supernet_seconds: float, standalone_seconds: float) -> dict:
    """Mean gap and rank agreement between inherited and stand-alone accuracies (first seed),
    the same by test cross-entropy (finer where accuracies tie), and the ceiling: how well two
    stand-alone trainings of the same subnets with other seeds agree with each other."""
    inherited = [p["inherited"] for p in pairs]
    alone = [p["alone"][0] for p in pairs]
    result: dict = {
        "pairs": pairs,
        "mean_gap_points": 100 * float(np.mean(np.subtract(alone, inherited))) if pairs else None,
        "kendall_tau": _tau(inherited, alone),
        "kendall_tau_nll": _tau(
            [p["inherited_nll"] for p in pairs], [p["alone_nll"][0] for p in pairs]
        ),
        "supernet_seconds": supernet_seconds,
        "standalone_seconds": standalone_seconds,
        "cost_ratio_each_over_once": standalone_seconds / supernet_seconds if pairs else None,
    }
    if pairs and len(pairs[0]["alone"]) > 1:
        result["ceiling_kendall_tau"] = _tau(alone, [p["alone"][1] for p in pairs])
        result["ceiling_kendall_tau_nll"] = _tau(
            [p["alone_nll"][0] for p in pairs], [p["alone_nll"][1] for p in pairs]
        )
        result["seed_spread_points"] = 100 * float(
            np.mean([max(p["alone"]) - min(p["alone"]) for p in pairs])
        )
        # the stand-alone ranking with less seed noise: the mean over the seeds
        result["kendall_tau_seed_mean"] = _tau(inherited, [np.mean(p["alone"]) for p in pairs])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="mbv3-small")
    parser.add_argument("--schedule", default=DEFAULT_SCHEDULE)
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--num-random", type=int, default=TrainConfig.num_random)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--no-sandwich", action="store_true")
    parser.add_argument("--no-distill", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--random-subnets", type=int, default=50)
    parser.add_argument("--standalone", type=int, default=12)
    parser.add_argument(
        "--standalone-seeds",
        type=int,
        default=2,
        help="train each stand-alone subnet this many times (seeds): the second gives the "
        "ceiling of rank agreement",
    )
    parser.add_argument(
        "--per-dimension",
        type=int,
        default=12,
        help="subnets per dimension that vary only that dimension from the largest (0: skip)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="default")
    parser.add_argument("--checkpoint", help="reuse a trained checkpoint instead of training")
    args = parser.parse_args()
    if args.standalone_seeds < 1 or args.per_dimension < 0 or args.random_subnets < 1:
        parser.error("--standalone-seeds and --random-subnets must be >= 1, --per-dimension >= 0")
    if args.standalone > args.random_subnets:
        parser.error("--standalone cannot exceed --random-subnets (it trains the first of them)")

    space = ss.get_space(args.space)
    dataset = load_dataset("digits", resolution=max(space.resolution.values), seed=args.seed)
    config = TrainConfig(
        num_random=args.num_random,
        batch_size=args.batch_size,
        sandwich=not args.no_sandwich,
        inplace_distillation=not args.no_distill,
        seed=args.seed,
        threads=args.threads,
    )
    schedule = make_schedule(args.schedule, epochs=args.epochs, lr=args.lr, warmup=args.warmup)
    report: dict = {
        "space": space.name,
        "schedule": schedule.to_dict(),
        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "machine": machine_info(),
        "versions": library_versions(),
    }

    with torch_threads(args.threads):
        if args.checkpoint:
            supernet, checkpoint = load_supernet(args.checkpoint)
            train_seconds = sum(e["seconds"] for e in checkpoint.metadata["history"])
            history = checkpoint.metadata["history"]
        else:
            out = Path(tempfile.mkdtemp(prefix="supernet-")) / "run"
            epochs_done: list = []
            (milliseconds,) = time_callable(
                lambda: train_supernet(
                    space, dataset, schedule, config, out, on_epoch=epochs_done.append
                ),
                warmup=0,
                repeats=1,
            )
            train_seconds = milliseconds / 1e3
            supernet, checkpoint = load_supernet(out)
            history = checkpoint.metadata["history"]
            print(f"checkpoint: {out}", file=sys.stderr)
        report["train_seconds"] = train_seconds
        report["history"] = history
        print(f"trained in {train_seconds:.0f} s", file=sys.stderr)

        rng = np.random.default_rng(1000 + args.seed)
        test = {
            "largest": evaluate(supernet, space.largest(), dataset, split="test"),
            "smallest": evaluate(supernet, space.smallest(), dataset, split="test"),
        }
        randoms = [space.sample(rng) for _ in range(args.random_subnets)]
        random_scores, random_nll = [], []
        for arch in randoms:  # one recalibration each, for accuracy and cross-entropy
            network = recalibrated(supernet, arch, dataset)
            x_test = resize_images(dataset.x_test, arch.resolution)
            random_scores.append(accuracy(network, x_test, dataset.y_test))
            random_nll.append(cross_entropy(network, x_test, dataset.y_test))
        report["test_accuracy"] = {
            **test,
            "random_min": min(random_scores),
            "random_median": statistics.median(random_scores),
            "random_max": max(random_scores),
            "random": random_scores,
            "random_nll": random_nll,
        }
        print(f"test accuracy: {report['test_accuracy']}", file=sys.stderr)
        if args.per_dimension:
            report["one_dimension"] = one_dimension(supernet, space, dataset, args.per_dimension)

        pairs = []
        standalone_seconds = 0.0
        for index, arch in enumerate(randoms[: args.standalone]):
            x_test = resize_images(dataset.x_test, arch.resolution)
            pair: dict[str, Any] = {
                "arch": arch.to_dict(),
                "inherited": random_scores[index],
                "inherited_nll": random_nll[index],
                "alone": [],
                "alone_nll": [],
            }
            for repeat in range(args.standalone_seeds):
                seed = args.seed + index + 1000 * repeat
                torch.manual_seed(seed)
                network = build_network(space, arch)

                def run(
                    network: nn.Module = network, arch: ss.Arch = arch, seed: int = seed
                ) -> None:
                    train_network(
                        network,
                        dataset,
                        epochs=schedule.total_epochs,
                        lr=args.lr,
                        batch_size=args.batch_size,
                        resolution=arch.resolution,
                        seed=seed,
                    )

                (ms,) = time_callable(run, warmup=0, repeats=1)
                if repeat == 0:  # the cost ratio counts one training per subnet
                    standalone_seconds += ms / 1e3
                pair["alone"].append(accuracy(network, x_test, dataset.y_test))
                pair["alone_nll"].append(cross_entropy(network, x_test, dataset.y_test))
            pairs.append(pair)
            print(
                f"subnet {index}: supernet {pair['inherited']:.4f} "
                f"(nll {pair['inherited_nll']:.3f}) alone "
                + " ".join(
                    f"{a:.4f} (nll {n:.3f})"
                    for a, n in zip(pair["alone"], pair["alone_nll"], strict=True)
                ),
                file=sys.stderr,
            )
        report["train_once_vs_each"] = compare(pairs, train_seconds, standalone_seconds)
        report["step_ms"] = step_times(space, dataset, config, repeats=10)

    out_file = (
        Path(__file__).with_name("results") / f"supernet_training-{space.name}-{args.tag}.json"
    )
    out_file.parent.mkdir(exist_ok=True)
    atomic_write_json(out_file, report)
    acc = report["test_accuracy"]
    once = report["train_once_vs_each"]
    steps = report["step_ms"]
    print(f"## supernet training ({args.tag}): {space.name}, {args.threads} threads")
    what = "epochs' training steps, from the checkpoint" if args.checkpoint else "wall"
    print(f"- training: {train_seconds / 60:.1f} min ({what}) for {schedule.total_epochs} epochs")
    print(
        f"- test accuracy after BN recalibration: largest {acc['largest']:.2%}, smallest "
        f"{acc['smallest']:.2%}, {args.random_subnets} random: min {acc['random_min']:.2%}, "
        f"median {acc['random_median']:.2%}, max {acc['random_max']:.2%}"
    )
    for dimension, scores in report.get("one_dimension", {}).items():
        print(f"- only {dimension} sampled: mean {scores['mean']:.2%}, min {scores['min']:.2%}")
    if pairs:
        print(
            f"- train once vs each ({len(pairs)} subnets): mean gap "
            f"{once['mean_gap_points']:.2f} points (alone minus inherited), Kendall tau "
            f"{once['kendall_tau']:.2f} (by test cross-entropy {once['kendall_tau_nll']:.2f}), "
            f"cost of training each / once = {once['cost_ratio_each_over_once']:.2f}"
        )
    if "ceiling_kendall_tau" in once:
        print(
            f"- ceiling: two stand-alone seeds agree with Kendall tau "
            f"{once['ceiling_kendall_tau']:.2f} (by cross-entropy "
            f"{once['ceiling_kendall_tau_nll']:.2f}); seeds differ by "
            f"{once['seed_spread_points']:.2f} points on average; inherited vs the mean of the "
            f"seeds: Kendall tau {once['kendall_tau_seed_mean']:.2f}"
        )
    for layout in ("nchw", "nhwc"):
        sandwich, largest = steps[f"sandwich_{layout}_ms"], steps[f"largest_{layout}_ms"]
        print(
            f"- step ({layout.upper()}): sandwich {sandwich:.0f} ms vs largest alone "
            f"{largest:.0f} ms ({sandwich / largest:.2f}x)"
        )
    print(
        f"- NHWC sandwich step on 1 thread: {steps['sandwich_nhwc_1thread_ms']:.0f} ms "
        f"({steps['sandwich_nhwc_1thread_ms'] / steps['sandwich_nhwc_ms']:.2f}x the "
        f"{args.threads}-thread step)"
    )
    print(
        f"- NHWC vs NCHW: sandwich step "
        f"{steps['sandwich_nchw_ms'] / steps['sandwich_nhwc_ms']:.2f}x faster"
    )
    print(f"written: {out_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
