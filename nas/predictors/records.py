"""Latency records and the JSON-lines files that hold them.

One measurement is one :class:`LatencyRecord` on one line: what was measured (a whole subnet,
``kind="arch"``, or one operator of the lookup table), its median and interquartile range, and
the settings, machine and library versions it was taken with. Files are appended to a line at a
time and flushed, so a killed profiling run loses at most the line being written; reading
ignores such a truncated last line with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.errors import UserError
from search_spaces import Arch, Space, space_to_dict

__all__ = [
    "RECORD_KINDS",
    "LatencyRecord",
    "append_records",
    "open_for_append",
    "read_records",
    "same_machine",
    "space_digest",
]

logger = logging.getLogger(__name__)
RECORD_KINDS = ("arch", "stem", "block", "boundary", "head", "overhead")
_MACHINE_FIELDS = ("cpu", "logical_cores")


def space_digest(space: Space) -> str:
    """A short fingerprint of a space's definition (its name and every choice)."""
    text = json.dumps(space_to_dict(space), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def same_machine(first: Mapping[str, Any], second: Mapping[str, Any]) -> bool:
    """Whether two machine descriptions name the same CPU model and core count."""
    return all(first.get(name) == second.get(name) for name in _MACHINE_FIELDS)


@dataclass(frozen=True, kw_only=True)
class LatencyRecord:
    """One latency measurement of a subnet or of one lookup-table operator."""

    kind: str
    key: str  # the arch's JSON for kind "arch", the operator key otherwise
    space: str
    space_digest: str
    median_ms: float
    iqr_ms: float
    min_ms: float
    settings: dict[str, Any]
    machine: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    arch: dict[str, Any] | None = None  # the arch as a dict, for kind "arch"

    def __post_init__(self) -> None:
        if self.kind not in RECORD_KINDS:
            raise UserError(f"unknown record kind {self.kind!r}; expected one of {RECORD_KINDS}")
        if self.kind == "arch" and self.arch is None:
            raise UserError("an arch record needs its arch")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "key": self.key,
            "space": self.space,
            "space_digest": self.space_digest,
            "median_ms": self.median_ms,
            "iqr_ms": self.iqr_ms,
            "min_ms": self.min_ms,
            "settings": dict(self.settings),
            "machine": dict(self.machine),
            "versions": dict(self.versions),
        }
        if self.arch is not None:
            data["arch"] = self.arch
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyRecord:
        if not isinstance(data, Mapping):
            raise UserError(f"a latency record must be a JSON object, got {type(data).__name__}")
        try:
            return cls(
                kind=str(data["kind"]),
                key=str(data["key"]),
                space=str(data["space"]),
                space_digest=str(data["space_digest"]),
                median_ms=float(data["median_ms"]),
                iqr_ms=float(data["iqr_ms"]),
                min_ms=float(data["min_ms"]),
                settings=dict(data["settings"]),
                machine=dict(data.get("machine", {})),
                versions=dict(data.get("versions", {})),
                arch=dict(data["arch"]) if data.get("arch") is not None else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"latency record is malformed ({type(exc).__name__}: {exc})") from None

    def to_arch(self) -> Arch:
        if self.arch is None:
            raise UserError(f"record {self.key} is a {self.kind} record, not an arch")
        return Arch.from_dict(self.arch)


def _parse(line: bytes) -> LatencyRecord:
    return LatencyRecord.from_dict(json.loads(line.decode("utf-8")))


def _scan(file: Path) -> tuple[list[LatencyRecord], int | None]:
    """The records of ``file``, and where to cut it before appending: the start of a broken
    last line, or None when every line is a record."""
    data = file.read_bytes()
    lines = data.split(b"\n")
    filled = [number for number, line in enumerate(lines) if line.strip()]
    records = []
    offset = 0
    for number, line in enumerate(lines):
        start = offset
        offset += len(line) + 1
        if not line.strip():
            continue
        try:
            records.append(_parse(line))
        except (UnicodeDecodeError, json.JSONDecodeError, UserError) as exc:
            # A kill while appending leaves the start of a record ("{..."); anything else in
            # the last line is not one, and is refused like a bad line elsewhere.
            if number == filled[-1] and line.lstrip().startswith(b"{"):
                warnings.warn(
                    f"{file}: ignoring a truncated or corrupt last line {number + 1} "
                    f"({type(exc).__name__}); what it described will be measured again",
                    RuntimeWarning,
                    stacklevel=3,
                )
                return records, start
            raise UserError(
                f"{file} line {number + 1} is not a latency record ({type(exc).__name__}); "
                "fix or delete the line"
            ) from None
    return records, None


def read_records(path: str | Path) -> list[LatencyRecord]:
    """Every record of a JSON-lines file (none when it does not exist)."""
    file = Path(path)
    if not file.exists():
        return []
    try:
        return _scan(file)[0]
    except OSError as exc:
        raise UserError(f"cannot read {file}: {exc.strerror or exc}") from None


def open_for_append(path: str | Path) -> list[LatencyRecord]:
    """Prepare ``path`` for appending and return the records it already holds: its folder is
    created, a broken last line is cut off and a missing final newline added."""
    file = Path(path)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        if not file.exists():
            return []
        records, cut = _scan(file)
        with file.open("r+b") as handle:
            if cut is not None:
                handle.truncate(cut)
            size = handle.seek(0, os.SEEK_END)
            if size:
                handle.seek(size - 1)
                if handle.read(1) != b"\n":
                    handle.write(b"\n")
        return records
    except OSError as exc:
        raise UserError(f"cannot use {file}: {exc.strerror or exc}") from None


def append_records(path: str | Path, records: Iterable[LatencyRecord]) -> None:
    """Append records one line each, flushing every line to disk."""
    file = Path(path)
    with file.open("a", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record.to_dict(), sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
