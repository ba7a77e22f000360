"""``nas latency profile`` killed (SIGKILL) while measuring the lookup table's operators, with
lines torn in both of its files, and rerun: every subnet and operator the seed picks is
measured exactly once, and every line of both files parses."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import search_spaces as ss
from nas.measure.profiling import sample_for_coverage
from nas.predictors.operators import space_operators
from tests.reliability.harness import has_lines, jsonl_rows, nas, tear_last_line

SPACE = ss.get_space("tiny")
SUBNETS = 10


def test_profile_killed_with_torn_lines_measures_everything_once(tmp_path: Path) -> None:
    out = tmp_path / "profile"
    args = ["latency", "profile", "--space", "tiny", "--out", str(out), "--table"]
    args += ["--subnets", str(SUBNETS), "--warmup", "1", "--repeats", "3", "--rounds", "1"]
    args += ["--threads", "1", "--seed", "0"]
    measurements, blocks = out / "measurements.jsonl", out / "blocks.jsonl"

    # killed while measuring the table's operators, the last line of both files torn as if
    # each had been the line being written
    first = nas(args, tmp_path, tmp_path / "logs-1")
    first.kill_when(has_lines(blocks, 5), "five measured operators")
    assert len(jsonl_rows(measurements)) == SUBNETS
    tear_last_line(measurements)
    tear_last_line(blocks)
    final = nas(args, tmp_path, tmp_path / "logs-2")
    final.finish()
    assert final.stderr.count("truncated or corrupt last line") == 2
    # one line each, no Python source line under them
    lines = final.stderr.replace("\r", "\n").splitlines()  # progress bars redraw with \r
    torn = [line for line in lines if "truncated or corrupt" in line]
    assert all(line.startswith("warning: ") for line in torn), [t[:60] for t in torn]
    assert "warnings.warn" not in final.stderr and "read_records" not in final.stderr
    assert f"{SUBNETS} subnets measured" in final.stdout

    archs = sample_for_coverage(SPACE, np.random.default_rng(0), SUBNETS)
    rows = jsonl_rows(measurements)
    keys = [row["key"] for row in rows]
    assert sorted(keys) == sorted(arch.to_json() for arch in archs)  # none lost, none twice
    operators = space_operators(SPACE, archs)
    keys = [row["key"] for row in jsonl_rows(blocks)]
    assert sorted(keys) == sorted(operator.key for operator in operators)
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
