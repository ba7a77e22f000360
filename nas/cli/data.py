"""``nas data``: load a data set and describe its splits."""

from __future__ import annotations

import argparse
from typing import Any

from nas.defaults import (
    DEFAULT_DATA,
)

__all__ = ["add_parser"]


def add_parser(commands: Any) -> None:
    data = commands.add_parser("data", help="load a data set and describe its splits")
    data.add_argument(
        "source",
        nargs="?",
        default=DEFAULT_DATA,
        help="fashion-mnist (default), digits, or a CIFAR-10/MNIST directory, image folder or .npz",
    )
    data.add_argument("--resolution", type=int, default=32, help="image size (default: 32)")
    data.add_argument("--seed", type=int, default=0, help="split seed (default: 0)")
    data.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from nas.data import load_dataset

    dataset = load_dataset(args.source, resolution=args.resolution, seed=args.seed)
    print(
        f"{dataset.name}: {dataset.num_classes} classes, {dataset.in_channels} channel(s), "
        f"{dataset.resolution}x{dataset.resolution}; train {len(dataset.y_train)}, "
        f"val {len(dataset.y_val)}, test {len(dataset.y_test)}"
    )
    return 0
