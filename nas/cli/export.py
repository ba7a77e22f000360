"""``nas export``: a search's Pareto front as deployable models."""

from __future__ import annotations

import argparse
from typing import Any

from tqdm import tqdm

from nas.cli.common import RegistryChoices
from nas.defaults import DEFAULT_EXPORT_FORMAT

__all__ = ["add_parser"]


def add_parser(commands: Any) -> None:
    export = commands.add_parser("export", help="export a search's Pareto front and models")
    export.add_argument("run_dir", help="a directory written by nas search")
    export.add_argument(
        "--format",
        default=DEFAULT_EXPORT_FORMAT,
        choices=RegistryChoices("nas.export", "EXPORT_FORMATS"),
        metavar="FORMAT",
        help="file format of the models: %(choices)s (default: %(default)s)",
    )
    export.add_argument("--points", default="all", help="'all' or front points such as 0,3")
    export.add_argument("--out", help="output directory (default: RUN_DIR/export)")
    export.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nas.search.rundir import export_front

    directory = Path(args.run_dir)
    out = Path(args.out or directory / "export")
    bar: tqdm | None = None  # drawn from the first model on, so a refusal prints one line

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(desc="exporting", unit="model", total=total)
        bar.n = done
        bar.refresh()

    try:
        written = export_front(
            directory, out, fmt=args.format, points=args.points, progress=progress
        )
    finally:
        if bar is not None:
            bar.close()
    print(f"{len(written)} {args.format} model(s) with model cards in {out}")
    return 0
