"""``nas latency profile|fit|show|report``: measure subnets on this machine and build latency
predictors."""

from __future__ import annotations

import argparse
from typing import Any

from tqdm import tqdm

from nas.cli.common import Parser, RegistryChoices, add_measure_options
from nas.defaults import DEFAULT_REPEATS, DEFAULT_ROUNDS, DEFAULT_SPACE, DEFAULT_WARMUP_RUNS

__all__ = ["add_parser"]


def add_parser(commands: Any) -> None:
    latency = commands.add_parser(
        "latency", help="measure subnets on this machine and build latency predictors"
    )
    latency_commands = latency.add_subparsers(
        dest="latency_command", metavar="COMMAND", parser_class=Parser
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
    profile.add_argument(
        "--warmup",
        type=int,
        default=DEFAULT_WARMUP_RUNS,
        help=f"untimed runs (default: {DEFAULT_WARMUP_RUNS})",
    )
    profile.add_argument(
        "--repeats",
        type=int,
        default=DEFAULT_REPEATS,
        help=f"timed runs (default: {DEFAULT_REPEATS})",
    )
    profile.add_argument(
        "--rounds",
        type=int,
        default=DEFAULT_ROUNDS,
        help="rounds the timed runs are split into, each anchored to a reference network timed "
        f"beside it (default: {DEFAULT_ROUNDS})",
    )
    profile.add_argument(
        "--raw",
        action="store_true",
        help="time without the reference network (for a device whose speed does not change; "
        "rounds slowed by other processes are then dropped and measured again)",
    )
    profile.add_argument("--seed", type=int, default=0, help="which subnets (default: 0)")
    add_measure_options(profile)
    profile.set_defaults(handler=run_profile)
    fit = latency_commands.add_parser(
        "fit",
        help="fit a latency predictor to a profile (and to the subnets searches measured "
        "there, verified.jsonl)",
    )
    fit.add_argument(
        "--space", default=DEFAULT_SPACE, help=f"space name or file (default: {DEFAULT_SPACE})"
    )
    fit.add_argument("--out", help="profile directory (default: runs/latency-SPACE)")
    fit.add_argument(
        "--kind",
        default="learned",
        choices=RegistryChoices("nas.measure.latency", "LATENCY_KINDS"),
        metavar="KIND",
        help="%(choices)s: learned regressor, operator lookup table, or FLOPs line "
        "(default: %(default)s)",
    )
    fit.add_argument("--seed", type=int, default=0, help="cross-validation seed (default: 0)")
    fit.set_defaults(handler=run_fit)
    show = latency_commands.add_parser("show", help="describe a saved predictor file")
    show.add_argument("file", help="a predictor JSON file")
    show.set_defaults(handler=run_show)
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
    report.set_defaults(handler=run_report)


def _latency_dir(args: argparse.Namespace, space_name: str) -> str:
    return str(args.out or f"runs/latency-{space_name}")


def run_profile(args: argparse.Namespace) -> int:
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
        anchored=not args.raw,
    )
    config = ProfileConfig(measure=measure, subnets=args.subnets, seed=args.seed, table=args.table)
    out = _latency_dir(args, space.name)
    bar: tqdm | None = None  # drawn from the first measurement on, so a refusal prints one line

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(desc="measuring", unit="item")
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        records = profile(space, config, out, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    latency = [r.median_ms for r in records]
    print(
        f"{len(records)} subnets measured in {out} ({measure.runtime}, {measure.threads} "
        f"thread(s), batch {measure.batch_size}): {min(latency):.3f}-{max(latency):.3f} ms"
    )
    return 0


def run_fit(args: argparse.Namespace) -> int:
    import search_spaces as ss
    from nas.measure.latency import fit

    space = ss.get_space(args.space)
    path = fit(space, _latency_dir(args, space.name), kind=args.kind, seed=args.seed)
    print(f"{args.kind} latency predictor saved to {path}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from nas.measure.latency import describe

    for line in describe(args.file):
        print(line)
    return 0


def run_report(args: argparse.Namespace) -> int:
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
