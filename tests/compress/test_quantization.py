from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from compress import (
    convert_qat,
    evaluate_onnx,
    export_qat_onnx,
    freeze_qat,
    onnx_logits,
    prepare_qat,
    quantize_onnx,
)
from nas.data import Dataset
from nas.errors import UserError
from nas.files import file_digest
from nas.measure import export_onnx
from nas.train import accuracy, train_network
from tests.compress import models
from tests.compress.conftest import one_line


@pytest.fixture(scope="module")
def trained(digits16: Dataset) -> tuple[torch.nn.Module, bytes]:
    """A small CNN trained briefly on 16 px digits, and its float ONNX graph."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = models.PlainCNN(width=16)
        train_network(model, digits16, epochs=3, lr=0.1, batch_size=32)
    finally:
        torch.set_num_threads(previous)
    return model.eval(), export_onnx(model, torch.as_tensor(digits16.x_test[:1]))


def test_quantized_onnx_runs_and_keeps_accuracy(
    trained: tuple[torch.nn.Module, bytes], digits16: Dataset
) -> None:
    model, graph = trained
    float_accuracy = evaluate_onnx(graph, digits16.x_test, digits16.y_test)
    assert float_accuracy == pytest.approx(accuracy(model, digits16.x_test, digits16.y_test))
    assert float_accuracy > 0.8
    quantized = quantize_onnx(graph, digits16.x_train[:256], num_batches=4)
    session = ort.InferenceSession(quantized, providers=["CPUExecutionProvider"])
    assert "QuantizeLinear" in {node.op_type for node in _nodes(quantized)}
    assert session.run(None, {"input": digits16.x_test[:3]})[0].shape == (3, 10)
    int8_accuracy = evaluate_onnx(quantized, digits16.x_test, digits16.y_test)
    assert abs(int8_accuracy - float_accuracy) <= 0.03


def _nodes(graph: bytes) -> list[object]:
    import onnx

    return list(onnx.load_model_from_string(graph).graph.node)


def test_int8_model_is_about_four_times_smaller(example: torch.Tensor) -> None:
    torch.manual_seed(0)
    graph = export_onnx(models.PlainCNN(width=64).eval(), example[:1])
    calibration = np.random.default_rng(0).standard_normal((64, 1, 16, 16)).astype(np.float32)
    quantized = quantize_onnx(graph, calibration)
    assert 3.5 < len(graph) / len(quantized) < 4.5


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_other_calibration_methods(
    method: str, trained: tuple[torch.nn.Module, bytes], digits16: Dataset, tmp_path: Path
) -> None:
    _, graph = trained
    path = tmp_path / "float.onnx"
    path.write_bytes(graph)
    digest = file_digest(path)
    quantized = quantize_onnx(path, digits16.x_train[:64], method=method, per_channel=False)
    assert onnx_logits(quantized, digits16.x_test[:4]).shape == (4, 10)
    assert file_digest(path) == digest


def test_wrong_calibration_shape_names_both_shapes(trained: tuple[torch.nn.Module, bytes]) -> None:
    _, graph = trained
    with pytest.raises(UserError, match=r"\(10, 1, 8, 8\).*\(N, 1, 16, 16\)") as info:
        quantize_onnx(graph, np.zeros((10, 1, 8, 8), np.float32))
    one_line(info.value)
    with pytest.raises(UserError, match="shape"):
        quantize_onnx(graph, np.zeros((16, 16), np.float32))
    with pytest.raises(UserError, match="calibration method"):
        quantize_onnx(graph, np.zeros((4, 1, 16, 16), np.float32), method="magic")
    with pytest.raises(UserError, match="not a valid ONNX"):
        quantize_onnx(b"garbage", np.zeros((4, 1, 16, 16), np.float32))


def test_qat_trains_and_exports_qdq_onnx(example: torch.Tensor) -> None:
    torch.manual_seed(0)
    prepared = prepare_qat(models.plain_cnn(), example)
    optimizer = torch.optim.SGD(prepared.parameters(), lr=0.01)
    for _ in range(2):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(prepared(example), torch.tensor([1, 2])).backward()
        optimizer.step()
    graph = export_qat_onnx(prepared, example[:1])
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in _nodes(graph)}  # type: ignore[attr-defined]
    fake_quantized = freeze_qat(prepared)(example).detach().numpy()
    assert np.allclose(onnx_logits(graph, example.numpy()), fake_quantized, atol=1e-4)
    assert convert_qat(prepared)(example).shape == (2, 10)


def test_qat_refuses_untraceable_models(example: torch.Tensor) -> None:
    class Branchy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x) if x.sum() > 0 else x

    with pytest.raises(UserError, match="QAT") as info:
        prepare_qat(Branchy(), example)
    one_line(info.value)


class _HardSwishCNN(torch.nn.Module):
    """Convolutions with hard-swish between them: ONNX Runtime has int8 kernels for the
    convolutions and the classifier, none for hard-swish's hard-sigmoid."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc = torch.nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.hardswish(self.conv1(x))
        x = torch.nn.functional.hardswish(self.conv2(x))
        return self.fc(x.mean(dim=(2, 3)))


def test_float_operators_names_what_onnx_runtime_leaves_in_float(digits16: Dataset) -> None:
    from nas.measure.fallbacks import float_operators, float_operators_note

    torch.manual_seed(0)
    calibration = digits16.x_train[:64]
    example = torch.as_tensor(calibration[:1])
    relu = quantize_onnx(export_onnx(models.PlainCNN(width=8).eval(), example), calibration)
    hardswish = quantize_onnx(export_onnx(_HardSwishCNN().eval(), example), calibration)
    in_float = float_operators(hardswish)
    assert in_float is not None and {"HardSigmoid", "HardSwish"} & set(
        in_float
    )  # as the exporter writes hard-swish
    assert "Conv" not in in_float and "Gemm" not in in_float
    assert (relu_float := float_operators(relu)) is not None
    assert "Conv" not in relu_float and "Relu" not in relu_float
    # the float graph itself: its convolutions are float operators (fused with their ReLU)
    floats = float_operators(export_onnx(models.PlainCNN(width=8).eval(), example))
    assert floats is not None and {"Conv", "FusedConv"} & set(floats)
    assert float_operators(b"not a graph") is None  # a report's detail: never fails the command
    assert "could not be listed" in float_operators_note(None)
    assert float_operators_note({}) == "every operator runs in int8 on ONNX Runtime"
    assert float_operators_note(in_float).startswith("in float on ONNX Runtime: Hard")


def test_openvino_float_operators_names_its_float_layers(digits16: Dataset) -> None:
    pytest.importorskip("openvino")
    from nas.measure.fallbacks import float_operators_note, openvino_float_operators

    torch.manual_seed(0)
    calibration = digits16.x_train[:64]
    example = torch.as_tensor(calibration[:1])
    hardswish = quantize_onnx(export_onnx(_HardSwishCNN().eval(), example), calibration)
    layers = openvino_float_operators(hardswish)
    assert layers is not None and "Convolution" not in layers and "FullyConnected" not in layers
    assert layers  # hard-swish's hard-sigmoid runs in float on OpenVINO too
    floats = openvino_float_operators(export_onnx(_HardSwishCNN().eval(), example))
    assert floats is not None and "Convolution" in floats  # a float graph: all of it
    assert openvino_float_operators(b"not a graph") is None
    assert float_operators_note({}, "OpenVINO") == "every operator runs in int8 on OpenVINO"
