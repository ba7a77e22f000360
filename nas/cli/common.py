"""What every command module shares: the one-line-error parser, the exit code of usage errors,
measurement options, number formatting and the search's progress bars."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from tqdm import tqdm

__all__ = [
    "EXIT_USAGE",
    "Parser",
    "TerminalReporter",
    "add_measure_options",
    "fail",
    "format_count",
]

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit with code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def fail(message: str) -> int:
    first_line = message.strip().splitlines()[0] if message.strip() else "unknown error"
    print(f"nas: error: {first_line}", file=sys.stderr)
    return EXIT_USAGE


def format_count(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.0f}"


def add_measure_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runtime",
        default="onnxruntime",
        choices=("onnxruntime", "torch"),
        help="runtime that latency is measured on (default: onnxruntime)",
    )
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default: 1)")
    parser.add_argument("--batch-size", type=int, default=1, help="batch size (default: 1)")


class TerminalReporter:
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
