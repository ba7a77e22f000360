from __future__ import annotations

import statistics

import numpy as np
import onnxruntime as ort
import pytest
import torch

import nas.measure
import search_spaces as ss
from nas.errors import UserError
from nas.measure import (
    MeasureConfig,
    export_onnx,
    measure_arch,
    measure_latency,
    time_rounds,
)
from nas.supernet.static import build_network


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino", "torch"])
def test_measurement_records_settings_and_restores_threads(runtime: str) -> None:
    space = ss.get_space("tiny")
    before = torch.get_num_threads()
    config = MeasureConfig(runtime=runtime, threads=1, batch_size=2, warmup=1, repeats=5)
    result = measure_arch(space, space.smallest(), config)
    assert torch.get_num_threads() == before
    assert len(result.samples_ms) == 5 and result.median_ms > 0 and result.iqr_ms >= 0
    assert result.min_ms <= result.median_ms
    assert result.runtime == runtime and result.threads == 1 and result.batch_size == 2
    assert result.input_shape == (2, 1, 16, 16)
    assert {"cpu", "logical_cores"} <= set(result.machine)
    assert "torch" in result.versions and "onnxruntime" in result.versions
    assert result.to_dict()["samples_ms"] == list(result.samples_ms)


def test_onnx_export_matches_torch() -> None:
    space = ss.get_space("tiny")
    network = build_network(space, space.largest()).eval()
    example = torch.randn(3, 1, 20, 20)
    graph = export_onnx(network, example[:1])
    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"input": example.numpy()})
    with torch.no_grad():
        expected = network(example).numpy()
    assert np.allclose(out, expected, atol=1e-4)
    assert measure_latency(graph, (1, 20, 20), MeasureConfig(warmup=0, repeats=2)).median_ms > 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"runtime": "tensorrt"},
        {"threads": 0},
        {"batch_size": -1},
        {"repeats": 0},
        {"warmup": -1},
        {"rounds": 0},
    ],
)
def test_bad_measure_config(kwargs: dict[str, object]) -> None:
    with pytest.raises(UserError):
        MeasureConfig(**kwargs)  # type: ignore[arg-type]


class FakeClock:
    """A clock that a fake workload advances: each call takes ``durations[i]`` ms (the last
    duration repeats)."""

    def __init__(self, durations: list[float]) -> None:
        self.now = 0.0
        self.calls = 0
        self.durations = durations
        self.pauses: list[float] = []

    def run(self) -> None:
        self.now += self.durations[min(self.calls, len(self.durations) - 1)] / 1e3
        self.calls += 1

    def perf_counter(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)


def _timed(
    monkeypatch: pytest.MonkeyPatch, durations: list[float], **kwargs: int
) -> tuple[nas.measure.timing.RoundTiming, FakeClock]:
    clock = FakeClock(durations)
    monkeypatch.setattr(nas.measure.timing.time, "perf_counter", clock.perf_counter)
    settings = {"warmup": 2, "repeats": 50, "rounds": 5} | kwargs
    return time_rounds(clock.run, sleep=clock.sleep, **settings), clock


def test_undisturbed_rounds_keep_every_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    timing, clock = _timed(monkeypatch, [1.0])
    assert len(timing.samples_ms) == 50 and timing.dropped == 0 and clock.pauses == []
    assert timing.round_medians_ms == pytest.approx([1.0] * 5)
    assert clock.calls == 52  # warm-up once, not per round


def test_disturbed_rounds_are_dropped_and_measured_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # another process holds the core for the first 32 calls (warm-up + three rounds): 2x slower
    timing, clock = _timed(monkeypatch, [2.0] * 32 + [1.0])
    assert statistics.median(timing.samples_ms) == pytest.approx(1.0)
    assert all(sample == pytest.approx(1.0) for sample in timing.samples_ms)
    assert timing.dropped >= 1 and len(timing.samples_ms) >= 30  # a majority of 5 rounds of 10
    assert clock.pauses == [0.05 * 2**i for i in range(len(clock.pauses))]


def test_a_steady_slow_machine_is_measured_as_slow(monkeypatch: pytest.MonkeyPatch) -> None:
    timing, clock = _timed(monkeypatch, [3.0])
    assert statistics.median(timing.samples_ms) == pytest.approx(3.0) and clock.pauses == []


def test_retries_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # two fast rounds, then a machine that stays busy: no majority, at most MAX_RETRIES retries
    durations = [1.0] * 20 + [2.0]
    timing, clock = _timed(monkeypatch, durations, warmup=0)
    assert len(clock.pauses) == nas.measure.timing.MAX_RETRIES and timing.samples_ms
    assert min(timing.samples_ms) == pytest.approx(1.0)


def test_few_repeats_make_fewer_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    timing, _ = _timed(monkeypatch, [1.0], repeats=5)
    assert len(timing.round_medians_ms) == 1 and len(timing.samples_ms) == 5


def test_openvino_runs_the_same_graph_in_f32_bf16_and_int8() -> None:
    """The OpenVINO runtimes measure a torch module, its ONNX graph and a quantized QDQ graph;
    its f32 outputs match ONNX Runtime's (the precision hint is really f32)."""
    ov = pytest.importorskip("openvino", reason="the openvino extra is not installed")
    from compress import quantize_onnx
    from nas.measure import export_onnx, graph_runner

    space = ss.get_space("tiny")
    torch.manual_seed(0)
    network = build_network(space, space.largest()).eval()
    shape = (space.in_channels, 16, 16)
    example = torch.randn(2, *shape)
    graph = export_onnx(network, example)
    fast = MeasureConfig(runtime="openvino", warmup=1, repeats=3, rounds=1, batch_size=2)
    for model in (network, graph):
        measured = measure_latency(model, shape, fast)
        assert measured.runtime == "openvino" and measured.median_ms > 0
    int8 = quantize_onnx(graph, np.random.default_rng(0).standard_normal((8, *shape)).astype("f"))
    assert measure_latency(int8, shape, fast).median_ms > 0
    capabilities = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    if "BF16" in capabilities:
        bf16 = MeasureConfig(runtime="openvino-bf16", warmup=1, repeats=3, rounds=1)
        assert measure_latency(graph, shape, bf16).median_ms > 0
    inputs = example.numpy()
    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    expected = session.run(None, {"input": inputs})[0]
    request = (
        ov.Core()
        .compile_model(
            ov.Core().read_model(model=graph, weights=b""),
            "CPU",
            {"INFERENCE_PRECISION_HINT": "f32"},
        )
        .create_infer_request()
    )
    got = next(iter(request.infer({0: inputs}).values()))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert graph_runner("openvino", graph, inputs, 1)() is not None


def test_runtime_openvino_without_openvino_says_which_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "openvino", None)  # import fails as if not installed
    config = MeasureConfig(runtime="openvino", warmup=0, repeats=1, rounds=1)
    with pytest.raises(UserError, match=r"OpenVINO, which is not installed: pip install"):
        measure_latency(
            build_network(ss.get_space("tiny"), ss.get_space("tiny").smallest()),
            (1, 16, 16),
            config,
        )


def test_side_by_side_timing_alternates_and_takes_the_median_of_rounds() -> None:
    from nas.measure.timing import time_side_by_side

    calls: list[str] = []
    runners = {name: (lambda name=name: calls.append(name)) for name in ("a", "b")}
    medians = time_side_by_side(runners, rounds=3, repeats=4, warmup=1)
    assert set(medians) == {"a", "b"} and all(m >= 0 for m in medians.values())
    # each round: a's warm-up and repeats, then b's; three rounds in turn
    assert calls == (["a"] * 5 + ["b"] * 5) * 3
