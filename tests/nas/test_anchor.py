"""Anchored timing: every round rescaled by a reference network's speed in that round."""

from __future__ import annotations

import statistics

import pytest

import nas.errors
import nas.measure.anchor as anchor
import nas.measure.timing
from nas.measure import MeasureConfig, measure_latency
from nas.measure.anchor import Reference, reference_for, reference_network, time_anchored


@pytest.fixture(autouse=True)
def short_spell_pauses() -> None:
    """The real pauses here (the suite's fixture of that name shortens them): these tests
    record the pauses instead of sleeping."""


class SpellClock:
    """A fake clock and two fake workloads (a subject of ``subject`` ms and a reference of
    ``reference`` ms at full speed) on a machine that is ``slowdown`` times slower while
    ``slow`` says so, as a shared machine is for a second at a time."""

    def __init__(self, subject: float, reference: float, slowdown: float) -> None:
        self.now = 0.0
        self.calls = 0
        self.subject, self.reference, self.slowdown = subject, reference, slowdown
        self.subject_slowdown = slowdown  # how much slower the subject runs in a spell
        self.slow = False
        self.burst = 0  # subject calls still to come that a burst slows 2x

    def perf_counter(self) -> float:
        return self.now

    def _advance(self, ms: float, slowdown: float) -> None:
        self.calls += 1
        self.now += ms * (slowdown if self.slow else 1.0) / 1e3

    def run_subject(self) -> None:
        factor = 2.0 if self.burst > 0 else 1.0
        self.burst = max(0, self.burst - 1)
        self._advance(self.subject * factor, self.subject_slowdown)

    def run_reference(self) -> None:
        self._advance(self.reference, self.slowdown)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> SpellClock:
    fake = SpellClock(subject=3.0, reference=1.0, slowdown=1.8)
    monkeypatch.setattr(nas.measure.timing.time, "perf_counter", fake.perf_counter)
    return fake


def _install_reference(
    clock: SpellClock, config: MeasureConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clock's reference as the one ``config`` measures against, calibrated at 1 ms."""
    monkeypatch.setitem(
        anchor._REFERENCES,
        (config.runtime, config.threads, config.batch_size),
        Reference(clock.run_reference, fastest_ms=1.0),
    )


def test_a_slow_spell_over_the_whole_measurement_is_anchored_away(
    clock: SpellClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = MeasureConfig(warmup=1, repeats=20, rounds=4)
    _install_reference(clock, config, monkeypatch)  # calibrated in a fast spell
    clock.slow = True
    pauses: list[float] = []
    timing = time_anchored(clock.run_subject, config, sleep=pauses.append)
    assert statistics.median(timing.samples_ms) == pytest.approx(3.0)
    assert timing.reference_ms == pytest.approx(1.8) and timing.anchor_ms == pytest.approx(1.0)
    # every round fell in the spell: measured again until the retries ran out, then a
    # majority of the rounds (3 of 4) kept, rescaled
    assert len(pauses) == anchor.ANCHORED_RETRIES and max(pauses) == anchor.MAX_PAUSE_S
    assert len(timing.samples_ms) == 15
    assert len(timing.round_medians_ms) == 4 + anchor.ANCHORED_RETRIES
    assert timing.dropped == 4 + anchor.ANCHORED_RETRIES - 3
    # the raw timing of the same spell is 1.8x slower
    raw = nas.measure.timing.time_rounds(clock.run_subject, warmup=1, repeats=20, rounds=4)
    assert statistics.median(raw.samples_ms) == pytest.approx(5.4)


def test_rounds_in_a_slow_spell_are_measured_again_once_it_ends(
    clock: SpellClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A spell that slows the subject more than the reference (2.2x against 1.5x, as a subnet
    on OpenVINO at batch 8) is not rescaled away: its rounds are measured again after it."""
    config = MeasureConfig(warmup=1, repeats=20, rounds=4)
    _install_reference(clock, config, monkeypatch)
    clock.slowdown, clock.subject_slowdown, clock.slow = 1.5, 2.2, True
    rescaled = time_anchored(clock.run_subject, config, sleep=lambda seconds: None)
    assert statistics.median(rescaled.samples_ms) == pytest.approx(3.0 * 2.2 / 1.5)
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        clock.slow = len(pauses) < 2  # the spell ends during the second pause

    clock.slow = True
    timing = time_anchored(clock.run_subject, config, sleep=pause)
    assert statistics.median(timing.samples_ms) == pytest.approx(3.0)
    assert timing.reference_ms == pytest.approx(1.0)
    # four pauses: the first retry still fell in the spell, three after it were quiet
    assert pauses == [0.05, 0.1, 0.2, 0.4]
    assert len(timing.samples_ms) == 15 and timing.dropped == 4 + 4 - 3
    assert len(timing.round_medians_ms) == 4 + 4


def test_a_burst_in_the_subjects_round_is_measured_again(
    clock: SpellClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = MeasureConfig(warmup=0, repeats=15, rounds=3)
    _install_reference(clock, config, monkeypatch)
    pauses: list[float] = []
    # the reference stays quiet; a burst slows the first two of the subject's rounds (the
    # two untimed warm-up calls, then 5 timed ones each)
    clock.burst = 14
    timing = time_anchored(clock.run_subject, config, sleep=pauses.append)
    assert statistics.median(timing.samples_ms) == pytest.approx(3.0)
    assert len(pauses) == 1 and timing.dropped == 2 and len(timing.samples_ms) == 10
    assert len(timing.round_medians_ms) == 4
    assert max(timing.samples_ms) == pytest.approx(3.0)


def test_a_faster_reference_round_lowers_the_anchor(
    clock: SpellClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = MeasureConfig(warmup=0, repeats=9, rounds=3)
    reference = Reference(clock.run_reference, fastest_ms=1.8)  # calibrated in a slow spell
    monkeypatch.setitem(
        anchor._REFERENCES, (config.runtime, config.threads, config.batch_size), reference
    )
    timing = time_anchored(clock.run_subject, config)  # the machine is fast now
    assert reference.fastest_ms == pytest.approx(1.0)
    assert statistics.median(timing.samples_ms) == pytest.approx(3.0)


def test_calibration_takes_the_fastest_of_spread_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    config = MeasureConfig(runtime="torch", threads=1, batch_size=3)
    monkeypatch.setattr(anchor, "_REFERENCES", {})
    pauses: list[float] = []
    medians = iter([2.0, 1.9, 1.1, 2.0] * anchor.CALIBRATION_ROUNDS)
    monkeypatch.setattr(anchor, "_round_median", lambda run, repeats: next(medians))
    reference = reference_for(config, sleep=pauses.append)
    assert reference.fastest_ms == pytest.approx(1.1)
    assert pauses == [anchor.CALIBRATION_PAUSE_S] * anchor.CALIBRATION_ROUNDS
    assert reference_for(config) is reference  # once per process and settings


def test_reference_network_is_fixed() -> None:
    first, second = reference_network(), reference_network()
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert (a == b).all()
    assert not first.training


def test_anchored_measurements_carry_the_reference() -> None:
    model = reference_network()
    for runtime in ("onnxruntime", "torch"):
        measured = measure_latency(model, (1, 28, 28), MeasureConfig(runtime=runtime, repeats=6))
        assert measured.median_ms > 0 and measured.reference_ms and measured.anchor_ms
        assert measured.anchor_ms <= measured.reference_ms * (1 + 1e-9)
    raw = measure_latency(model, (1, 28, 28), MeasureConfig(repeats=6, anchored=False))
    assert raw.reference_ms is None and raw.anchor_ms is None


def test_anchored_must_be_a_bool() -> None:
    with pytest.raises(nas.errors.UserError, match="anchored"):
        MeasureConfig(anchored="yes")  # type: ignore[arg-type]
