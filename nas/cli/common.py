"""What every command module shares: the one-line-error parser, the exit code of usage errors,
measurement options, number formatting and the search's progress bars."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn, overload

from tqdm import tqdm

from nas.defaults import DEFAULT_RUNTIME, DEFAULT_THREADS

__all__ = [
    "EXIT_USAGE",
    "Parser",
    "RegistryChoices",
    "TerminalReporter",
    "add_backend_options",
    "add_measure_options",
    "backend_from_args",
    "fail",
    "format_count",
]

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit with code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        # A registry name is refused as the library refuses it ("unknown strategy 'x'; choose
        # one of ..."), so a bad name reads the same from the command line and from a config.
        if not isinstance(action.choices, RegistryChoices):
            super()._check_value(action, value)
        elif value not in action.choices:
            names = ", ".join(str(choice) for choice in action.choices)
            kind = action.metavar if isinstance(action.metavar, str) else action.dest
            kind = kind.lower().replace("_", " ")
            raise argparse.ArgumentError(action, f"unknown {kind} {value!r}; choose one of {names}")


class RegistryChoices(Sequence[str]):
    """The names in a registry (``module.attribute``: a mapping or a sequence of names), as
    argparse ``choices``: the names are written in one place, the registry.

    The module is imported only when argparse checks a value or lists the names, so building
    the parser imports nothing heavy. Give the option a ``metavar`` (else argparse lists the
    names as it adds the option) and write ``%(choices)s`` in its help to list them there."""

    def __init__(self, module: str, attribute: str) -> None:
        self._module = module
        self._attribute = attribute
        self._names: tuple[str, ...] | None = None

    def names(self) -> tuple[str, ...]:
        if self._names is None:
            registry = getattr(importlib.import_module(self._module), self._attribute)
            self._names = tuple(str(name) for name in registry)
        return self._names

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self.names()[index]

    def __len__(self) -> int:
        return len(self.names())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, value: object) -> bool:
        return value in self.names()

    def __repr__(self) -> str:
        return f"RegistryChoices({self._module}.{self._attribute})"


def fail(message: str) -> int:
    first_line = message.strip().splitlines()[0] if message.strip() else "unknown error"
    print(f"nas: error: {first_line}", file=sys.stderr)
    return EXIT_USAGE


def format_count(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f}{unit}"
    return f"{value:.0f}"


def add_measure_options(parser: argparse.ArgumentParser, *, several: bool = False) -> None:
    """``--runtime``, ``--threads`` and ``--batch-size``; with ``several``, ``--runtime`` takes
    a comma-separated list (a tuple of names)."""
    runtimes = RegistryChoices("nas.measure.timing", "RUNTIMES")
    if several:
        parser.add_argument(
            "--runtime",
            default=DEFAULT_RUNTIME,
            type=lambda text: _runtime_list(text, runtimes),
            metavar="RUNTIME[,RUNTIME...]",
            help="runtime that latency is measured on: onnxruntime, openvino...; several, "
            "comma-separated, search on each and choose among their choices (default: "
            "%(default)s)",
        )
    else:
        parser.add_argument(
            "--runtime",
            default=DEFAULT_RUNTIME,
            choices=runtimes,
            metavar="RUNTIME",
            help="runtime that latency is measured on: %(choices)s (default: %(default)s)",
        )
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help=f"intra-op threads (default: {DEFAULT_THREADS})",
    )
    parser.add_argument("--batch-size", type=int, default=1, help="batch size (default: 1)")


def _runtime_list(text: str, runtimes: RegistryChoices) -> tuple[str, ...]:
    """``--runtime a,b`` as a tuple of known runtime names, each once."""
    names = tuple(name.strip() for name in text.split(","))
    unknown = [name for name in names if name not in runtimes]
    if unknown or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"{text!r}: name runtimes among {', '.join(runtimes)}, each once, separated by commas"
        )
    return names


def add_search_options(
    parser: argparse.ArgumentParser, *, strategy: str, budget: Callable[[], None], out: str
) -> None:
    """The options ``nas search`` and ``nas tune`` share: targets, objectives, strategy (default
    ``strategy``), then ``budget()`` adds the command's own budget option, then space, data,
    work directory, run directory (``out`` names its default), resume, device and seed."""
    from nas.defaults import DEFAULT_DATA, DEFAULT_OBJECTIVES, DEFAULT_SPACE, DEFAULT_WORKDIR

    parser.add_argument(
        "--target",
        action="append",
        required=True,
        metavar="TARGET",
        help="a target such as latency<10ms, params<1M, flops<=50M, size<2MB, accuracy>0.95; "
        "repeat or separate with commas",
    )
    parser.add_argument(
        "--objective",
        action="append",
        choices=RegistryChoices("nas.search.loop", "METRICS"),
        metavar="OBJECTIVE",
        help=f"%(choices)s (default: {' and '.join(DEFAULT_OBJECTIVES)}); repeat for several",
    )
    parser.add_argument(
        "--strategy",
        default=strategy,
        choices=RegistryChoices("nas.strategies", "STRATEGIES"),
        metavar="STRATEGY",
        help="search strategy: %(choices)s (default: %(default)s)",
    )
    budget()
    parser.add_argument(
        "--space", default=DEFAULT_SPACE, help=f"space name or file (default: {DEFAULT_SPACE})"
    )
    parser.add_argument("--data", default=DEFAULT_DATA, help=f"data set (default: {DEFAULT_DATA})")
    parser.add_argument(
        "--workdir",
        default=DEFAULT_WORKDIR,
        help=f"where the supernet and predictors are kept (default: {DEFAULT_WORKDIR})",
    )
    parser.add_argument("--out", help=f"run directory (default: {out})")
    parser.add_argument("--resume", action="store_true", help="continue the search in --out")
    parser.add_argument("--device", default="cpu", help="device for training (default: cpu)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def add_backend_options(parser: argparse.ArgumentParser, *, workers: str) -> None:
    """``--backend local|ray``, ``--address``, ``--workers`` (``workers`` says what they are)."""
    parser.add_argument(
        "--backend",
        default="local",
        choices=("local", "ray"),
        help="where the work runs: here, or on a Ray cluster (the ray extra; README "
        '"Running on a cluster") (default: %(default)s)',
    )
    parser.add_argument(
        "--address",
        help="Ray cluster to join: HOST:PORT of its head, ray://HOST:PORT, or auto (default: a "
        "one-node cluster started for this command)",
    )
    parser.add_argument("--workers", type=int, help=workers)


def backend_from_args(args: argparse.Namespace) -> Any:
    """The :class:`nas.distributed.Backend` of the options :func:`add_backend_options` adds."""
    from nas.distributed.backend import Backend

    return Backend(
        kind=args.backend,
        address=args.address,
        workers=args.workers,
        max_failures=getattr(args, "max_failures", 0),
    )


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
