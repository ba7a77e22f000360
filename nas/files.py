"""Atomic file writes (temporary file in the same folder, then rename) and file digests."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from nas.errors import UserError

__all__ = [
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_writable_directory",
    "file_digest",
]


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (to show that an input was left unchanged)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_writable_directory(path: str | Path, *, option: str = "--out") -> None:
    """Raise a one-line :class:`UserError` unless files can be written in directory ``path``
    (which may not exist yet): its nearest existing ancestor must be a writable directory.
    Creates nothing, so a command can check its output before any long work."""
    target = Path(path).absolute()
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(
            f"cannot write in {target}: {existing} is a file, not a directory; choose another "
            f"{option}"
        )
    try:
        probe = tempfile.mkdtemp(prefix=".nas-write-check-", dir=existing)
    except OSError as exc:
        raise UserError(
            f"cannot write in {target}: creating files in {existing} fails "
            f"({exc.strerror or type(exc).__name__}); choose another {option}"
        ) from None
    os.rmdir(probe)
