"""Per-operator latency lookup table with a calibrated per-network overhead.

The table maps each operator key (stem, block configuration, head; see
:mod:`nas.predictors.operators`) to its standalone median latency from
:func:`nas.measure.profiling.profile_blocks`. Every standalone measurement also pays the
runtime's fixed per-call cost once, measured as the ``overhead()`` operator; a network pays it
once in all, so the raw estimate of a subnet is ``overhead + sum(operator - overhead)``, where
the quantize-dequantize boundaries that int8 blocks running back to back do not pay count
negatively (see :mod:`nas.predictors.operators`).
Fitting to measured whole-network latencies calibrates ``intercept + scale * raw`` by least
squares of the relative error (so the few slowest subnets, and timing outliers among them, do
not dominate), which absorbs what standalone timing misses (caches warm across layers, fused
graphs, memory traffic).

What standalone timing misses differs by operator group, though: fitted on 120 subnets of
``quant-28`` on OpenVINO at batch 32, the stem counts 0.35 of its time alone, the head 2.8,
the boundaries between int8 blocks 0.46 (two int8 blocks that meet save half the
quantize-dequantize pair timed alone) and the blocks 0.85-1.06. So (``groups``, the default)
with at least :data:`GROUPED_MIN_SUBNETS` measured subnets the fit gives each group (stem,
head, boundary, and blocks by precision and type) its own non-negative scale, by the same
least squares; a group that few or none of the measured subnets use keeps the common line's
scale. On the four profiles of ``quant-28`` (ONNX Runtime and OpenVINO, batch 8 and 32, 120
subnets each, 30 held out, 20 draws; ``experiments/latency_calibration.py``) held-out subnets
within 10% went from 81% to 94% on OpenVINO at batch 32, stayed at 96-99% on ONNX Runtime and
moved from 78% to 76% on OpenVINO at batch 8.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np

from nas.errors import UserError
from nas.predictors.base import (
    as_targets,
    as_weights,
    fit_line,
    training_data,
    training_from_dict,
)
from nas.predictors.operators import OVERHEAD_KEY, Operator, arch_operators
from nas.predictors.records import LatencyRecord
from search_spaces import Arch, Space, decode_genome

__all__ = ["GROUPED_MIN_SUBNETS", "LatencyTable", "operator_group"]

GROUPED_MIN_SUBNETS = 20
"""Fewer measured subnets than this fit the common line only."""
GROUP_MIN_USES = 5
"""A group fewer measured subnets use than this keeps the common line's scale."""


def operator_group(operator: Operator) -> str:
    """The calibration group of ``operator``: its kind, and for a block its precision and
    type (``block-int8-fused``)."""
    if operator.block is not None:
        return f"block-{operator.block.precision}-{operator.block.block_type}"
    return operator.kind


class LatencyTable:
    """Latency predictor: sum of per-operator table entries, calibrated on whole networks."""

    kind: ClassVar[str] = "latency_table"

    def __init__(
        self,
        space: Space,
        records: Iterable[LatencyRecord | Mapping[str, Any]],
        *,
        calibrate: bool = True,
        groups: bool = True,
    ) -> None:
        self.space = space
        self.target = "latency"
        self.calibrate = calibrate
        self.groups = groups
        self.intercept = 0.0
        self.scale = 1.0
        # With per-group scales: the constant term and each group's scale (else empty).
        self.group_constant = 0.0
        self.group_scales: dict[str, float] = {}
        self.records: list[LatencyRecord] = []
        self.entries: dict[str, float] = {}
        for item in records:
            record = item if isinstance(item, LatencyRecord) else LatencyRecord.from_dict(item)
            if record.kind == "arch" or record.key in self.entries:
                continue
            self.records.append(record)
            self.entries[record.key] = record.median_ms
        if not self.records:
            raise UserError("a latency table needs operator records (from profile_blocks)")
        settings = {str(sorted(r.settings.items())) for r in self.records}
        if len(settings) > 1:
            raise UserError(
                f"latency table records mix {len(settings)} measurement settings; "
                "build one table per setting"
            )
        first = self.records[0]
        self.settings: dict[str, Any] = dict(first.settings)
        self.machine: dict[str, Any] = dict(first.machine)
        self.versions: dict[str, str] = dict(first.versions)
        self.overhead_ms = self.entries.get(OVERHEAD_KEY, 0.0)
        self._archs: list[Arch] = []
        self._y: np.ndarray | None = None
        self._weight: np.ndarray | None = None

    def missing(self, archs: Iterable[Arch]) -> list[str]:
        """Keys of the operators of ``archs`` that the table lacks, each once, in order."""
        seen: dict[str, None] = {}
        for arch in archs:
            for operator in arch_operators(self.space, arch):
                if operator.key not in self.entries:
                    seen.setdefault(operator.key, None)
        return list(seen)

    def by_group(self, archs: Sequence[Arch]) -> list[dict[str, float]]:
        """Each arch's operator time beyond the overhead, summed per :func:`operator_group`
        (a boundary's negative); one pass over the operators, which also finds any the table
        lacks."""
        sums = []
        absent: dict[str, None] = {}
        for arch in archs:
            groups: dict[str, float] = {}
            for op in arch_operators(self.space, arch):
                entry = self.entries.get(op.key)
                if entry is None:
                    absent.setdefault(op.key, None)
                    continue
                group = operator_group(op)
                groups[group] = groups.get(group, 0.0) + op.sign * (entry - self.overhead_ms)
            sums.append(groups)
        if absent:
            first, more = next(iter(absent)), len(absent) - 1
            raise UserError(
                f"latency table has no entry for {first}"
                + (f" (and {more} more)" if more else "")
                + "; measure them with "
                "nas.measure.profiling.profile_blocks(space, config, path, archs=...)"
            )
        return sums

    def raw(self, archs: Sequence[Arch]) -> np.ndarray:
        """Uncalibrated estimates: overhead plus each operator's time beyond the overhead."""
        return self._raw(self.by_group(archs))

    def _raw(self, sums: list[dict[str, float]]) -> np.ndarray:
        return np.array([self.overhead_ms + sum(groups.values()) for groups in sums])

    def fit(
        self,
        archs: Sequence[Arch],
        y: Sequence[float] | np.ndarray,
        sample_weight: Sequence[float] | np.ndarray | None = None,
    ) -> Self:
        """Calibrate ``intercept + scale * raw`` to measured latencies ``y`` by least squares of
        the relative error (see :func:`fit_line`), each point's squared error times its
        ``sample_weight``; with ``groups`` and enough subnets, per-group scales too; nothing
        when ``calibrate`` is False."""
        values = as_targets(archs, y)
        weight = as_weights(sample_weight, len(values))
        sums = self.by_group(archs)
        raw = self._raw(sums)
        self.group_constant, self.group_scales = 0.0, {}
        if not self.calibrate:
            self.intercept, self.scale = 0.0, 1.0
        else:
            self.intercept, self.scale = fit_line(raw, values, weight)
            if self.groups and len(values) >= GROUPED_MIN_SUBNETS and (values > 0).all():
                self._fit_groups(sums, values, np.ones_like(values) if weight is None else weight)
        self._archs, self._y, self._weight = list(archs), values, weight
        return self

    def _fit_groups(self, sums: list[dict[str, float]], y: np.ndarray, weight: np.ndarray) -> None:
        """``constant + sum(scale[g] * time[g])`` by least squares of the relative error, every
        scale non-negative; a group fewer than :data:`GROUP_MIN_USES` subnets use keeps the
        common line's scale."""
        from scipy.optimize import lsq_linear

        names = sorted({name for groups in sums for name in groups})
        times = np.array([[groups.get(name, 0.0) for name in names] for groups in sums])
        uses = (times != 0).sum(axis=0)
        free = [i for i, count in enumerate(uses) if count >= GROUP_MIN_USES]
        fixed = [i for i, count in enumerate(uses) if count < GROUP_MIN_USES]
        root = np.sqrt(weight)
        design = np.column_stack([np.ones(len(y)), times[:, free]]) * (root / y)[:, None]
        target = root * (1.0 - self.scale * times[:, fixed].sum(axis=1) / y)
        lower = np.array([-np.inf, *np.zeros(len(free))])
        solution = lsq_linear(design, target, bounds=(lower, np.full(len(free) + 1, np.inf)))
        self.group_constant = float(solution.x[0])
        self.group_scales = {names[i]: float(v) for i, v in zip(free, solution.x[1:], strict=True)}
        self.group_scales.update({names[i]: self.scale for i in fixed})

    def predict(self, archs: Sequence[Arch]) -> np.ndarray:
        for arch in archs:
            self.space.validate(arch)
        if not self.group_scales:
            return self.intercept + self.scale * self.raw(archs)
        return np.array(
            [
                self.group_constant
                + sum(self.group_scales.get(name, self.scale) * t for name, t in groups.items())
                for groups in self.by_group(archs)
            ]
        )

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray:
        """Decodes every genome (about 0.1 ms each), so slower than the learned predictor."""
        return self.predict([decode_genome(self.space, row) for row in np.asarray(genomes)])

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "hyper": {"calibrate": self.calibrate, "groups": self.groups},
            "table": [record.to_dict() for record in self.records],
            "train": training_data(self._archs, self._y, self._weight),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], space: Space) -> Self:
        hyper = data["hyper"]
        # files written before per-group scales existed keep the common line
        table = cls(
            space,
            data["table"],
            calibrate=bool(hyper["calibrate"]),
            groups=bool(hyper.get("groups", False)),
        )
        archs, y = training_from_dict(data["train"])
        weight = data["train"].get("weight")
        return table.fit(archs, y, weight) if y is not None else table
