"""A finished search's run directory: its settings, its Pareto front, and its subnets as models.

``nas search`` writes ``search.json`` (the space, work directory, data and seed) and
``pareto.json`` (the front and the chosen subnet) in its run directory. This module reads them
back for the later stages: :func:`export_front` (``nas export``) writes the front's subnets as
deployable files, and :func:`load_run_subnet` (``nas compress``) gives one subnet, with the
largest subnet as its teacher, ready to compress. Subnets are taken out of the supernet in the
work directory with batch norm recalibrated on training images.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from nas.data import load_dataset
from nas.defaults import DEFAULT_DATA
from nas.errors import UserError, first_line
from nas.export import EXPORT_SUFFIXES, export_model
from nas.files import check_writable_directory
from nas.measure.precision import float_arch
from nas.measure.timing import openvino_precision
from nas.search.workdir import Workdir
from nas.train import load_supernet, recalibrated
from search_spaces import Arch, ArchError, Space, SpaceError, get_space

__all__ = [
    "RUN_FILE",
    "RunSubnet",
    "export_front",
    "front_points",
    "load_run_subnet",
    "read_run",
    "run_arch",
    "select",
]

RUN_FILE = "search.json"
FRONT_FILE = "pareto.json"
# Written by nas search beside the front; copied next to the exported models.
FRONT_SUMMARIES = ("pareto.csv", "pareto.json", "pareto.png")


def read_run(directory: Path) -> dict[str, Any]:
    """The settings of the search run in ``directory`` (its ``search.json``)."""
    path = directory / RUN_FILE
    if not path.is_file():
        raise UserError(f"{directory} is not a search run ({RUN_FILE} is missing)")
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: unreadable ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a search run file (a JSON object is expected)")
    return data


def front_points(directory: Path) -> list[dict[str, Any]]:
    """The rows of the run's Pareto front (each with its ``arch`` and figures)."""
    path = directory / FRONT_FILE
    if not path.is_file():
        raise UserError(f"{directory} has no pareto.json; the search did not finish")
    try:
        rows: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["front"]
    except (OSError, json.JSONDecodeError, KeyError) as exc:
        raise UserError(f"{path}: unreadable ({exc})") from None
    return rows


def select(rows: Sequence[dict[str, Any]], points: str) -> list[dict[str, Any]]:
    """The rows named by ``points``: ``"all"`` or comma-separated front indices such as 0,3."""
    if points == "all":
        return list(rows)
    try:
        wanted = [int(p) for p in points.split(",") if p.strip()]
    except ValueError:
        raise UserError(
            f"--points must be 'all' or comma-separated numbers, got {points!r}"
        ) from None
    missing = [p for p in wanted if not 0 <= p < len(rows)]
    if missing:
        raise UserError(f"points {missing} are not on the front (it has {len(rows)} points)")
    return [rows[p] for p in wanted]


def run_arch(directory: Path, point: int | None = None) -> Arch:
    """The run's chosen subnet, or front point ``point``."""
    if point is None:
        summary = json.loads((directory / FRONT_FILE).read_text(encoding="utf-8"))
        chosen = summary.get("chosen") or {}
        if "arch" not in chosen:
            raise UserError(f"{directory} has no chosen subnet; pass --point N")
        return Arch.from_dict(chosen["arch"])
    rows = front_points(directory)
    if not 0 <= point < len(rows):
        raise UserError(f"--point {point} is not on the front (it has {len(rows)} points)")
    return Arch.from_dict(rows[point]["arch"])


def _space(directory: Path, run: dict[str, Any]) -> Space:
    if not isinstance(run.get("space"), str) or not isinstance(run.get("workdir"), str):
        raise UserError(f"{directory}/{RUN_FILE} does not name its space and workdir")
    return get_space(run["space"])


def _front_arch(directory: Path, space: Space, row: Any) -> Arch:
    """The arch of a front row, checked against the space before anything is written."""
    try:
        arch = Arch.from_dict(row["arch"])
        space.validate(arch)
    except (ArchError, KeyError, TypeError) as exc:
        raise UserError(
            f"{directory / FRONT_FILE}: point {row.get('point') if isinstance(row, dict) else row}"
            f" is not a subnet of {space.name}: {first_line(exc)}"
        ) from None
    return arch


@dataclass(frozen=True, kw_only=True, eq=False)
class RunSubnet:
    """A subnet of a search run, ready to compress: taken out of the supernet with batch norm
    recalibrated, in eval mode, with the largest subnet (recalibrated the same way) as teacher."""

    space: Space
    arch: Arch
    model: nn.Module
    teacher: nn.Module
    data: str
    seed: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.space.in_channels, self.arch.resolution, self.arch.resolution)


def load_run_subnet(
    directory: Path, point: int | None = None, *, data: str | None = None, seed: int | None = None
) -> RunSubnet:
    """The chosen subnet of the search run in ``directory`` (or front point ``point``).

    Batch norm is recalibrated on 500 training images of ``data`` (default: the run's data)
    drawn with ``seed`` (default: the run's seed).
    """
    run = read_run(directory)
    try:
        space = _space(directory, run)
        arch = run_arch(directory, point)
    except (OSError, json.JSONDecodeError, SpaceError, ArchError, KeyError, TypeError) as exc:
        raise UserError(f"{directory}: cannot read the search run ({first_line(exc)})") from None
    supernet, _ = load_supernet(Workdir(Path(run["workdir"]), space.name).supernet)
    data_name = data or run.get("data", DEFAULT_DATA)
    data_seed = run.get("seed", 0) if seed is None else seed
    channels = space.in_channels
    dataset = load_dataset(
        data_name,
        resolution=max(space.resolution.values),
        seed=data_seed,
        grayscale=None if channels not in (1, 3) else channels == 1,
    )
    # The float network: int8 stages are quantized for real by whoever deploys it (nas
    # compress quantizes the arch's int8 stages), not simulated here.
    model = recalibrated(supernet, float_arch(arch), dataset, seed=data_seed)
    teacher = recalibrated(supernet, space.largest(), dataset, seed=data_seed)
    return RunSubnet(
        space=space,
        arch=arch,
        model=model.eval(),
        teacher=teacher.eval(),
        data=data_name,
        seed=data_seed,
    )


def export_front(
    directory: Path,
    out: Path,
    *,
    fmt: str,
    points: str = "all",
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Write the front points ``points`` of the run in ``directory`` as ``fmt`` files with
    model cards to ``out`` (``point-NNN.SUFFIX``), with the front's summaries beside them.

    Returns the models written; ``progress(done, total)`` is called after each.
    """
    if fmt not in EXPORT_SUFFIXES:
        raise UserError(f"unknown format {fmt!r}; choose one of {', '.join(EXPORT_SUFFIXES)}")
    settings = read_run(directory)
    rows = select(front_points(directory), points)
    space = _space(directory, settings)
    archs = [_front_arch(directory, space, row) for row in rows]
    check_writable_directory(out)
    supernet, _ = load_supernet(Workdir(Path(settings["workdir"]), space.name).supernet)
    dataset = load_dataset(
        settings.get("data", DEFAULT_DATA),
        resolution=max(space.resolution.values),
        seed=settings.get("seed", 0),
    )
    suffix = EXPORT_SUFFIXES[fmt]
    measure = settings.get("measure")
    # what an OpenVINO IR without bf16 stages was measured with (a run on openvino-bf16: bf16)
    precision = openvino_precision(str(measure.get("runtime")) if isinstance(measure, dict) else "")
    written = []
    for index, (row, arch) in enumerate(zip(rows, archs, strict=True)):
        card = {k: v for k, v in row.items() if k not in ("arch",)}
        written.append(
            export_model(
                supernet,
                space,
                arch,
                out / f"point-{row['point']:03d}.{suffix}",
                fmt=fmt,
                dataset=dataset,
                card=card,
                openvino_precision=precision,
            )
        )
        if progress is not None:
            progress(index + 1, len(rows))
    for name in FRONT_SUMMARIES:
        if (directory / name).exists() and out != directory:
            (out / name).write_bytes((directory / name).read_bytes())
    return written
