"""Subnets measured for real, remembered in the work directory so no later search measures
them again: latency on this machine (for one runtime, thread count and batch size) and
accuracy after batch-norm recalibration (for one data set and seed).

One JSON line per subnet, appended as each is measured; a line torn by a kill is skipped when
read, so a killed search loses at most the measurement it was making.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from nas.search.verify import Verified

__all__ = ["MeasuredCache"]

logger = logging.getLogger(__name__)


class MeasuredCache:
    """Measured subnets by key (genome bytes plus the settings that decide the figures)."""

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.path = path
        self.settings = json.dumps(settings, sort_keys=True)
        self._records: dict[str, dict[str, Any]] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    record = json.loads(line)
                    self._records[record["key"]] = record["verified"]
                except (ValueError, KeyError, TypeError):
                    logger.warning("%s: skipped a damaged line", path)

    def key(self, genome_bytes: bytes) -> str:
        return f"{genome_bytes.hex()}|{self.settings}"

    def get(self, genome_bytes: bytes) -> Verified | None:
        record = self._records.get(self.key(genome_bytes))
        return None if record is None else Verified(**record)

    def add(self, genome_bytes: bytes, verified: Verified) -> None:
        key = self.key(genome_bytes)
        record = asdict(verified)
        self._records[key] = record
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps({"key": key, "verified": record}) + "\n")
