"""``nas export``: a search's Pareto front as deployable models."""

from __future__ import annotations

import argparse
from typing import Any

from tqdm import tqdm

__all__ = ["add_parser"]


def add_parser(commands: Any) -> None:
    export = commands.add_parser("export", help="export a search's Pareto front and models")
    export.add_argument("run_dir", help="a directory written by nas search")
    export.add_argument("--format", default="onnx", choices=("onnx", "torchscript", "safetensors"))
    export.add_argument("--points", default="all", help="'all' or front points such as 0,3")
    export.add_argument("--out", help="output directory (default: RUN_DIR/export)")
    export.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
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
