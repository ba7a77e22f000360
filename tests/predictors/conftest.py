from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import search_spaces as ss
from nas.measure import MeasureConfig, Measurement, library_versions, machine_info
from nas.measure.profiling import profile_blocks, profile_latency
from nas.predictors import LatencyRecord

FAST = MeasureConfig(warmup=1, repeats=3)


def fake_measurement(median_ms: float) -> Measurement:
    """A measurement as measure_latency returns it, without timing anything."""
    return Measurement(
        median_ms=median_ms,
        iqr_ms=0.0,
        min_ms=median_ms,
        samples_ms=(median_ms,),
        runtime="onnxruntime",
        threads=1,
        batch_size=1,
        input_shape=(1, 1, 16, 16),
        machine=machine_info(),
        versions=library_versions(),
    )


@dataclass
class Counter:
    """Counts the calls of a wrapped measuring function."""

    function: Callable[..., Measurement]
    calls: int = 0

    def __call__(self, *args: object, **kwargs: object) -> Measurement:
        self.calls += 1
        return self.function(*args, **kwargs)


@pytest.fixture
def tiny() -> ss.Space:
    return ss.get_space("tiny")


@pytest.fixture
def fake_arch_timer(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Replace whole-network timing by FLOPs-based fake latencies, counting calls."""

    def fake(space: ss.Space, arch: ss.Arch, config: MeasureConfig | None = None) -> Measurement:
        return fake_measurement(0.01 + space.flops(arch) / 1e7)

    counter = Counter(fake)
    monkeypatch.setattr("nas.measure.profiling.measure_arch", counter)
    return counter


@dataclass(frozen=True)
class Measured:
    """Real measurements of a few tiny subnets and of their operators."""

    folder: Path
    archs: list[ss.Arch]
    arch_records: list[LatencyRecord]
    block_records: list[LatencyRecord]


@pytest.fixture(scope="session")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Measured:
    space = ss.get_space("tiny")
    rng = np.random.default_rng(3)
    archs = [space.smallest(), space.largest(), space.sample(rng), space.sample(rng)]
    folder = tmp_path_factory.mktemp("measured")
    arch_records = profile_latency(space, archs, FAST, folder)
    block_records = profile_blocks(space, FAST, folder, archs=archs)
    return Measured(folder, archs, arch_records, block_records)
