from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import search_spaces as ss
from nas.errors import UserError
from nas.measure import MeasureConfig, measure_arch
from nas.measure.profiling import (
    BLOCKS_FILE,
    MEASUREMENTS_FILE,
    profile_blocks,
    profile_latency,
    sample_for_coverage,
)
from nas.predictors import (
    OVERHEAD_KEY,
    arch_operators,
    genome_costs,
    read_records,
    space_operators,
)

from .conftest import FAST, Counter, Measured


def _archs(space: ss.Space, count: int, seed: int = 0) -> list[ss.Arch]:
    return sample_for_coverage(space, np.random.default_rng(seed), count)


def test_profile_latency_writes_one_line_per_arch(
    tiny: ss.Space, fake_arch_timer: Counter, tmp_path: Path
) -> None:
    archs = _archs(tiny, 4)
    seen: list[tuple[int, int]] = []
    records = profile_latency(
        tiny, archs, FAST, tmp_path, progress=lambda done, total: seen.append((done, total))
    )
    lines = (tmp_path / MEASUREMENTS_FILE).read_text().splitlines()
    assert len(lines) == 4 and fake_arch_timer.calls == 4
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    first = json.loads(lines[0])
    assert ss.Arch.from_dict(first["arch"]) == archs[0]
    assert first["settings"] == {
        "runtime": "onnxruntime",
        "threads": 1,
        "batch_size": 1,
        "warmup": 1,
        "repeats": 3,
        "rounds": 5,
        "anchored": True,
    }
    assert {"median_ms", "iqr_ms", "machine", "versions"} <= set(first)
    assert [r.to_arch() for r in records] == archs


def test_profile_latency_resumes_without_remeasuring(
    tiny: ss.Space, fake_arch_timer: Counter, tmp_path: Path
) -> None:
    archs = _archs(tiny, 5)
    file = tmp_path / "run.jsonl"
    profile_latency(tiny, archs[:3], FAST, file)
    assert fake_arch_timer.calls == 3
    # Simulate a kill in the middle of writing the third line.
    text = file.read_text()
    file.write_text(text[: len(text) - 40])
    with pytest.warns(RuntimeWarning, match="truncated or corrupt last line 3"):
        records = profile_latency(tiny, archs, FAST, file)
    assert fake_arch_timer.calls == 3 + 3  # the cut one and the two new ones
    assert [r.to_arch() for r in records] == archs
    on_disk = read_records(file)
    assert [r.to_arch() for r in on_disk] == archs
    # Everything is there now: nothing is measured, in any order, duplicates included.
    profile_latency(tiny, [archs[4], archs[0], archs[0]], FAST, file)
    assert fake_arch_timer.calls == 6
    assert len(read_records(file)) == 5


def test_profile_latency_remeasures_for_other_settings(
    tiny: ss.Space, fake_arch_timer: Counter, tmp_path: Path
) -> None:
    archs = _archs(tiny, 2)
    profile_latency(tiny, archs, FAST, tmp_path)
    profile_latency(tiny, archs, MeasureConfig(warmup=1, repeats=3, threads=2), tmp_path)
    assert fake_arch_timer.calls == 4
    assert len(read_records(tmp_path / MEASUREMENTS_FILE)) == 4


def test_profile_latency_file_with_missing_final_newline(
    tiny: ss.Space, fake_arch_timer: Counter, tmp_path: Path
) -> None:
    archs = _archs(tiny, 3)
    file = tmp_path / MEASUREMENTS_FILE
    profile_latency(tiny, archs[:2], FAST, file)
    file.write_text(file.read_text().rstrip("\n"))  # complete record, newline lost
    profile_latency(tiny, archs, FAST, file)
    assert fake_arch_timer.calls == 3
    assert len(read_records(file)) == 3


def test_corrupt_middle_line_is_an_error(
    tiny: ss.Space, fake_arch_timer: Counter, tmp_path: Path
) -> None:
    archs = _archs(tiny, 3)
    file = tmp_path / MEASUREMENTS_FILE
    profile_latency(tiny, archs, FAST, file)
    lines = file.read_text().splitlines()
    lines[1] = "{not json"
    file.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match="line 2 is not a latency record"):
        profile_latency(tiny, archs, FAST, file)


def test_profile_latency_rejects_foreign_arch(tiny: ss.Space, tmp_path: Path) -> None:
    other = ss.get_space("mbv3-small").largest()
    with pytest.raises(UserError, match="archs\\[0\\] is not a subnet of 'tiny'"):
        profile_latency(tiny, [other], FAST, tmp_path)


def test_real_profile_resumes_after_kill(
    measured: Measured, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    space = ss.get_space("tiny")
    assert all(r.median_ms > 0 and r.iqr_ms >= 0 for r in measured.arch_records)
    file = tmp_path / MEASUREMENTS_FILE
    shutil.copy(measured.folder / MEASUREMENTS_FILE, file)
    data = file.read_bytes()
    file.write_bytes(data[: len(data) - 25])
    counter = Counter(measure_arch)
    monkeypatch.setattr("nas.measure.profiling.measure_arch", counter)
    with pytest.warns(RuntimeWarning):
        records = profile_latency(space, measured.archs, FAST, file)
    assert counter.calls == 1
    assert records[:-1] == measured.arch_records[:-1]
    assert records[-1].median_ms > 0


def test_space_operators_cover_every_subnet(tiny: ss.Space) -> None:
    operators = space_operators(tiny)
    keys = [op.key for op in operators]
    assert len(keys) == len(set(keys)) and keys[0] == OVERHEAD_KEY
    rng = np.random.default_rng(0)
    archs = [tiny.sample(rng) for _ in range(300)] + [tiny.smallest(), tiny.largest()]
    used = {op.key for arch in archs for op in arch_operators(tiny, arch)}
    assert used <= set(keys)
    assert {op.kind for op in operators} == {"overhead", "stem", "block", "head"}
    some = space_operators(tiny, archs[:2])
    assert {op.key for op in some} == {OVERHEAD_KEY} | {
        op.key for arch in archs[:2] for op in arch_operators(tiny, arch)
    }


def test_profile_blocks_records_and_resumes(
    measured: Measured, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    space = ss.get_space("tiny")
    kinds = [r.kind for r in measured.block_records]
    assert kinds[0] == "overhead" and "stem" in kinds and "head" in kinds
    assert kinds.count("block") >= 6
    assert all(r.median_ms > 0 for r in measured.block_records)
    file = tmp_path / BLOCKS_FILE
    shutil.copy(measured.folder / BLOCKS_FILE, file)

    def refuse(*args: object) -> None:
        raise AssertionError("an operator was measured again")

    monkeypatch.setattr("nas.measure.profiling.measure_operator", refuse)
    again = profile_blocks(space, FAST, tmp_path, archs=measured.archs)
    assert [r.key for r in again] == [r.key for r in measured.block_records]


def test_sample_for_coverage(tiny: ss.Space) -> None:
    space = ss.get_space("mbv3-small")
    archs = sample_for_coverage(space, np.random.default_rng(1), 30)
    assert len(archs) == 30
    assert archs[0] == space.smallest() and archs[1] == space.largest()
    assert len({a.to_json() for a in archs}) == 30
    assert archs == sample_for_coverage(space, np.random.default_rng(1), 30)
    flops = np.array([space.flops(a) for a in archs[2:]])
    assert (np.diff(flops) >= 0).all()  # one per FLOPs bin, in increasing order
    pool = genome_costs(space, ss.sample_genomes(space, np.random.default_rng(2), 2000)).flops
    assert flops.min() < np.quantile(pool, 0.05) and flops.max() > np.quantile(pool, 0.95)
    assert sample_for_coverage(tiny, np.random.default_rng(0), 1) == [tiny.smallest()]
    with pytest.raises(UserError):
        sample_for_coverage(tiny, np.random.default_rng(0), -1)


def test_records_from_another_machine_are_not_reused(
    tiny: ss.Space, fake_arch_timer: Counter, tmp_path: Path
) -> None:
    archs = _archs(tiny, 2)
    file = tmp_path / MEASUREMENTS_FILE
    profile_latency(tiny, archs, FAST, file)
    lines = [json.loads(line) for line in file.read_text().splitlines()]
    lines[0]["machine"]["cpu"] = "Imaginary CPU 9000"
    file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    records = profile_latency(tiny, archs, FAST, file)
    assert fake_arch_timer.calls == 3
    assert records[0].machine["cpu"] != "Imaginary CPU 9000"
