"""Latency profiling on this machine: whole subnets, and the operators of a lookup table.

:func:`profile_latency` measures subnets and :func:`profile_blocks` the distinct operators
(stem, inverted-residual block configurations, head, and the runtime's per-call overhead) as
standalone modules; both go through :mod:`nas.measure` and append one JSON line per
measurement, flushed at once, to a file. Run again with the same file, they skip whatever the
file already holds for the same space, settings and machine, so a killed run resumes where it
stopped (a line cut short by the kill is ignored with a warning and measured again).

:func:`sample_for_coverage` picks subnets to profile for training predictors: the smallest and
the largest, and the rest stratified over analytical FLOPs.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.errors import UserError
from nas.measure.precision import boundary_graph, operator_graph
from nas.measure.timing import (
    ONNX_RUNTIMES,
    OPENVINO_RUNTIMES,
    MeasureConfig,
    Measurement,
    machine_info,
    measure_arch,
    measure_latency,
)
from nas.predictors.features import genome_costs
from nas.predictors.operators import Operator, space_operators
from nas.predictors.records import (
    LatencyRecord,
    append_records,
    open_for_append,
    same_machine,
    space_digest,
)
from nas.supernet.static import InvertedResidual, activation, conv_bn
from search_spaces import Arch, ArchError, Space, decode_genome, sample_genomes, to_genome

__all__ = [
    "BLOCKS_FILE",
    "MEASUREMENTS_FILE",
    "Progress",
    "measure_operator",
    "operator_module",
    "profile_blocks",
    "profile_latency",
    "sample_for_coverage",
    "settings_of",
]

logger = logging.getLogger(__name__)
MEASUREMENTS_FILE = "measurements.jsonl"
BLOCKS_FILE = "blocks.jsonl"
Progress = Callable[[int, int], None]


def settings_of(config: MeasureConfig) -> dict[str, Any]:
    """The measurement settings a record carries: runtime, threads, batch, warm-up, repeats."""
    return dataclasses.asdict(config)


def _file(path: str | Path, name: str) -> Path:
    """``path`` itself when it names a ``.jsonl`` file, else the file ``name`` inside it."""
    target = Path(path)
    return target if target.suffix == ".jsonl" else target / name


def _reusable(
    records: Sequence[LatencyRecord], settings: dict[str, Any], digest: str | None
) -> dict[str, LatencyRecord]:
    """Records taken with ``settings`` on this machine (and of this space, unless ``digest`` is
    None), by key; the first one of a key wins."""
    here = machine_info()
    found: dict[str, LatencyRecord] = {}
    foreign: list[LatencyRecord] = []
    for record in records:
        if record.settings != settings or (digest is not None and record.space_digest != digest):
            continue
        if not same_machine(record.machine, here):
            foreign.append(record)
            continue
        found.setdefault(record.key, record)
    if foreign:
        logger.warning(
            "%d records with the same settings come from another machine (%s, %s cores); "
            "they are not reused",
            len(foreign),
            foreign[0].machine.get("cpu"),
            foreign[0].machine.get("logical_cores"),
        )
    return found


def _record(
    kind: str,
    key: str,
    space: Space,
    measurement: Measurement,
    settings: dict[str, Any],
    arch: Arch | None = None,
) -> LatencyRecord:
    return LatencyRecord(
        kind=kind,
        key=key,
        space=space.name,
        space_digest=space_digest(space),
        median_ms=measurement.median_ms,
        iqr_ms=measurement.iqr_ms,
        min_ms=measurement.min_ms,
        settings=settings,
        machine=dict(measurement.machine),
        versions=dict(measurement.versions),
        arch=arch.to_dict() if arch is not None else None,
    )


def profile_latency(
    space: Space,
    archs: Sequence[Arch],
    config: MeasureConfig,
    path: str | Path,
    *,
    progress: Progress | None = None,
) -> list[LatencyRecord]:
    """Measure each arch (whole network, :func:`nas.measure.measure_arch`) and append its record
    to ``path`` (a ``.jsonl`` file, or a folder that gets ``measurements.jsonl``).

    Archs already in the file with the same space, settings and machine are not measured again.
    Returns one record per arch, in order; ``progress(done, total)`` is called after each.
    """
    file = _file(path, MEASUREMENTS_FILE)
    settings = settings_of(config)
    for index, arch in enumerate(archs):
        try:
            space.validate(arch)
        except ArchError as exc:
            raise UserError(f"archs[{index}] is not a subnet of {space.name!r}: {exc}") from None
    known = _reusable(open_for_append(file), settings, space_digest(space))
    results = []
    measured = 0
    for done, arch in enumerate(archs, start=1):
        key = arch.to_json()
        record = known.get(key)
        if record is None:
            measurement = measure_arch(space, arch, config)
            record = _record("arch", key, space, measurement, settings, arch)
            append_records(file, [record])
            known[key] = record
            measured += 1
        results.append(record)
        if progress is not None:
            progress(done, len(archs))
    logger.info(
        "profiled %d archs into %s: %d measured, %d reused",
        len(archs),
        file,
        measured,
        len(archs) - measured,
    )
    return results


class _Head(nn.Module):
    """The network's end as :class:`nas.supernet.static.StaticNetwork` runs it: 1x1 conv, BN,
    activation, global pooling, optional feature conv, dropout, classifier."""

    def __init__(self, space: Space, channels: int) -> None:
        super().__init__()
        head = space.head
        self.conv = nn.Sequential(*conv_bn(channels, head.channels, 1), activation(head.activation))
        self.features: nn.Module | None = None
        classifier_in = head.channels
        if head.feature_channels is not None:
            self.features = nn.Sequential(
                nn.Conv2d(head.channels, head.feature_channels, 1, bias=False),
                activation(head.activation),
            )
            classifier_in = head.feature_channels
        self.dropout = nn.Dropout(head.dropout)
        self.classifier = nn.Linear(classifier_in, space.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x).mean(dim=(2, 3), keepdim=True)
        if self.features is not None:
            x = self.features(x)
        return self.classifier(self.dropout(torch.flatten(x, 1)))


def operator_module(space: Space, operator: Operator) -> nn.Module:
    """A freshly initialised standalone module computing ``operator``."""
    if operator.kind == "overhead":
        return nn.Identity()
    if operator.kind == "stem":
        stem = space.stem
        return nn.Sequential(
            *conv_bn(space.in_channels, stem.channels, stem.kernel_size, stem.stride),
            activation(stem.activation),
        )
    if operator.kind == "block" and operator.block is not None:
        return InvertedResidual(operator.block)
    if operator.kind == "head":
        return _Head(space, operator.channels)
    raise ValueError(f"cannot build operator {operator.key}")


def measure_operator(space: Space, operator: Operator, config: MeasureConfig) -> Measurement:
    """Latency of ``operator`` alone, at the batch size and threads of ``config``; an int8
    block or a boundary as its quantized graph, on an ONNX runtime; a bf16 block on
    OpenVINO."""
    quantized = operator.kind == "boundary" or (
        operator.block is not None and operator.block.precision == "int8"
    )
    halved = operator.block is not None and operator.block.precision == "bf16"
    if quantized and config.runtime not in ONNX_RUNTIMES:
        raise UserError(
            f"runtime {config.runtime} cannot run int8 operators; use one of "
            f"{', '.join(ONNX_RUNTIMES)}"
        )
    if halved and config.runtime not in OPENVINO_RUNTIMES:
        raise UserError(
            f"runtime {config.runtime} cannot run bf16 operators; use --runtime openvino"
        )
    if operator.kind == "boundary":
        return measure_latency(
            boundary_graph(operator.channels, operator.input_shape[-1]),
            operator.input_shape,
            config,
        )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        module = operator_module(space, operator).eval()
    if quantized or halved:
        graph = operator_graph(module, operator.input_shape, "bf16" if halved else "int8")
        return measure_latency(graph, operator.input_shape, config)
    return measure_latency(module, operator.input_shape, config)


def profile_blocks(
    space: Space,
    config: MeasureConfig,
    path: str | Path,
    *,
    archs: Sequence[Arch] | None = None,
    progress: Progress | None = None,
) -> list[LatencyRecord]:
    """Measure every distinct operator for a latency lookup table, appending to ``path`` (a
    ``.jsonl`` file, or a folder that gets ``blocks.jsonl``), resumably.

    The operators are those of every subnet of ``space`` (see
    :func:`nas.predictors.space_operators`; thousands for larger spaces) or, when ``archs`` is
    given, only those the archs use. Returns one record per operator, the overhead first.
    """
    file = _file(path, BLOCKS_FILE)
    settings = settings_of(config)
    operators = space_operators(space, archs)
    known = _reusable(open_for_append(file), settings, None)
    results = []
    measured = 0
    for done, operator in enumerate(operators, start=1):
        record = known.get(operator.key)
        if record is None:
            measurement = measure_operator(space, operator, config)
            record = _record(operator.kind, operator.key, space, measurement, settings)
            append_records(file, [record])
            known[operator.key] = record
            measured += 1
        results.append(record)
        if progress is not None:
            progress(done, len(operators))
    logger.info(
        "profiled %d operators into %s: %d measured, %d reused",
        len(operators),
        file,
        measured,
        len(operators) - measured,
    )
    return results


def sample_for_coverage(space: Space, rng: np.random.Generator, n: int) -> list[Arch]:
    """``n`` distinct subnets that cover the space's cost range, for training predictors.

    The smallest and the largest subnet come first; the others are drawn from a large uniform
    pool of genomes split into ``n - 2`` equal-count bins by analytical FLOPs (quantile bins),
    one per bin, in increasing FLOPs.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise UserError(f"the number of subnets must be a non-negative integer, got {n!r}")
    chosen: list[Arch] = []
    for arch in (space.smallest(), space.largest()):
        if len(chosen) < n and arch not in chosen:
            chosen.append(arch)
    remaining = n - len(chosen)
    if remaining == 0:
        return chosen
    pool = sample_genomes(space, rng, max(50 * remaining, 2000))
    pool = np.unique(pool, axis=0)
    taken = {tuple(to_genome(space, arch)) for arch in chosen}
    pool = pool[[tuple(row) not in taken for row in pool]]
    if len(pool) < remaining:
        raise UserError(
            f"cannot draw {n} distinct subnets of {space.name!r} (found {len(pool) + len(taken)})"
        )
    flops = genome_costs(space, pool).flops
    order = np.lexsort((rng.random(len(pool)), flops))  # by FLOPs, ties in random order
    for bin_ in np.array_split(order, remaining):
        chosen.append(decode_genome(space, pool[rng.choice(bin_)]))
    return chosen
