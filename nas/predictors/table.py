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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np

from nas.errors import UserError
from nas.predictors.base import as_targets, fit_line, training_data, training_from_dict
from nas.predictors.operators import OVERHEAD_KEY, arch_operators
from nas.predictors.records import LatencyRecord
from search_spaces import Arch, Space, decode_genome

__all__ = ["LatencyTable"]


class LatencyTable:
    """Latency predictor: sum of per-operator table entries, calibrated on whole networks."""

    kind: ClassVar[str] = "latency_table"

    def __init__(
        self,
        space: Space,
        records: Iterable[LatencyRecord | Mapping[str, Any]],
        *,
        calibrate: bool = True,
    ) -> None:
        self.space = space
        self.target = "latency"
        self.calibrate = calibrate
        self.intercept = 0.0
        self.scale = 1.0
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

    def missing(self, archs: Iterable[Arch]) -> list[str]:
        """Keys of the operators of ``archs`` that the table lacks, each once, in order."""
        seen: dict[str, None] = {}
        for arch in archs:
            for operator in arch_operators(self.space, arch):
                if operator.key not in self.entries:
                    seen.setdefault(operator.key, None)
        return list(seen)

    def raw(self, archs: Sequence[Arch]) -> np.ndarray:
        """Uncalibrated estimates: overhead plus each operator's time beyond the overhead."""
        absent = self.missing(archs)
        if absent:
            more = f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""
            raise UserError(
                f"latency table has no entry for {absent[0]}{more}; measure them with "
                "nas.measure.profiling.profile_blocks(space, config, path, archs=...)"
            )
        totals = np.empty(len(archs))
        for i, arch in enumerate(archs):
            operators = arch_operators(self.space, arch)
            extra = sum(op.sign * (self.entries[op.key] - self.overhead_ms) for op in operators)
            totals[i] = self.overhead_ms + extra
        return totals

    def fit(self, archs: Sequence[Arch], y: Sequence[float] | np.ndarray) -> Self:
        """Calibrate ``intercept + scale * raw`` to measured latencies ``y`` by least squares of
        the relative error (see :func:`fit_line`); nothing when ``calibrate`` is False."""
        values = as_targets(archs, y)
        raw = self.raw(archs)
        if not self.calibrate:
            self.intercept, self.scale = 0.0, 1.0
        else:
            self.intercept, self.scale = fit_line(raw, values)
        self._archs, self._y = list(archs), values
        return self

    def predict(self, archs: Sequence[Arch]) -> np.ndarray:
        for arch in archs:
            self.space.validate(arch)
        return self.intercept + self.scale * self.raw(archs)

    def predict_genomes(self, genomes: np.ndarray) -> np.ndarray:
        """Decodes every genome (about 0.1 ms each), so slower than the learned predictor."""
        return self.predict([decode_genome(self.space, row) for row in np.asarray(genomes)])

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "hyper": {"calibrate": self.calibrate},
            "table": [record.to_dict() for record in self.records],
            "train": training_data(self._archs, self._y),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], space: Space) -> Self:
        table = cls(space, data["table"], calibrate=bool(data["hyper"]["calibrate"]))
        archs, y = training_from_dict(data["train"])
        return table.fit(archs, y) if y is not None else table
