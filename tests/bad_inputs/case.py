"""The bad-input corpus's vocabulary: :class:`Case`, the command lines cases start from,
and small helpers that build spaces and failures."""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.bad_inputs.files import (
    FACTORY,
    Files,
    nothing,
    space_file,
)


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    files: Files = nothing
    message: str = ""
    patch: Callable[[pytest.MonkeyPatch], None] | None = field(default=None, compare=False)
    # the failure comes after real work, whose progress bars may precede the error line
    after_work: bool = False

    def args(self, directory: str) -> list[str]:
        return [word.replace("{d}", directory) for word in self.argv]


DATA = ("--data", "{d}/data.npz")
FAST = ("--warmup", "1", "--repeats", "3", "--rounds", "1")
PRUNE = ("prune", "{d}/model.pt", "--factory", FACTORY, *DATA, "--resolution", "16", *FAST)
TRAIN = ("train", "--space", "tiny", *DATA, "--epochs", "1", "--warmup", "0", "--out", "{d}/out")
SEARCH = ("search", "--space", "tiny", *DATA, "--workdir", "{d}/work", "--out", "{d}/out")
TUNE = ("tune", "--space", "tiny", *DATA, "--workdir", "{d}/work", "--out", "{d}/out")
PROFILE = ("latency", "profile", "--space", "tiny", "--subnets", "2", *FAST[:4])


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set ``value`` at a dotted path such as ``stages.0.depth`` of a space dictionary."""

    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda data: data.pop(key) and None


def _space(case_id: str, change: Callable[[dict[str, Any]], Any], message: str) -> Case:
    return Case(
        f"spaces-{case_id}",
        ("spaces", "{d}/space.yaml"),
        space_file("space.yaml", change),
        message,
    )


def _disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    def full(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("nas.files.os.fsync", full)
