"""Latency anchored to a reference network, for machines whose speed changes by the second.

On a shared virtual machine every network can run 1.6-1.8x slower for a second or so at a
time, switching back and forth (measured on this project's machine: a 0.07 ms subnet timed
0.066-0.121 ms from one measurement to the next). A measurement of a small network takes a few
milliseconds, so a whole measurement lands inside one spell, and which spell is luck: dropping
the slower rounds of one measurement cannot help. Within a spell every network slows alike:
the same subnet's time over a fixed reference network's, timed in alternating rounds, stayed
within 3.1-3.5 (mostly 3.24-3.30) while the raw times changed 1.8x.

So an anchored measurement times the subject and the reference round by round and rescales
each of the subject's rounds by the reference's own speed on this machine over the reference's
speed in that round. The reference's speed is calibrated once per process for each runtime,
thread count and batch size, as the fastest of many rounds spread out in time (contention only
ever adds time), and lowered whenever a later round of the reference runs faster.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from nas.measure.timing import (
    MIN_ROUND_SIZE,
    ONNX_RUNTIMES,
    MeasureConfig,
    RoundTiming,
    export_onnx,
    graph_runner,
    round_sizes,
    time_callable,
    torch_threads,
)

__all__ = ["Reference", "reference_for", "reference_network", "time_anchored"]

CALIBRATION_ROUNDS = 48
"""Rounds of the reference timed, with pauses between them, to find its speed (24 rounds 10 ms
apart once missed the faster spells, and the first measurements of that process came out 1.4x
slow until a faster reference round lowered the anchor)."""
CALIBRATION_PAUSE_S = 0.02
"""The pause between calibration rounds: after a pause the machine may be in another spell."""
ROUND_WARMUP = 2
"""Untimed calls before each round, subject's and reference's alike (their caches differ)."""

_REFERENCES: dict[tuple[str, int, int], Reference] = {}


def reference_network() -> nn.Module:
    """The reference: a fixed small network of the operators subnets are made of (a stem,
    an inverted residual with a depthwise convolution, a pooled classifier) for 1 x 28 x 28
    inputs, with seeded weights, in eval mode."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        network = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 64, 1),
            nn.BatchNorm2d(64),
            nn.Hardswish(),
            nn.Conv2d(64, 64, 3, padding=1, groups=64),
            nn.BatchNorm2d(64),
            nn.Hardswish(),
            nn.Conv2d(64, 24, 1),
            nn.BatchNorm2d(24),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(24, 10),
        )
    return network.eval()


@dataclass
class Reference:
    """The reference network ready to run, and the fastest median of its rounds seen so far."""

    run: Callable[[], object]
    fastest_ms: float

    def observe(self, round_median_ms: float) -> None:
        self.fastest_ms = min(self.fastest_ms, round_median_ms)


def _round_median(run: Callable[[], object], repeats: int) -> float:
    return statistics.median(time_callable(run, warmup=ROUND_WARMUP, repeats=repeats))


def reference_for(
    config: MeasureConfig, *, sleep: Callable[[float], None] = time.sleep
) -> Reference:
    """The reference for ``config``'s runtime, threads and batch size, calibrated at its
    first use in this process (about a second)."""
    key = (config.runtime, config.threads, config.batch_size)
    if key not in _REFERENCES:
        example = torch.randn(
            (config.batch_size, 1, 28, 28), generator=torch.Generator().manual_seed(0)
        )
        module = reference_network()
        if config.runtime in ONNX_RUNTIMES:
            graph = export_onnx(module, example)
            run = graph_runner(config.runtime, graph, example.numpy(), config.threads)
        else:
            run = lambda: module(example)  # noqa: E731 - timed inside the caller's settings
        with torch_threads(config.threads), torch.inference_mode():
            time_callable(run, warmup=config.warmup, repeats=0)
            medians = []
            for _ in range(CALIBRATION_ROUNDS):
                medians.append(_round_median(run, MIN_ROUND_SIZE * 3))
                sleep(CALIBRATION_PAUSE_S)
        _REFERENCES[key] = Reference(run, min(medians))
    return _REFERENCES[key]


def time_anchored(run: Callable[[], object], config: MeasureConfig) -> RoundTiming:
    """``config.repeats`` calls of ``run`` in ``config.rounds`` rounds, each round followed by
    a round of the reference; every sample is scaled by the reference's calibrated speed over
    its median in that round. Call it inside the thread settings ``run`` is timed with."""
    reference = reference_for(config)
    time_callable(run, warmup=config.warmup, repeats=0)
    subject_rounds: list[list[float]] = []
    reference_medians: list[float] = []
    for size in round_sizes(config.repeats, config.rounds):
        subject_rounds.append(time_callable(run, warmup=ROUND_WARMUP, repeats=size))
        reference_medians.append(_round_median(reference.run, max(size, MIN_ROUND_SIZE)))
        reference.observe(reference_medians[-1])
    scaled = [
        [value * reference.fastest_ms / speed for value in samples]
        for samples, speed in zip(subject_rounds, reference_medians, strict=True)
    ]
    return RoundTiming(
        samples_ms=[value for samples in scaled for value in samples],
        round_medians_ms=[statistics.median(samples) for samples in scaled],
        dropped=0,
        reference_ms=statistics.median(reference_medians),
        anchor_ms=reference.fastest_ms,
    )
