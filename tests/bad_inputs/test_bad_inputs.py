"""Every bad input of the corpus (:mod:`tests.bad_inputs.cases`) is refused cleanly: exit code
2, exactly one non-empty line on stderr naming the problem, no traceback, every input file
byte-for-byte unchanged, nothing new written, and no code run from a pickle."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from nas.cli import main
from tests.bad_inputs.cases import CASES, Case
from tests.bad_inputs.files import MARKER

# Run as real processes too: what a user's terminal shows (warnings, logging, progress bars
# included), and that a refused pickle runs no code in a fresh interpreter either.
IN_A_PROCESS = ["prune-code-running-pickle", "data-cifar-code-running-pickle", "export-not-a-run"]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _tree(root: Path) -> dict[str, str]:
    """Every file and directory under ``root``: a SHA-256 for files, "dir" for directories."""
    tree = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        tree[name] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return tree


def _not_progress(line: str) -> bool:
    return bool(line.strip()) and "%|" not in line and not line.endswith("it/s]")


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse usage errors
        code = exit_.code if isinstance(exit_.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_corpus_is_large_and_ids_are_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) >= 60
    assert len(set(ids)) == len(ids)
    commands = {case.argv[0] for case in CASES}
    assert commands >= {
        "search",
        "train",
        "latency",
        "export",
        "data",
        "spaces",
        "prune",
        "quantize",
        "compress",
        "distill",
    }


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_cleanly(
    case: Case,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    case.files(tmp_path)
    monkeypatch.chdir(tmp_path)  # default outputs (runs/...) land here, and are checked too
    if case.patch is not None:
        case.patch(monkeypatch)
    before = _tree(tmp_path)

    code, out, err = _run(case.args(str(tmp_path)), capsys)

    assert "Traceback" not in out + err
    lines = err.splitlines()
    if case.after_work:  # drop progress-bar redraws (tqdm writes them ending in "\r")
        lines = [line for line in err.replace("\r", "\n").splitlines() if _not_progress(line)]
    assert code == 2, f"exit code {code}; stderr: {err!r}"
    assert len(lines) == 1 and lines[0].strip(), f"not one line: {err!r}"
    assert case.message.lower() in lines[0].lower(), lines[0]
    assert not (tmp_path / MARKER).exists(), "a pickle ran code"
    assert _tree(tmp_path) == before, "inputs changed or outputs left behind"


@pytest.mark.parametrize("case_id", IN_A_PROCESS)
def test_bad_input_is_refused_cleanly_in_a_process(case_id: str, tmp_path: Path) -> None:
    case = next(case for case in CASES if case.id == case_id)
    case.files(tmp_path)
    before = _tree(tmp_path)
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-m", "nas.cli", *case.args(str(tmp_path))],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and case.message.lower() in lines[0].lower(), result.stderr
    assert not (tmp_path / MARKER).exists()
    assert _tree(tmp_path) == before
