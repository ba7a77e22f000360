"""How well two measurements of the same subnet agree: anchored rescaling alone against
rescaling with the rounds of slow spells measured again.

An anchored measurement (:mod:`nas.measure.anchor`) times the subject and a reference network
round by round. ``rescale`` is how it worked before: every round kept, rescaled by the
reference's speed in that round. ``retry`` is how it works now: a round whose reference ran
more than ``REFERENCE_TOLERANCE`` above its anchor (or whose rescaled median a burst slowed) is
measured again after a pause, and only the quiet rounds kept.

For each runtime and batch size in ``--cases`` the same ``--subnets`` subnets of ``--space``
(those ``nas latency profile`` measures: smallest, largest, the rest stratified by FLOPs) are
measured in two passes over all of them in one process, as two profiles would be (a minute or
so apart, so the two measurements of a subnet may fall in different spells); in each pass
every subnet is measured ``rescale`` then ``retry``, so both modes meet the same machine.
Reported per mode: the share of subnets whose two measurements agree within 10% (the noise
floor a latency predictor is judged beside), the median and 90th percentile disagreement,
and the seconds the measurements took (retries pause).

With ``--contention N``, N background processes make slow spells on purpose while it runs:
each, from its own seed, sleeps 1-3 s, then keeps a core busy for 0.3-1.5 s, over and over
(a machine shared with other work; the spells of this project's virtual machine come and go by
the hour, so a quiet hour shows no difference between the modes).

With ``--profiles A,B`` (repeatable) it measures nothing for that pair and compares two
profile directories of ``nas latency profile --table`` taken with the same settings: the share
of the subnets (``measurements.jsonl``) and of the operators (``blocks.jsonl``) both hold
whose two medians agree within 10%.

Writes ``experiments/results/measurement_agreement-TAG.json`` after each case (rerun with the
same tag, finished cases are kept) and prints Markdown.

    OMP_NUM_THREADS=1 python experiments/measurement_agreement.py --cases openvino:8,onnxruntime:8
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import search_spaces as ss
from nas.files import atomic_write_json
from nas.measure import MeasureConfig, anchor, library_versions, machine_info, measure_arch
from nas.measure.profiling import sample_for_coverage
from nas.predictors import read_records

MODES = ("rescale", "retry")


@contextmanager
def _mode(name: str) -> Iterator[None]:
    """``rescale``: every round kept and rescaled (no round measured again); ``retry``: the
    module as it is."""
    saved = anchor.REFERENCE_TOLERANCE, anchor.ROUND_TOLERANCE, anchor.ANCHORED_RETRIES
    if name == "rescale":
        anchor.REFERENCE_TOLERANCE, anchor.ROUND_TOLERANCE = float("inf"), float("inf")
        anchor.ANCHORED_RETRIES = 0
    try:
        yield
    finally:
        anchor.REFERENCE_TOLERANCE, anchor.ROUND_TOLERANCE, anchor.ANCHORED_RETRIES = saved


def _hog(seed: int) -> None:
    """Sleep 1-3 s, then spin for 0.3-1.5 s, forever (until terminated)."""
    rng = np.random.default_rng(seed)
    while True:
        time.sleep(rng.uniform(1.0, 3.0))
        end = time.perf_counter() + rng.uniform(0.3, 1.5)
        while time.perf_counter() < end:  # a busy core, on purpose
            continue


@contextmanager
def _contention(processes: int) -> Iterator[None]:
    """``processes`` background processes making slow spells (:func:`_hog`) while inside."""
    hogs = [
        multiprocessing.Process(target=_hog, args=(seed,), daemon=True) for seed in range(processes)
    ]
    for hog in hogs:
        hog.start()
    try:
        yield
    finally:
        for hog in hogs:
            hog.terminate()
            hog.join()


def _case(space: ss.Space, runtime: str, batch: int, subnets: int, seed: int) -> dict[str, Any]:
    config = MeasureConfig(runtime=runtime, batch_size=batch)
    archs = sample_for_coverage(space, np.random.default_rng(seed), subnets)
    times: dict[str, list[list[float]]] = {mode: [[], []] for mode in MODES}
    seconds = dict.fromkeys(MODES, 0.0)
    for sweep in range(2):
        for arch in tqdm(archs, desc=f"{runtime} b{batch}, pass {sweep + 1}", unit="subnet"):
            for mode in MODES:
                start = time.perf_counter()
                with _mode(mode):
                    times[mode][sweep].append(measure_arch(space, arch, config).median_ms)
                seconds[mode] += time.perf_counter() - start
    row: dict[str, Any] = {"settings": dataclasses.asdict(config), "subnets": len(archs)}
    for mode in MODES:
        values = np.array(times[mode]).T
        gap = np.abs(values[:, 1] / values[:, 0] - 1)
        row[mode] = {
            "agree_within_10pct": float(np.mean(gap <= 0.1)),
            "median_disagreement": float(np.median(gap)),
            "p90_disagreement": float(np.percentile(gap, 90)),
            "seconds": seconds[mode],
            "medians_ms": values.tolist(),
        }
    return row


def _medians(path: Path) -> dict[str, float]:
    return {record.key: record.median_ms for record in read_records(path)}


def _profiles(first: Path, second: Path) -> dict[str, Any]:
    """How many of the subnets and operators two profile directories share agree within 10%."""
    row: dict[str, Any] = {}
    for label, name in (("subnets", "measurements.jsonl"), ("operators", "blocks.jsonl")):
        one, two = _medians(first / name), _medians(second / name)
        shared = [key for key in one if key in two]
        gap = np.array([abs(two[key] / one[key] - 1) for key in shared])
        row[label] = {
            "shared": len(shared),
            "agree_within_10pct": float(np.mean(gap <= 0.1)) if len(gap) else None,
        }
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="quant-28")
    parser.add_argument("--cases", default="openvino:8,openvino:32,onnxruntime:8,onnxruntime:32")
    parser.add_argument("--subnets", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profiles", action="append", default=[], help="A,B directories")
    parser.add_argument("--contention", type=int, default=0, help="processes making spells")
    parser.add_argument("--tag", default="quant-28")
    args = parser.parse_args()
    space = ss.get_space(args.space)
    out = Path(__file__).with_name("results") / f"measurement_agreement-{args.tag}.json"
    report: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {"cases": {}}
    report.update(
        command=" ".join(["python", *sys.argv]),
        space=space.name,
        machine=machine_info(),
        versions=library_versions(),
        reference_tolerance=anchor.REFERENCE_TOLERANCE,
        contention=args.contention,
    )
    for pair in args.profiles:
        paths = [Path(name) for name in pair.split(",")]
        missing = [str(d) for d in paths if not (d / "measurements.jsonl").is_file()]
        if len(paths) != 2 or missing:
            parser.error(
                f"--profiles {pair}: two profile directories, comma-separated, each with a "
                f"measurements.jsonl ({', '.join(missing) or 'not two'})"
            )
        first, second = paths
        report.setdefault("profiles", {})[pair] = _profiles(first, second)
        atomic_write_json(out, report)
    for case in args.cases.split(",") if not args.profiles else []:
        runtime, batch = case.split(":")
        name = f"{runtime}-b{batch}"
        if name in report["cases"]:
            continue
        with _contention(args.contention):
            report["cases"][name] = _case(space, runtime, int(batch), args.subnets, args.seed)
        atomic_write_json(out, report)
    print(
        "| runtime, batch | subnets | two measurements within 10%: rescaled / measured again "
        "| median disagreement | 90th percentile | seconds |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, row in report["cases"].items():
        old, new = row["rescale"], row["retry"]
        print(
            f"| {name} | {row['subnets']} | {old['agree_within_10pct']:.0%} / "
            f"{new['agree_within_10pct']:.0%} | {old['median_disagreement']:.1%} / "
            f"{new['median_disagreement']:.1%} | {old['p90_disagreement']:.1%} / "
            f"{new['p90_disagreement']:.1%} | {old['seconds']:.0f} / {new['seconds']:.0f} |"
        )
    for pair, row in report.get("profiles", {}).items():
        subnets, operators = row["subnets"], row["operators"]
        print(
            f"profiles {pair}: subnets within 10% {subnets['agree_within_10pct']:.0%} of "
            f"{subnets['shared']}, operators {operators['agree_within_10pct']:.0%} of "
            f"{operators['shared']}"
        )
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
