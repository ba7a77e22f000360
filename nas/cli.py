"""The ``nas`` command: parses arguments, builds configs, calls the library, owns the terminal.

Every input mistake ends in one line on stderr and exit code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from tqdm import tqdm

import nas
from nas.defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_DATA,
    DEFAULT_EPOCHS,
    DEFAULT_IMAGES_PER_EPOCH,
    DEFAULT_NUM_RANDOM,
    DEFAULT_SCHEDULE,
    DEFAULT_SPACE,
    DEFAULT_WARMUP,
)
from nas.errors import UserError

__all__ = ["main"]

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit with code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _fail(message: str) -> int:
    first_line = message.strip().splitlines()[0] if message.strip() else "unknown error"
    print(f"nas: error: {first_line}", file=sys.stderr)
    return EXIT_USAGE


# ---------------------------------------------------------------------------------- commands


def _cmd_version(args: argparse.Namespace) -> int:
    import numpy
    import onnxruntime
    import torch

    print(f"nas {nas.__version__}")
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, numpy "
        f"{numpy.__version__}, onnxruntime {onnxruntime.__version__}"
    )
    return 0


def _format_count(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.0f}"


def _cmd_spaces(args: argparse.Namespace) -> int:
    import search_spaces as ss

    if args.space is None:
        rows = [(name, ss.get_space(name)) for name in ss.SPACE_NAMES]
        if args.json:
            print(json.dumps({name: space.size() for name, space in rows}, indent=2))
            return 0
        print(f"{'space':<16}{'subnets':>14}  description")
        for name, space in rows:
            default = " (default)" if name == ss.DEFAULT_SPACE else ""
            print(f"{name:<16}{space.size():>14.3e}  {space.description}{default}")
        return 0
    space = ss.get_space(args.space)
    if args.json:
        print(json.dumps({**ss.space_to_dict(space), "size": space.size()}, indent=2))
        return 0
    small, large = space.smallest(), space.largest()
    print(f"space {space.name}: {space.description}")
    print(f"  subnets      {space.size()} ({space.size():.3e})")
    print(
        f"  input        {space.in_channels} channel(s), resolution {list(space.resolution.values)}"
    )
    print(f"  classes      {space.num_classes}")
    print(
        f"  stages       {list(space.num_stages.values)} of {len(space.stages)}, "
        f"{space.min_downsamples}-{space.max_downsamples} of them with stride 2"
    )
    print(
        f"  stem         {space.stem.channels} channels, kernel {space.stem.kernel_size}, "
        f"stride {space.stem.stride}"
    )
    header = f"  {'stage':<6}{'channels':<14}{'depth':<11}{'width':<18}{'stride':<8}"
    print(header + f"{'kernel':<11}{'expand':<11}se  act")
    for index, stage in enumerate(space.stages):
        channels = [space.stage_channels(index, w) for w in stage.width_mult.values]
        print(
            f"  {index:<6}{str(channels):<14}{str(list(stage.depth.values)):<11}"
            f"{str(list(stage.width_mult.values)):<18}{str(list(stage.stride.values)):<8}"
            f"{str(list(stage.kernel_size.values)):<11}{str(list(stage.expand_ratio.values)):<11}"
            f"{'yes' if stage.se else 'no ':<4}{stage.activation}"
        )
    feature = f", features {space.head.feature_channels}" if space.head.feature_channels else ""
    print(f"  head         {space.head.channels} channels{feature}, dropout {space.head.dropout}")
    print(
        f"  FLOPs (MACs) {_format_count(space.flops(small))} (smallest) to "
        f"{_format_count(space.flops(large))} (largest)"
    )
    print(
        f"  params       {_format_count(space.params(small))} (smallest) to "
        f"{_format_count(space.params(large))} (largest)"
    )
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from nas.data import load_dataset

    dataset = load_dataset(args.source, resolution=args.resolution, seed=args.seed)
    print(
        f"{dataset.name}: {dataset.num_classes} classes, {dataset.in_channels} channel(s), "
        f"{dataset.resolution}x{dataset.resolution}; train {len(dataset.y_train)}, "
        f"val {len(dataset.y_val)}, test {len(dataset.y_test)}"
    )
    return 0


class _TerminalReporter:
    """Progress bars and notes for the search workflow."""

    def __init__(self) -> None:
        self._bar: tqdm | None = None

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def stage(self, name: str, total: int | None = None) -> Callable[[int, int], None]:
        def progress(done: int, count: int) -> None:
            if self._bar is None or self._bar.desc != name:
                self._close()
                self._bar = tqdm(total=count, desc=name, unit="item", leave=False)
            self._bar.total = count
            self._bar.n = done
            self._bar.refresh()
            if done >= count:
                self._close()

        return progress

    def note(self, text: str) -> None:
        self._close()
        tqdm.write(text)

    def step(self, result: Any) -> None:
        self.stage(f"training epoch {result.epoch + 1}")(result.step, result.steps)

    def epoch(self, result: Any) -> None:
        self._close()
        tqdm.write(
            f"  epoch {result.epoch} ({result.phase}): loss {result.loss:.4f}, largest "
            f"{result.largest_accuracy:.2%}, smallest {result.smallest_accuracy:.2%} (val)"
        )


def _cmd_search(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    import search_spaces as ss
    from nas.data import load_dataset
    from nas.measure import MeasureConfig
    from nas.search import SearchConfig
    from nas.search.run import SearchRequest, search
    from nas.search.targets import parse_constraints

    constraints = parse_constraints(args.target)
    space = ss.get_space(args.space)
    measure = MeasureConfig(runtime=args.runtime, threads=args.threads, batch_size=args.batch_size)
    config = SearchConfig(
        strategy=args.strategy,
        evaluations=args.evaluations,
        objectives=tuple(args.objective or ("accuracy", "latency")),
        seed=args.seed,
    )
    if args.resume and not args.out:
        raise UserError("--resume needs the --out of the search to continue")
    out = Path(args.out or f"runs/search-{space.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    dataset = load_dataset(
        args.data,
        resolution=max(space.resolution.values),
        seed=args.seed,
        expect=(space.in_channels, space.num_classes, f"space {space.name!r}"),
    )
    if dataset.in_channels != space.in_channels or dataset.num_classes != space.num_classes:
        raise UserError(
            f"data {args.data!r} has {dataset.in_channels} channel(s) and {dataset.num_classes} "
            f"classes but space {space.name!r} expects {space.in_channels} and "
            f"{space.num_classes}; pick a matching --space or --data"
        )
    print(
        f"targets: {', '.join(str(c) for c in constraints)}; space {space.name} "
        f"({space.size():.3e} subnets); data {dataset.name}; results in {out}"
    )
    request = SearchRequest(
        space=space,
        dataset=dataset,
        constraints=constraints,
        measure=measure,
        search=config,
        workdir=Path(args.workdir),
        out=out,
        resume=args.resume,
        device=args.device,
    )
    outcome = search(request, _TerminalReporter())
    result, chosen = outcome.result, outcome.chosen
    print(
        f"{len(result.genomes)} subnets scored by the predictors, {int(result.feasible.sum())} "
        f"feasible; front of {len(result.front)} points, hypervolume {result.hypervolume:.4g}"
    )
    print(
        f"{'point':>5} {'pred acc':>9} {'pred ms':>8} {'meas ms':>8} {'val acc':>9} "
        f"{'MACs':>8} {'params':>8}"
    )
    for row in outcome.rows[:12]:
        measured = row["measured_latency_ms"]
        test = row["val_accuracy"]
        print(
            f"{row['point']:>5} {row['predicted_accuracy']:>9.2%} "
            f"{row.get('predicted_latency', float('nan')):>8.3f} "
            f"{'' if measured is None else f'{measured:.3f}':>8} "
            f"{'' if test is None else f'{test:.2%}':>9} "
            f"{_format_count(row['predicted_flops']):>8} "
            f"{_format_count(row['predicted_params']):>8}"
        )
    if len(outcome.rows) > 12:
        print(f"  ... {len(outcome.rows) - 12} more points in {out / 'pareto.csv'}")
    print("measured for real (latency on this machine, accuracy after BN recalibration):")
    print(f"{'':>9} {'meas ms':>8} {'val acc':>8} {'test acc':>8} {'MACs':>8}  targets")
    measured = sorted(outcome.verified, key=lambda v: v.measured_latency_ms)
    named = [("front", v) for v in measured] + list(outcome.references.items())
    for name, verified in named:
        if verified is chosen:
            name = "chosen"
        flops = space.flops(ss.Arch.from_dict(verified.arch))
        print(
            f"{name:>9} {verified.measured_latency_ms:>8.3f} {verified.val_accuracy:>8.2%} "
            f"{verified.test_accuracy or 0.0:>8.2%} {_format_count(flops):>8}  "
            f"{'met' if verified.meets_targets else 'missed'}"
        )
    assert chosen is not None
    print(
        f"chosen: val accuracy {chosen.val_accuracy:.2%}, test accuracy "
        f"{chosen.test_accuracy or 0.0:.2%}, measured latency "
        f"{chosen.measured_latency_ms:.3f} ms ({measure.runtime}, {measure.threads} thread(s), "
        f"batch {measure.batch_size}); model {outcome.model}"
    )
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    import search_spaces as ss
    from nas.data import load_dataset
    from nas.export import export_model
    from nas.search.run import front_points, read_run, select
    from nas.search.workdir import Workdir
    from nas.train import load_supernet

    run = Path(args.run_dir)
    settings = read_run(run)
    rows = select(front_points(run), args.points)
    space = ss.get_space(settings["space"])
    supernet, _ = load_supernet(Workdir(Path(settings["workdir"]), space.name).supernet)
    dataset = load_dataset(
        settings["data"], resolution=max(space.resolution.values), seed=settings["seed"]
    )
    out = Path(args.out or run / "export")
    suffix = {"onnx": "onnx", "torchscript": "pt", "safetensors": "safetensors"}[args.format]
    for row in tqdm(rows, desc="exporting", unit="model"):
        arch = ss.Arch.from_dict(row["arch"])
        card = {k: v for k, v in row.items() if k not in ("arch",)}
        export_model(
            supernet,
            space,
            arch,
            out / f"point-{row['point']:03d}.{suffix}",
            fmt=args.format,
            dataset=dataset,
            card=card,
        )
    for name in ("pareto.csv", "pareto.json", "pareto.png"):
        if (run / name).exists() and out != run:
            (out / name).write_bytes((run / name).read_bytes())
    print(f"{len(rows)} {args.format} model(s) with model cards in {out}")
    return 0


def _budget_images(
    space: Any, dataset: Any, schedule: Any, config: Any, budget: float, out: str
) -> int:
    """Images per epoch for ``--budget``: the checkpoint's own when resuming one, else sized
    from timed steps on this machine."""
    from pathlib import Path

    from nas.train import CHECKPOINT_FILE, images_for_budget, load_checkpoint

    if (Path(out) / CHECKPOINT_FILE).exists():
        saved = load_checkpoint(out).metadata.get("config", {}).get("images_per_epoch")
        if saved:
            return int(saved)
    print(f"timing a few steps to fit {schedule.total_epochs} epochs into {budget:.0f} s ...")
    count = images_for_budget(space, dataset, schedule, config, budget)
    print(f"{count} images per epoch fit the budget")
    return count


def _cmd_train(args: argparse.Namespace) -> int:
    import dataclasses

    import search_spaces as ss
    from nas.data import load_dataset
    from nas.train import (
        EpochResult,
        StepResult,
        TrainConfig,
        make_schedule,
        parse_duration,
        train_supernet,
    )

    space = ss.get_space(args.space)
    budget = None if args.budget is None else parse_duration(args.budget)
    if args.images_per_epoch < 0:
        raise UserError(
            f"--images-per-epoch must be >= 0 (0: the whole train split), got "
            f"{args.images_per_epoch}"
        )
    schedule = make_schedule(args.schedule, epochs=args.epochs, lr=args.lr, warmup=args.warmup)
    config = TrainConfig(
        batch_size=args.batch_size,
        sandwich=not args.no_sandwich,
        num_random=args.num_random,
        inplace_distillation=not args.no_distill,
        seed=args.seed,
        device=args.device,
        threads=args.threads,
        images_per_epoch=args.images_per_epoch or None,
    )
    out = args.out or f"runs/supernet-{space.name}"
    dataset = load_dataset(
        args.data,
        resolution=max(space.resolution.values),
        seed=args.seed,
        expect=(space.in_channels, space.num_classes, f"space {space.name!r}"),
    )
    if budget is not None:
        config = dataclasses.replace(
            config, images_per_epoch=_budget_images(space, dataset, schedule, config, budget, out)
        )
    print(
        f"training the {space.name} supernet on {dataset.name} ({len(dataset.y_train)} images): "
        f"{schedule.total_epochs} epochs in phases "
        + ", ".join(f"{p.name}x{p.epochs}" for p in schedule.phases)
        + f"; checkpoints in {out}"
    )
    bar: tqdm | None = None

    def on_step(step: StepResult) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=step.steps, desc=f"epoch {step.epoch + 1}", unit="step", leave=False)
        bar.update(1)
        bar.set_postfix(loss=f"{step.loss:.3f}")

    def on_epoch(result: EpochResult) -> None:
        nonlocal bar
        if bar is not None:
            bar.close()
            bar = None
        tqdm.write(
            f"epoch {result.epoch}/{schedule.total_epochs} ({result.phase}): loss "
            f"{result.loss:.4f}, largest {result.largest_accuracy:.2%}, smallest "
            f"{result.smallest_accuracy:.2%} (val), {result.seconds:.1f} s"
        )

    train_supernet(
        space,
        dataset,
        schedule,
        config,
        out,
        resume=args.resume,
        on_step=on_step,
        on_epoch=on_epoch,
    )
    print(f"supernet saved in {out}")
    return 0


def _latency_dir(args: argparse.Namespace, space_name: str) -> str:
    return str(args.out or f"runs/latency-{space_name}")


def _cmd_latency_profile(args: argparse.Namespace) -> int:
    import search_spaces as ss
    from nas.measure import MeasureConfig
    from nas.measure.latency import ProfileConfig, profile

    space = ss.get_space(args.space)
    measure = MeasureConfig(
        runtime=args.runtime,
        threads=args.threads,
        batch_size=args.batch_size,
        warmup=args.warmup,
        repeats=args.repeats,
        rounds=args.rounds,
    )
    config = ProfileConfig(measure=measure, subnets=args.subnets, seed=args.seed, table=args.table)
    out = _latency_dir(args, space.name)
    bar = tqdm(desc="measuring", unit="item")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        records = profile(space, config, out, progress=progress)
    finally:
        bar.close()
    latency = [r.median_ms for r in records]
    print(
        f"{len(records)} subnets measured in {out} ({measure.runtime}, {measure.threads} "
        f"thread(s), batch {measure.batch_size}): {min(latency):.3f}-{max(latency):.3f} ms"
    )
    return 0


def _cmd_latency_fit(args: argparse.Namespace) -> int:
    import search_spaces as ss
    from nas.measure.latency import fit

    space = ss.get_space(args.space)
    path = fit(space, _latency_dir(args, space.name), kind=args.kind, seed=args.seed)
    print(f"{args.kind} latency predictor saved to {path}")
    return 0


def _cmd_latency_show(args: argparse.Namespace) -> int:
    from nas.measure.latency import describe

    for line in describe(args.file):
        print(line)
    return 0


def _cmd_latency_report(args: argparse.Namespace) -> int:
    import search_spaces as ss
    from nas.measure.latency import report

    space = ss.get_space(args.space)
    out = _latency_dir(args, space.name)
    plot = args.plot or f"{out}/latency-report.png"
    scores = report(space, out, holdout=args.holdout, seed=args.seed, plot=plot)
    print(f"{'predictor':<10}{'within 10%':>12}{'Kendall tau':>13}{'RMSE ms':>10}")
    for kind, score in scores.items():
        print(
            f"{kind:<10}{score['within_tolerance']:>12.1%}{score['kendall_tau']:>13.3f}"
            f"{score['rmse']:>10.4f}"
        )
    print(f"predicted vs measured: {plot}")
    return 0


# ---------------------------------------------------------------------------------- parser


def _add_measure_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runtime",
        default="onnxruntime",
        choices=("onnxruntime", "torch"),
        help="runtime that latency is measured on (default: onnxruntime)",
    )
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default: 1)")
    parser.add_argument("--batch-size", type=int, default=1, help="batch size (default: 1)")


_COMPRESS_COMMANDS = {
    "prune": "structured channel pruning of any checkpoint",
    "quantize": "int8 post-training quantization for ONNX Runtime",
    "distill": "knowledge distillation from a teacher",
    "compress": "distill, prune, quantize and measure a searched subnet",
}


def _add_compress_commands(commands: Any, *, full: bool) -> None:
    """The compression commands. Their options need torch and torch-pruning, so they are only
    built when one of them is run; otherwise each is listed by name and help alone."""
    if not full:
        for name, help_text in _COMPRESS_COMMANDS.items():
            commands.add_parser(name, help=help_text)
        return
    from compress.cli import (
        add_compress_arguments,
        add_distill_arguments,
        add_prune_arguments,
        add_quantize_arguments,
        run_compress,
        run_distill,
        run_prune,
        run_quantize,
    )

    builders = {
        "prune": (add_prune_arguments, run_prune),
        "quantize": (add_quantize_arguments, run_quantize),
        "distill": (add_distill_arguments, run_distill),
        "compress": (add_compress_arguments, run_compress),
    }
    for name, help_text in _COMPRESS_COMMANDS.items():
        add, run = builders[name]
        sub = commands.add_parser(name, help=help_text)
        add(sub)
        sub.set_defaults(handler=run)


def build_parser(*, full: bool = True) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nas",
        description="Neural architecture search and compression for PyTorch.",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    version = commands.add_parser("version", help="print the toolkit and library versions")
    version.set_defaults(handler=_cmd_version)

    spaces = commands.add_parser("spaces", help="list the search spaces, or describe one")
    spaces.add_argument("space", nargs="?", help="a built-in space name or a .yaml/.json file")
    spaces.add_argument("--json", action="store_true", help="print JSON")
    spaces.set_defaults(handler=_cmd_spaces)

    data = commands.add_parser("data", help="load a data set and describe its splits")
    data.add_argument(
        "source",
        nargs="?",
        default=DEFAULT_DATA,
        help="fashion-mnist (default), digits, or a CIFAR-10/MNIST directory, image folder or .npz",
    )
    data.add_argument("--resolution", type=int, default=32, help="image size (default: 32)")
    data.add_argument("--seed", type=int, default=0, help="split seed (default: 0)")
    data.set_defaults(handler=_cmd_data)

    train = commands.add_parser(
        "train",
        help="train the elastic supernet of a space once",
        description="Train the supernet; a checkpoint is written after every epoch.",
    )
    train.add_argument(
        "--space", default=DEFAULT_SPACE, help=f"space name or file (default: {DEFAULT_SPACE})"
    )
    train.add_argument("--data", default=DEFAULT_DATA, help=f"data set (default: {DEFAULT_DATA})")
    train.add_argument("--out", help="checkpoint directory (default: runs/supernet-SPACE)")
    train.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    train.add_argument(
        "--schedule",
        default=DEFAULT_SCHEDULE,
        choices=("progressive", "all"),
        help="all: every dimension elastic after the warm-up (default); progressive: kernel, "
        "then depth, width, pyramid",
    )
    train.add_argument(
        "--epochs",
        type=int,
        default=DEFAULT_EPOCHS,
        help=f"total epochs, warm-up included (default: {DEFAULT_EPOCHS})",
    )
    train.add_argument(
        "--warmup",
        type=int,
        default=DEFAULT_WARMUP,
        help="epochs of the largest subnet alone before shrinking (delayed "
        f"shrinking; default: {DEFAULT_WARMUP})",
    )
    train.add_argument("--lr", type=float, default=0.1, help="peak learning rate (default: 0.1)")
    train.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"batch size (default: {DEFAULT_BATCH_SIZE})",
    )
    train.add_argument(
        "--images-per-epoch",
        type=int,
        default=DEFAULT_IMAGES_PER_EPOCH,
        help="training images drawn afresh each epoch; 0 for the whole train split "
        f"(default: {DEFAULT_IMAGES_PER_EPOCH})",
    )
    train.add_argument(
        "--budget",
        help="fit the schedule into this much time on this machine, e.g. 10m, 90s or 1.5h: "
        "sets the images per epoch from a few timed steps (recorded, so --resume is exact)",
    )
    train.add_argument(
        "--num-random",
        type=int,
        default=DEFAULT_NUM_RANDOM,
        help="random subnets per step besides the largest and smallest "
        f"(default: {DEFAULT_NUM_RANDOM})",
    )
    train.add_argument(
        "--no-sandwich",
        action="store_true",
        help="train only random subnets each step (no largest/smallest)",
    )
    train.add_argument(
        "--no-distill",
        action="store_true",
        help="learn from labels only (no in-place distillation from the largest)",
    )
    train.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    train.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    train.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    train.set_defaults(handler=_cmd_train)

    latency = commands.add_parser(
        "latency", help="measure subnets on this machine and build latency predictors"
    )
    latency_commands = latency.add_subparsers(
        dest="latency_command", metavar="COMMAND", parser_class=_Parser
    )
    profile = latency_commands.add_parser(
        "profile", help="measure subnets (resumable: a rerun measures only what is missing)"
    )
    profile.add_argument(
        "--space", default=DEFAULT_SPACE, help=f"space name or file (default: {DEFAULT_SPACE})"
    )
    profile.add_argument("--out", help="profile directory (default: runs/latency-SPACE)")
    profile.add_argument("--subnets", type=int, default=150, help="subnets to measure")
    profile.add_argument(
        "--table", action="store_true", help="also measure their operators, for a lookup table"
    )
    profile.add_argument("--warmup", type=int, default=10, help="untimed runs (default: 10)")
    profile.add_argument("--repeats", type=int, default=50, help="timed runs (default: 50)")
    profile.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="rounds the timed runs are split into; rounds slowed by other processes are "
        "dropped and measured again (default: 5)",
    )
    profile.add_argument("--seed", type=int, default=0, help="which subnets (default: 0)")
    _add_measure_options(profile)
    profile.set_defaults(handler=_cmd_latency_profile)
    fit = latency_commands.add_parser("fit", help="fit a latency predictor to a profile")
    fit.add_argument(
        "--space", default=DEFAULT_SPACE, help=f"space name or file (default: {DEFAULT_SPACE})"
    )
    fit.add_argument("--out", help="profile directory (default: runs/latency-SPACE)")
    fit.add_argument(
        "--kind",
        default="learned",
        choices=("learned", "table", "flops"),
        help="learned regressor, operator lookup table, or FLOPs line",
    )
    fit.add_argument("--seed", type=int, default=0, help="cross-validation seed (default: 0)")
    fit.set_defaults(handler=_cmd_latency_fit)
    show = latency_commands.add_parser("show", help="describe a saved predictor file")
    show.add_argument("file", help="a predictor JSON file")
    show.set_defaults(handler=_cmd_latency_show)
    report = latency_commands.add_parser(
        "report", help="held-out accuracy of each predictor kind and a scatter plot"
    )
    report.add_argument(
        "--space", default=DEFAULT_SPACE, help=f"space name or file (default: {DEFAULT_SPACE})"
    )
    report.add_argument("--out", help="profile directory (default: runs/latency-SPACE)")
    report.add_argument("--holdout", type=float, default=0.25, help="held-out share")
    report.add_argument("--plot", help="PNG path (default: OUT/latency-report.png)")
    report.add_argument("--seed", type=int, default=0, help="split seed (default: 0)")
    report.set_defaults(handler=_cmd_latency_report)

    search = commands.add_parser(
        "search",
        help="search subnets under targets such as latency<10ms",
        description="Search the space for subnets that meet every --target; builds the "
        "supernet and the predictors first when the work directory lacks them.",
    )
    search.add_argument(
        "--target",
        action="append",
        required=True,
        metavar="TARGET",
        help="a target such as latency<10ms, params<1M, flops<=50M, size<2MB, accuracy>0.95; "
        "repeat or separate with commas",
    )
    search.add_argument(
        "--objective",
        action="append",
        choices=("accuracy", "latency", "flops", "params", "size"),
        help="objectives (default: accuracy and latency)",
    )
    search.add_argument(
        "--strategy",
        default="nsga2",
        help="nsga2 (default), evolution, random, tpe, gp or optuna-nsga2",
    )
    search.add_argument(
        "--evaluations", type=int, default=20_000, help="predictor evaluations (default: 20000)"
    )
    search.add_argument(
        "--space", default=DEFAULT_SPACE, help=f"space name or file (default: {DEFAULT_SPACE})"
    )
    search.add_argument("--data", default=DEFAULT_DATA, help=f"data set (default: {DEFAULT_DATA})")
    search.add_argument(
        "--workdir",
        default="runs",
        help="where the supernet and predictors are kept (default: runs)",
    )
    search.add_argument("--out", help="run directory (default: runs/search-SPACE-TIME)")
    search.add_argument("--resume", action="store_true", help="continue the search in --out")
    search.add_argument("--device", default="cpu", help="device for training (default: cpu)")
    search.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    _add_measure_options(search)
    search.set_defaults(handler=_cmd_search)

    export = commands.add_parser("export", help="export a search's Pareto front and models")
    export.add_argument("run_dir", help="a directory written by nas search")
    export.add_argument("--format", default="onnx", choices=("onnx", "torchscript", "safetensors"))
    export.add_argument("--points", default="all", help="'all' or front points such as 0,3")
    export.add_argument("--out", help="output directory (default: RUN_DIR/export)")
    export.set_defaults(handler=_cmd_export)

    _add_compress_commands(commands, full=full)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import search_spaces as ss

    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(full=any(word in _COMPRESS_COMMANDS for word in words))
    args = parser.parse_args(words)
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
    )
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        if args.command is not None:
            parser.parse_args([args.command, "--help"])
        parser.print_help()
        return EXIT_USAGE
    try:
        return handler(args)
    except (UserError, ss.SpaceError, ss.ArchError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
