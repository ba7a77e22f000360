from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

import search_spaces as ss
from nas.errors import UserError
from nas.measure import MeasureConfig, export_onnx, measure_arch, measure_latency
from nas.models import build_network


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
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
    [{"runtime": "tensorrt"}, {"threads": 0}, {"batch_size": -1}, {"repeats": 0}, {"warmup": -1}],
)
def test_bad_measure_config(kwargs: dict[str, object]) -> None:
    with pytest.raises(UserError):
        MeasureConfig(**kwargs)  # type: ignore[arg-type]
