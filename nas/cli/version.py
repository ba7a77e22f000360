"""``nas version``: the toolkit's and its libraries' versions."""

from __future__ import annotations

import argparse
import platform
from typing import Any

import nas

__all__ = ["add_parser"]


def add_parser(commands: Any) -> None:
    version = commands.add_parser("version", help="print the toolkit and library versions")
    version.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import numpy
    import onnxruntime
    import torch

    print(f"nas {nas.__version__}")
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, numpy "
        f"{numpy.__version__}, onnxruntime {onnxruntime.__version__}"
    )
    return 0
