"""The helpers the kill and concurrency tests rely on: torn tails cut, killed writers'
temporary files removed, locks nested and cleaned up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nas.errors import UserError
from nas.files import LOCK_FILE, atomic_write_text, cut_torn_tail, exclusive_lock, temporary_path


@pytest.mark.parametrize(
    ("content", "kept"),
    [
        (b"", b""),
        (b'{"a": 1}\n', b'{"a": 1}\n'),
        (b'{"a": 1}\n{"b": ', b'{"a": 1}\n'),
        (b'{"b": ', b""),
        (b'{"a": 1}\n' + b"x" * 70_000, b'{"a": 1}\n'),  # a torn line longer than 64 KiB
    ],
)
def test_cut_torn_tail(tmp_path: Path, content: bytes, kept: bytes) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_bytes(content)
    assert cut_torn_tail(path) == (content != kept)
    assert path.read_bytes() == kept
    assert cut_torn_tail(tmp_path / "missing.jsonl") is False


def test_temporary_files_of_killed_writers_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "front.json"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    stale = tmp_path / f".front.json.{int(dead.stdout)}.tmp"
    alive = tmp_path / ".front.json.1.tmp"  # pid 1 is always running
    other = tmp_path / f".pareto.json.{int(dead.stdout)}.tmp"
    for path in (stale, alive, other):
        path.write_text("half")
    assert temporary_path(target).name.startswith(".front.json.")
    assert not stale.exists() and alive.exists() and other.exists()
    atomic_write_text(target, "whole\n")
    assert target.read_text() == "whole\n"


def test_lock_nests_and_leaves_nothing_behind(tmp_path: Path) -> None:
    lock = tmp_path / "new" / "folder" / LOCK_FILE
    with exclusive_lock(lock, what="a piece"):
        assert lock.exists()
        with exclusive_lock(lock, what="a piece", wait=False):  # the same process: no wait
            pass
        assert lock.exists()
    assert not (tmp_path / "new").exists()  # the folders it made, empty again, are gone
    kept = tmp_path / "kept"
    with exclusive_lock(kept / LOCK_FILE, what="a piece"):
        (kept / "result.json").write_text("{}")
    assert sorted(p.name for p in kept.iterdir()) == ["result.json"]


def test_a_refusal_under_the_lock_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="bad input"):
        with exclusive_lock(tmp_path / "out" / LOCK_FILE, what="a piece"):
            raise UserError("bad input")
    assert list(tmp_path.iterdir()) == []
