"""The lookup table's calibration: one line for every operator, or a scale per operator group.

For each latency profile directory given (what ``nas search`` or ``nas latency profile`` leaves
under ``WORKDIR/latency-SPACE/RUNTIME-tT-bB``: whole subnets in ``measurements.jsonl``, every
operator in ``blocks.jsonl``), the lookup table is fitted on all but ``--held-out`` of the
profiled subnets and judged on those, ``--draws`` times over: the share within 10% of
measured and the median error, with the common line (``groups=False``, the table before) and
with a scale per operator group (stem, head, int8 boundaries, blocks by precision and type;
the default now). No measurement is taken: it only refits what the profiles hold, in seconds.

With ``--verified RESULTS.json`` (a ``joint_search.py`` results file whose ``measured_again``
holds a second measurement of each verified point, taken in another process after every
search), the table fitted on the whole profile is also judged on the verified points of the
searches on that runtime and batch, against their second measurement (the searches' own
measurement is what the searches used; the second one is the quiet reference).

Writes ``experiments/results/latency_calibration-TAG.json`` and prints Markdown.

    python experiments/latency_calibration.py runs/quant-e144/latency-quant-28/* --space quant-28
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

import search_spaces as ss
from nas.files import atomic_write_json
from nas.measure import library_versions, machine_info
from nas.predictors import LatencyTable, read_records


def _within(predicted: np.ndarray, measured: np.ndarray) -> float:
    return float(np.mean(np.abs(predicted / measured - 1) <= 0.1))


def _profile(
    space: ss.Space, folder: Path
) -> tuple[list[Any], list[ss.Arch], np.ndarray, dict[str, Any]]:
    """The operator records, the profiled subnets and their medians, and their settings."""
    subnets = [r for r in read_records(folder / "measurements.jsonl") if r.space == space.name]
    settings = subnets[-1].settings
    subnets = [r for r in subnets if r.settings == settings]
    operators = [
        r
        for r in read_records(folder / "blocks.jsonl")
        if r.space == space.name and r.settings == settings
    ]
    archs = [ss.Arch.from_dict(r.arch) for r in subnets if r.arch is not None]
    return operators, archs, np.array([r.median_ms for r in subnets]), settings


def _held_out(
    space: ss.Space,
    operators: list[Any],
    archs: list[ss.Arch],
    y: np.ndarray,
    held_out: int,
    draws: int,
    groups: bool,
) -> dict[str, float]:
    rng = np.random.default_rng(0)
    shares, errors = [], []
    for _ in range(draws):
        order = rng.permutation(len(y))
        test, train = order[:held_out], order[held_out:]
        table = LatencyTable(space, operators, groups=groups)
        table.fit([archs[i] for i in train], y[train])
        predicted = table.predict([archs[i] for i in test])
        shares.append(_within(predicted, y[test]))
        errors.append(float(np.median(np.abs(predicted / y[test] - 1))))
    return {"within_10pct": float(np.mean(shares)), "median_error": float(np.mean(errors))}


def _verified_points(results: dict[str, Any], runtime: str, batch: int) -> dict[str, float]:
    """Arch JSON -> second measurement of the joint searches' verified points on ``runtime``
    (the results file's batch must be ``batch``)."""
    searches = results.get("searches", {})
    first: dict[str, Any] = next(iter(searches.values()), {})
    if first.get("settings", {}).get("measure", {}).get("batch_size") != batch:
        return {}
    return dict(results.get("measured_again", {}).get(f"joint-{runtime}", {}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profiles", nargs="+", help="latency profile directories")
    parser.add_argument("--space", default="quant-28")
    parser.add_argument("--held-out", type=int, default=30)
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--verified", action="append", default=[], help="joint_search results")
    parser.add_argument("--tag", default="quant-28")
    args = parser.parse_args()
    space = ss.get_space(args.space)
    verified = [json.loads(Path(f).read_text()) for f in args.verified]
    report: dict[str, Any] = {
        "command": " ".join(["python", *sys.argv]),
        "space": space.name,
        "machine": machine_info(),
        "versions": library_versions(),
        "held_out": args.held_out,
        "draws": args.draws,
        "profiles": {},
    }
    for name in args.profiles:
        folder = Path(name)
        operators, archs, y, settings = _profile(space, folder)
        row: dict[str, Any] = {"settings": settings, "subnets": len(y)}
        again: dict[str, float] = {}
        for results in verified:
            again |= _verified_points(results, settings["runtime"], settings["batch_size"])
        points = [ss.Arch.from_dict(json.loads(key)) for key in again]
        for label, groups in (("line", False), ("groups", True)):
            row[label] = _held_out(space, operators, archs, y, args.held_out, args.draws, groups)
            if points:
                table = LatencyTable(space, operators, groups=groups).fit(archs, y)
                row[label]["verified_points"] = len(points)
                row[label]["verified_within_10pct"] = _within(
                    table.predict(points), np.array(list(again.values()))
                )
        report["profiles"][folder.name] = row
    out = Path(__file__).with_name("results") / f"latency_calibration-{args.tag}.json"
    atomic_write_json(out, report)
    print(
        f"| profile | subnets | held-out within 10%: one line | a scale per group "
        f"(median error, {args.held_out} held out, {args.draws} draws) | verified points: "
        "one line / per group |"
    )
    print("|---|---:|---:|---:|---|")
    for name, row in report["profiles"].items():
        line, groups = row["line"], row["groups"]
        verified_cell = (
            f"{line['verified_within_10pct']:.0%} / {groups['verified_within_10pct']:.0%} "
            f"({line['verified_points']})"
            if "verified_points" in line
            else "-"
        )
        print(
            f"| {name} | {row['subnets']} | {line['within_10pct']:.0%} "
            f"({line['median_error']:.1%}) | {groups['within_10pct']:.0%} "
            f"({groups['median_error']:.1%}) | {verified_cell} |"
        )
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
