"""The ``nas`` command: parses arguments, builds configs, calls the library, owns the terminal.

One module per command (arguments beside the handler): :mod:`nas.cli.version`,
:mod:`~nas.cli.spaces`, :mod:`~nas.cli.data`, :mod:`~nas.cli.train`, :mod:`~nas.cli.latency`,
:mod:`~nas.cli.search`, :mod:`~nas.cli.export`; the compression commands live in
:mod:`compress.cli`. Every input mistake ends in one line on stderr and exit code 2, without a
traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from nas.cli import data, export, latency, search, spaces, train, tune, version
from nas.cli.common import EXIT_USAGE, Parser, fail
from nas.errors import UserError, first_line

__all__ = ["EXIT_USAGE", "build_parser", "main"]


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
    parser = Parser(
        prog="nas",
        description="Neural architecture search and compression for PyTorch.",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in (version, spaces, data, train, latency, search, tune, export):
        module.add_parser(commands)
    _add_compress_commands(commands, full=full)
    return parser


def _show_warning(
    message: Warning | str, category: type[Warning], *_: object, **__: object
) -> None:
    """Python warnings on the terminal as one line each, without the source line, printed
    above any progress bar (not into it)."""
    from tqdm import tqdm

    tqdm.write(f"warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    import search_spaces as ss

    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(full=any(word in _COMPRESS_COMMANDS for word in words))
    args = parser.parse_args(words)
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
    )
    warnings.showwarning = _show_warning
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        if args.command is not None:
            parser.parse_args([args.command, "--help"])
        parser.print_help()
        return EXIT_USAGE
    try:
        return handler(args)
    except (UserError, ss.SpaceError, ss.ArchError) as exc:
        return fail(str(exc))
    except OSError as exc:  # an unwritable or full disk, a file removed under us, ...
        where = f"{exc.filename}: " if exc.filename else ""
        reason = exc.strerror or first_line(exc)
        return fail(f"{where}{reason}; check the path, its permissions and the free disk space")
    except KeyboardInterrupt:
        return fail("interrupted")
