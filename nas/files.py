"""Atomic file writes (temporary file in the same folder, then rename), file digests, torn
JSON-lines tails, and exclusive locks between processes sharing a directory."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nas.errors import UserError

__all__ = [
    "LOCK_FILE",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_writable_directory",
    "cut_torn_tail",
    "exclusive_lock",
    "file_digest",
    "temporary_path",
]

logger = logging.getLogger(__name__)
# The lock file a directory's writer holds (see exclusive_lock).
LOCK_FILE = ".lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def temporary_path(target: Path) -> Path:
    """Where to write ``target``'s next content before renaming it onto ``target``
    (``.NAME.PID.tmp`` beside it). Temporary files of ``target`` left by writers that were
    killed (their process is gone) are removed."""
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        pid = stale.name[len(target.name) + 2 : -len(".tmp")]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            stale.unlink(missing_ok=True)
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(target)
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


def cut_torn_tail(path: str | Path) -> bool:
    """Cut a JSON-lines file after its last newline, so that lines appended next do not join a
    line torn by a killed writer; returns whether anything was cut (and logs it)."""
    file = Path(path)
    try:
        handle = file.open("r+b")
    except FileNotFoundError:
        return False
    with handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return False
        handle.seek(max(0, size - (1 << 16)))
        tail = handle.read()
        if tail.endswith(b"\n"):
            return False
        newline = tail.rfind(b"\n")
        if newline < 0 and size > len(tail):  # a last line longer than 64 KiB: read it all
            handle.seek(0)
            tail = handle.read()
            newline = tail.rfind(b"\n")
        keep = size - len(tail) + newline + 1
        handle.truncate(keep)
    logger.warning(
        "%s: cut off a last line torn by a killed run (%d bytes); what it held is redone",
        file,
        size - keep,
    )
    return True


# The lock files this process holds (absolute paths).
_held: set[str] = set()


def _holder(descriptor: int) -> str:
    try:
        text = os.pread(descriptor, 400, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "another process"


def _make_folders(folder: Path, created: list[Path]) -> None:
    """``mkdir -p folder``, adding the folders it creates to ``created``, innermost first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for directory in reversed(missing):
        try:
            directory.mkdir()
        except FileExistsError:
            continue
        created.insert(0, directory)


def _acquire(target: Path, what: str, wait: bool, created: list[Path]) -> int:
    """Open and flock ``target``; retry when its holder removed it (or its folder) meanwhile,
    so the lock held is always the file at that path."""
    import fcntl

    told = False
    while True:
        _make_folders(target.parent, created)
        try:
            descriptor = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the folder was removed again meanwhile
            continue
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(descriptor)
                if not wait:
                    raise UserError(
                        f"{what} is already under way ({holder}); wait for it to finish or use "
                        "another directory"
                    ) from None
                if not told:
                    logger.warning("waiting: %s is already under way (%s)", what, holder)
                    told = True
                fcntl.flock(descriptor, fcntl.LOCK_EX)
            try:
                same = os.fstat(descriptor).st_ino == os.stat(target).st_ino
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(descriptor)
            raise
        if same:
            if told:
                logger.info("done waiting: %s is free", target.parent)
            return descriptor
        os.close(descriptor)


@contextmanager
def exclusive_lock(path: str | Path, *, what: str, wait: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on the lock file ``path`` (``LOCK_FILE`` in the directory being
    written, usually) for the ``with`` block, so that two processes never build the same thing
    at once. Another holder makes this one wait, with a warning naming ``what`` and the holder
    (its pid, host and command), or, with ``wait=False``, raise a one-line
    :class:`UserError`.

    The lock is the kernel's (``flock``): a killed holder releases it. Nested use of the same
    path in one process does not lock again. The lock file, and the folders created for it,
    are removed on release when nothing else was put in them, so a refused command leaves
    nothing behind. Where ``fcntl`` does not exist (Windows), nothing is locked.
    """
    target = Path(path).absolute()
    key = str(target)
    if key in _held:
        yield
        return
    try:
        import fcntl  # noqa: F401
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    created: list[Path] = []
    try:
        descriptor = _acquire(target, what, wait, created)
    except BaseException:
        _remove_empty(created)
        raise
    _held.add(key)
    try:
        holder = f"pid {os.getpid()} on {socket.gethostname()}: {' '.join(sys.argv)[:300]}"
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, holder.encode("utf-8"), 0)
        yield
    finally:
        _held.discard(key)
        target.unlink(missing_ok=True)  # still locked: a waiter on this file retries
        os.close(descriptor)
        _remove_empty(created)


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # innermost first
        try:
            folder.rmdir()
        except OSError:
            break
