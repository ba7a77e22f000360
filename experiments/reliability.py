"""Reliability figures: kills survived, bad inputs refused, property examples, foreign models.

Runs the reliability tests of the suite in one pytest process and counts what they tried:
- SIGKILLs sent to real `nas` commands (tests/reliability; each kill test resumes the command
  and checks that no epoch, measurement or trial was lost or repeated and no file half-written);
- bad inputs refused with exit 2 and one line, inputs unchanged (tests/bad_inputs);
- hypothesis examples run by the property tests (tests/properties);
- foreign architectures pruned through the library and through `nas prune`
  (tests/compress/test_foreign_models.py).
A failed test counts as a record lost or a traceback: the figures hold only when it says 0.

    python experiments/reliability.py
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import Path
from typing import Any

from nas.files import atomic_write_json
from nas.measure import library_versions, machine_info

ROOT = Path(__file__).resolve().parent.parent
GROUPS = {
    "kills": "tests/reliability",
    "bad_inputs": "tests/bad_inputs",
    "properties": "tests/properties",
    "foreign_models": "tests/compress/test_foreign_models.py",
}


def _cases(junit: Path) -> list[dict[str, Any]]:
    cases = []
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped":
                outcome = "skipped"
        cases.append(
            {
                "file": case.get("file") or case.get("classname", "").replace(".", "/"),
                "name": case.get("name", ""),
                "outcome": outcome,
                "seconds": float(case.get("time", 0)),
            }
        )
    return cases


def _group(case: dict[str, Any]) -> str | None:
    path = case["file"]
    for group, prefix in GROUPS.items():
        dotted = prefix.removesuffix(".py").replace("/", ".")
        if path.startswith(prefix) or path.replace("/", ".").startswith(dotted):
            return group
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default=str(Path(__file__).with_name("results") / "reliability.json")
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        junit = Path(scratch) / "junit.xml"
        kills = Path(scratch) / "kills.log"
        start = time.perf_counter()
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--hypothesis-show-statistics",
                f"--junitxml={junit}",
                *GROUPS.values(),
            ],
            cwd=ROOT,
            env={**os.environ, "NAS_KILL_LOG": str(kills)},
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
        cases = _cases(junit)
        kill_lines = kills.read_text().splitlines() if kills.exists() else []
    examples = sum(int(n) for n in re.findall(r"(\d+) passing(?: examples)?,", run.stdout))
    failing_examples = sum(int(n) for n in re.findall(r"(\d+) failing(?: examples)?,", run.stdout))
    by_group: dict[str, Counter[str]] = {group: Counter() for group in GROUPS}
    for case in cases:
        group = _group(case)
        if group is not None:
            by_group[group][case["outcome"]] += 1
    # in-process runs only: a few cases also run as real processes (counted in "tests")
    bad = [c for c in cases if c["name"].startswith("test_bad_input_is_refused_cleanly[")]
    foreign = {
        m.group(1)
        for c in cases
        if _group(c) == "foreign_models" and c["outcome"] == "passed"
        for m in [re.search(r"prune\w*\[(\w+)\]", c["name"])]
        if m
    }
    failed = sum(counts["failed"] for counts in by_group.values())
    report = {
        "command": " ".join(["python", *sys.argv]),
        "machine": machine_info(),
        "versions": library_versions(),
        "seconds": seconds,
        "pytest_exit_code": run.returncode,
        "tests": {group: dict(counts) for group, counts in by_group.items()},
        "kills_sent": len(kill_lines),
        "kill_tests": sorted({line.split("\t")[0].split(" ")[0] for line in kill_lines}),
        "bad_inputs_refused": sum(c["outcome"] == "passed" for c in bad),
        "bad_inputs_tried": len(bad),
        "property_examples": examples,
        "property_failing_examples": failing_examples,
        "foreign_models_pruned": sorted(foreign),
        "failed_tests": failed,
    }
    atomic_write_json(Path(args.out), report)
    print(f"## reliability ({seconds:.0f} s, pytest exit {run.returncode})")
    print(f"- SIGKILLs sent to real commands and survived: {len(kill_lines)}")
    print(f"- bad inputs refused cleanly: {report['bad_inputs_refused']} of {len(bad)}")
    print(f"- property examples run: {examples} ({failing_examples} failing)")
    print(f"- foreign architectures pruned: {len(foreign)} ({', '.join(sorted(foreign))})")
    print(f"- failed tests (a record lost or a traceback): {failed}")
    print(f"written: {args.out}")
    return 0 if run.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
