"""``nas search`` killed (SIGKILL) during its strategy rounds and during verification, each
time with the line being written torn, and resumed with ``--resume``, ends with the result of
an uninterrupted search: the same subnets scored once each in every round, the same front, the
same subnets verified with the same accuracies, the same choice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nas.cli import main
from tests.reliability.conftest import copy_workdir
from tests.reliability.harness import (
    check_files_whole,
    has_lines,
    jsonl_rows,
    nas,
    tear_last_line,
)

# Measured latency varies between runs; everything else is fixed by the seed.
TIMED = ("measured_latency_ms", "latency_iqr_ms", "meets_targets", "verified_meets_targets")


def search_args(workdir: Path, out: Path) -> list[str]:
    return [
        "search",
        "--space",
        "tiny",
        "--data",
        "digits",
        "--workdir",
        str(workdir),
        "--target",
        "latency<1s",
        "--evaluations",
        "1100",
        "--out",
        str(out),
        "--threads",
        "1",
        "--seed",
        "0",
    ]


def untimed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if k not in TIMED}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


def histories(out: Path) -> dict[str, list[str]]:
    """Each round's scored subnets, in order (as their genomes)."""
    return {
        path.parent.name: [json.dumps(row["genome"]) for row in jsonl_rows(path)]
        for path in sorted(out.glob("round-*/history.jsonl"))
    }


def check_same_result(out: Path, reference: Path) -> None:
    rounds = histories(out)
    assert rounds == histories(reference)
    for genomes in rounds.values():
        assert len(genomes) == len(set(genomes))  # none scored twice
    front, expected = (json.loads((d / "pareto.json").read_text()) for d in (out, reference))
    for key in ("front", "chosen", "hypervolume", "evaluated", "feasible", "settings"):
        assert untimed(front[key]) == untimed(expected[key]), key
    references = (json.loads((d / "references.json").read_text()) for d in (out, reference))
    assert untimed(next(references)) == untimed(next(references))
    assert (out / "chosen.onnx").is_file() and (out / "chosen.onnx.json").is_file()


def test_search_killed_twice_resumes_to_the_uninterrupted_result(
    base_workdir: Path, tmp_path: Path
) -> None:
    reference = tmp_path / "reference"
    reference_workdir = copy_workdir(base_workdir, tmp_path / "reference-workdir")
    assert main(search_args(reference_workdir, reference)) == 0

    workdir = copy_workdir(base_workdir, tmp_path / "workdir")
    out = tmp_path / "search"
    args = search_args(workdir, out)
    resume = [*args, "--resume"]
    history = out / "round-0" / "history.jsonl"
    measured = workdir / "measured-tiny.jsonl"

    # 1. strategy rounds: the first save of the strategy's state, 1000 subnets in
    first = nas(args, tmp_path, tmp_path / "logs-1", pause_at="strategy.json:1")
    first.kill_at_pause()
    assert not (out / "round-0" / "strategy.json").exists()
    tear_last_line(history)
    # 2. verification: two front subnets measured for real
    second = nas(resume, tmp_path, tmp_path / "logs-2")
    second.kill_when(has_lines(measured, 2), "two verified subnets")
    tear_last_line(measured)
    final = nas(resume, tmp_path, tmp_path / "logs-3")
    final.finish()
    assert "chosen: val accuracy" in final.stdout

    check_same_result(out, reference)
    assert check_files_whole(out) == [] and check_files_whole(workdir) == []
    keys = [row["key"] for row in jsonl_rows(measured)]
    assert len(keys) == len(set(keys))  # no subnet measured twice
