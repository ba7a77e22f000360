"""Subnets measured for real, remembered in the work directory so no later search measures
them again: latency on this machine (for one runtime, thread count and batch size) and
accuracy after batch-norm recalibration (for one data set and seed).

One JSON line per subnet, appended as each is measured; a line torn by a kill is skipped when
read, so a killed search loses at most the measurement it was making.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from nas.files import LOCK_FILE, cut_torn_tail, exclusive_lock
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
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
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
        """Remember ``verified``: one line appended (after cutting a line torn by a killed
        search), under a lock shared by the searches of this work directory."""
        key = self.key(genome_bytes)
        record = asdict(verified)
        self._records[key] = record
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(f".{self.path.name}{LOCK_FILE}")
        with exclusive_lock(lock, what=f"an update of {self.path}"):
            cut_torn_tail(self.path)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"key": key, "verified": record}) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
