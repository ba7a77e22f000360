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

Not every spell slows every network alike, though: on OpenVINO at batch 8 three profiles of
the same 120 subnets of ``quant-28`` agreed within 10% for only 72-84% of them. So a round
whose reference ran slow is measured again after a pause rather than only rescaled
(:func:`time_anchored`); then two profiles agreed for 98% of the subnets and 96% of the
operators (``experiments/measurement_agreement.py``, which also shows it side by side).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from nas.measure.timing import (
    FIRST_PAUSE_S,
    MIN_ROUND_SIZE,
    ONNX_RUNTIMES,
    ROUND_TOLERANCE,
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
REFERENCE_ROUND_SIZE = 10
"""A round of the reference has at least this many runs, however few the subject's: with 3,
just after the subject ran, its median was above the anchor by 4% half the time and by 48% one
time in ten, and such rounds would be measured again for nothing."""
REFERENCE_TOLERANCE = 0.05
"""A round whose reference ran this much (relative) above the anchor fell in a slow spell and
is measured again (quiet rounds of the reference stay within 3% of it)."""
ANCHORED_RETRIES = 6
"""At most this many rounds are measured again per anchored measurement."""
MAX_PAUSE_S = 0.4
"""The longest pause before a round is measured again (a slow spell lasts a second or so)."""

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


def time_anchored(
    run: Callable[[], object],
    config: MeasureConfig,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> RoundTiming:
    """``config.repeats`` calls of ``run`` in ``config.rounds`` rounds, each round followed by
    a round of the reference; every sample is scaled by the reference's calibrated speed over
    its median in that round. Call it inside the thread settings ``run`` is timed with.

    Rescaling corrects a slow spell only as far as the subject slows like the reference, which
    on OpenVINO at batch 8 it often does not (see the module's docstring). So a round is kept
    only when its reference ran within :data:`REFERENCE_TOLERANCE` of the anchor (a quiet
    machine) and its rescaled median within :data:`ROUND_TOLERANCE` of the fastest quiet
    round's (no burst in the subject's own round); while fewer than a majority of the rounds
    are kept, the worst round is measured again (subject and reference) after a pause
    (:data:`FIRST_PAUSE_S`, doubling up to :data:`MAX_PAUSE_S`), at most
    :data:`ANCHORED_RETRIES` times. When the retries run out (a machine slow for seconds), the
    majority of rounds whose reference ran fastest are kept, rescaled as before."""
    reference = reference_for(config)
    time_callable(run, warmup=config.warmup, repeats=0)
    sizes = round_sizes(config.repeats, config.rounds)

    def measure_round(size: int) -> tuple[list[float], float]:
        samples = time_callable(run, warmup=ROUND_WARMUP, repeats=size)
        speed = _round_median(reference.run, max(size, REFERENCE_ROUND_SIZE))
        reference.observe(speed)
        return samples, speed

    rounds = [measure_round(size) for size in sizes]
    history = list(rounds)  # every round measured, the ones measured again too
    quorum = len(sizes) // 2 + 1

    def rescale(samples: list[float], speed: float) -> list[float]:
        return [value * reference.fastest_ms / speed for value in samples]

    def scaled(index: int) -> list[float]:
        return rescale(*rounds[index])

    def quiet(index: int) -> bool:
        return rounds[index][1] <= reference.fastest_ms * (1 + REFERENCE_TOLERANCE)

    def kept() -> list[int]:
        calm = [index for index in range(len(rounds)) if quiet(index)]
        if not calm:
            return []
        medians = {index: statistics.median(scaled(index)) for index in calm}
        fastest = min(medians.values())
        return [index for index in calm if medians[index] <= fastest * (1 + ROUND_TOLERANCE)]

    pause = FIRST_PAUSE_S
    for _ in range(ANCHORED_RETRIES):
        keep = kept()
        if len(keep) >= quorum:
            break
        worst = max(
            (index for index in range(len(rounds)) if index not in keep),
            key=lambda index: (not quiet(index), statistics.median(scaled(index))),
        )
        sleep(pause)
        pause = min(pause * 2, MAX_PAUSE_S)
        rounds[worst] = measure_round(sizes[worst])
        history.append(rounds[worst])
    keep = kept()
    if len(keep) < quorum:
        keep = sorted(range(len(rounds)), key=lambda index: rounds[index][1])[:quorum]
    kept_rounds = [scaled(index) for index in sorted(keep)]
    return RoundTiming(
        samples_ms=[value for samples in kept_rounds for value in samples],
        round_medians_ms=[statistics.median(rescale(*measured)) for measured in history],
        dropped=len(history) - len(keep),
        reference_ms=statistics.median(rounds[index][1] for index in keep),
        anchor_ms=reference.fastest_ms,
    )
