"""Start real ``nas`` commands as processes, SIGKILL them at chosen moments, check the files.

A kill moment is a condition on the files the command writes (a file appears, a JSON-lines
file reaches a number of lines, the progress on stderr shows some text) or a pause point (see
``run_nas.py``): the command stops just before the rename that ends one atomic write. The test
polls for the condition and sends SIGKILL as soon as it holds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RUN_NAS = Path(__file__).with_name("run_nas.py")
TIMEOUT = 120.0  # seconds any one command may take here, however busy the machine


def environment(**extra: str) -> dict[str, str]:
    """The environment of a command: one thread, the repository importable, no colour."""
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass
class Command:
    """One run of ``nas ARGS`` as a process, its stdout and stderr in files under ``logs``."""

    args: Sequence[str]
    cwd: Path
    logs: Path
    pause_at: str | None = None  # NAME:N, see run_nas.py
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def marker(self) -> Path:
        return self.logs / "paused"

    @property
    def stdout(self) -> str:
        return (self.logs / "stdout").read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return (self.logs / "stderr").read_text(errors="replace")

    def start(self) -> Command:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.marker.unlink(missing_ok=True)
        self.marker.with_name(self.marker.name + ".go").unlink(missing_ok=True)
        extra = dict(self.env)
        if self.pause_at is not None:
            extra.update(NAS_TEST_PAUSE_AT=self.pause_at, NAS_TEST_PAUSE_MARKER=str(self.marker))
            argv = [sys.executable, str(RUN_NAS), *self.args]
        else:
            argv = [sys.executable, "-m", "nas.cli", *self.args]
        with (self.logs / "stdout").open("wb") as out, (self.logs / "stderr").open("wb") as err:
            self.process = subprocess.Popen(
                argv, cwd=self.cwd, env=environment(**extra), stdout=out, stderr=err
            )
        return self

    def wait(self, timeout: float = TIMEOUT) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"nas {' '.join(self.args)} took over {timeout} s") from None

    def finish(self) -> None:
        """Wait for a clean exit (code 0)."""
        code = self.wait()
        assert code == 0, f"exit {code}: {self.stderr[-3000:]}"

    def kill_when(self, condition: Callable[[], bool], what: str) -> None:
        """SIGKILL the process as soon as ``condition()`` holds (polled every 10 ms); fails
        if the process ends first."""
        assert self.process is not None
        deadline = time.monotonic() + TIMEOUT
        while not condition():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"nas {' '.join(self.args)} ended (exit {self.process.returncode}) before "
                    f"{what}: {self.stderr[-2000:]}"
                )
            if time.monotonic() > deadline:
                self.process.kill()
                raise AssertionError(f"no {what} within {TIMEOUT} s")
            time.sleep(0.01)
        os.kill(self.process.pid, signal.SIGKILL)
        assert self.process.wait(TIMEOUT) == -signal.SIGKILL
        log = os.environ.get("NAS_KILL_LOG")  # experiments/reliability.py counts the kills
        if log:
            with open(log, "a") as handle:
                handle.write(f"{os.environ.get('PYTEST_CURRENT_TEST', '?')}\t{what}\n")

    def wait_for_pause(self) -> None:
        """Wait until the process stops at its pause point (see ``pause_at``)."""
        assert self.process is not None and self.pause_at is not None
        deadline = time.monotonic() + TIMEOUT
        while not self.marker.exists():
            assert self.process.poll() is None, f"ended before its pause: {self.stderr[-2000:]}"
            assert time.monotonic() < deadline, f"no pause at {self.pause_at} within {TIMEOUT} s"
            time.sleep(0.01)

    def go_on(self) -> None:
        """Let a paused process continue."""
        self.marker.with_name(self.marker.name + ".go").write_text("")

    def kill_at_pause(self) -> None:
        """SIGKILL the process where it paused (see ``pause_at``)."""
        assert self.pause_at is not None
        self.kill_when(self.marker.exists, f"the pause at {self.pause_at}")


def nas(args: Sequence[str], cwd: Path, logs: Path, **options: Any) -> Command:
    return Command(list(args), cwd, logs, **options).start()


# ------------------------------------------------------------------------- file conditions


def line_count(path: Path) -> int:
    """Complete lines (ending in a newline) in ``path``; 0 when it does not exist."""
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def has_lines(path: Path, count: int) -> Callable[[], bool]:
    return lambda: line_count(path) >= count


def exists(path: Path) -> Callable[[], bool]:
    return path.exists


def stderr_shows(command: Command, text: str) -> Callable[[], bool]:
    return lambda: text in command.stderr


# ------------------------------------------------------------------------- file checks


def tear_last_line(path: Path) -> None:
    """Cut the last line of a JSON-lines file in the middle, as a kill during its write does."""
    data = path.read_bytes()
    assert data.endswith(b"\n"), f"{path} does not end in a newline"
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    middle = start + (len(data) - start) // 2
    path.write_bytes(data[:middle])


def jsonl_rows(path: Path) -> list[dict[str, Any]]:
    """Every line of ``path`` parsed: none may be torn or empty once the command finished."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"{path} line {number} is not JSON: {line[:80]!r}") from None
    assert path.read_bytes().endswith(b"\n"), f"{path} ends in a torn line"
    return rows


def check_files_whole(directory: Path) -> list[Path]:
    """Every visible JSON, JSON-lines and safetensors file under ``directory`` reads whole;
    returns the leftover temporary files (hidden ``.NAME....tmp``), which must not be read."""
    from safetensors.torch import load_file

    for path in sorted(directory.rglob("*")):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".jsonl":
            jsonl_rows(path)
        elif path.suffix == ".safetensors":
            load_file(str(path))
    return [p for p in directory.rglob(".*.tmp*") if p.is_file()]
