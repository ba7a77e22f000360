"""8-bit quantization: post-training static quantization of ONNX graphs, and QAT in torch.

Post-training quantization (:func:`quantize_onnx`, over :mod:`nas.measure.qdq`, which also
builds the mixed-precision subnets of a search) uses ONNX Runtime's ``quantize_static``
in QDQ format (QuantizeLinear/DequantizeLinear pairs that ONNX Runtime fuses into int8
kernels): int8 weights (per channel by default), uint8 activations whose ranges come from a
calibration pass over batches of the user's own data (``minmax``, ``entropy`` or
``percentile``). The graph is first run through ONNX Runtime's ``quant_pre_process`` (shape
inference and graph optimisation, e.g. folding batch norm into convolutions), which the
quantizer's documentation recommends.

Quantization-aware training (:func:`prepare_qat`, :func:`convert_qat`,
:func:`export_qat_onnx`) uses ``torch.ao.quantization``'s FX graph mode. That API is
deprecated (torch says it will move to torchao's pt2e flow) and prints a DeprecationWarning,
but it still works in this torch version. What works: ``prepare_qat`` inserts fake
quantization (int8 per-channel weights, uint8 activations) with plain ``FakeQuantize``
modules, so after fine-tuning, ``export_qat_onnx`` freezes the observers and exports a QDQ
ONNX graph that ONNX Runtime runs with the learned scales. ``convert_qat`` produces torch's
own quantized model (x86/fbgemm kernels), which cannot be exported to ONNX. FX tracing needs
a forward without data-dependent control flow.

Everything here uses ONNX Runtime and torch only (README: why NNI is not a dependency).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.data import Dataset
from nas.errors import UserError, first_line
from nas.measure import export_onnx
from nas.measure.qdq import (
    METHODS,
    QuantizeConfig,
    check_calibration,
    graph_bytes,
    quantize_graph,
)

__all__ = [
    "METHODS",
    "QUANTIZED_FORMATS",
    "QuantizeConfig",
    "convert_qat",
    "evaluate_onnx",
    "export_qat_onnx",
    "finetune_qat",
    "freeze_qat",
    "onnx_logits",
    "onnx_output_error",
    "onnx_outputs",
    "prepare_qat",
    "quantize_onnx",
]


# The file formats nas quantize writes: int8 QDQ ONNX for ONNX Runtime.
# the QDQ ONNX graph, or the same as OpenVINO IR (.xml and .bin; the openvino extra)
QUANTIZED_FORMATS = ("onnx-int8", "openvino-int8")


def quantize_onnx(
    model: bytes | str | Path,
    calibration: np.ndarray,
    *,
    per_channel: bool = True,
    method: str = "minmax",
    batch_size: int = 32,
    num_batches: int | None = None,
    preprocess: bool = True,
) -> bytes:
    """The int8 QDQ version of the float ONNX ``model``, calibrated on ``calibration`` images
    (:func:`nas.measure.qdq.quantize_graph` on the whole graph).

    ``calibration`` is ``(N, C, H, W)`` float data shaped like the model's input, normalised as
    in training; at most ``num_batches`` batches of ``batch_size`` are used.
    """
    config = QuantizeConfig(
        per_channel=per_channel,
        method=method,
        batch_size=batch_size,
        num_batches=num_batches,
        preprocess=preprocess,
    )
    return quantize_graph(model, calibration, config)


def _session(graph: bytes, threads: int = 1) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise UserError(f"ONNX Runtime cannot load the model: {exc}") from None


def onnx_outputs(
    model: bytes | str | Path, x: np.ndarray, *, batch_size: int = 256, threads: int = 1
) -> dict[str, np.ndarray]:
    """Every output of an ONNX graph on ``x`` (computed batch by batch), by output name."""
    graph = graph_bytes(model)
    data = check_calibration(graph, x)
    session = _session(graph, threads)
    name = session.get_inputs()[0].name
    names = [output.name for output in session.get_outputs()]
    runs = [
        session.run(None, {name: data[i : i + batch_size]}) for i in range(0, len(data), batch_size)
    ]
    return {key: np.concatenate([run[k] for run in runs]) for k, key in enumerate(names)}


def onnx_logits(
    model: bytes | str | Path, x: np.ndarray, *, batch_size: int = 256, threads: int = 1
) -> np.ndarray:
    """The first output of an ONNX graph on ``x``, batch by batch."""
    outputs = onnx_outputs(model, x, batch_size=batch_size, threads=threads)
    return next(iter(outputs.values()))


def onnx_output_error(
    reference: bytes | str | Path, candidate: bytes | str | Path, x: np.ndarray
) -> float:
    """How far ``candidate``'s outputs are from ``reference``'s on ``x`` (e.g. int8 against
    float): the relative root-mean-square error ``||c - r|| / ||r||``, averaged over outputs.
    A quality measure for any output, where accuracy does not apply."""
    expected = onnx_outputs(reference, x)
    actual = onnx_outputs(candidate, x)
    if [v.shape for v in expected.values()] != [v.shape for v in actual.values()]:
        raise UserError("the two ONNX graphs have different outputs; they are not comparable")
    errors = [
        float(np.linalg.norm(b.astype(np.float64) - a)) / max(float(np.linalg.norm(a)), 1e-12)
        for a, b in zip(expected.values(), actual.values(), strict=True)
    ]
    return float(np.mean(errors))


def evaluate_onnx(
    model: bytes | str | Path, x: np.ndarray, y: np.ndarray, *, batch_size: int = 256
) -> float:
    """Top-1 accuracy of an ONNX classifier (one ``(N, classes)`` output) on ``x``/``y``."""
    if len(x) != len(y):
        raise UserError(f"x has {len(x)} samples but y has {len(y)}")
    outputs = onnx_outputs(model, x, batch_size=batch_size)
    shapes = ", ".join(f"{key} {tuple(v.shape)}" for key, v in outputs.items())
    logits = next(iter(outputs.values()))
    if len(outputs) != 1 or logits.ndim != 2:
        raise UserError(
            f"accuracy needs one (N, classes) output of class logits; this graph outputs {shapes}"
        )
    return float((logits.argmax(axis=1) == np.asarray(y)).mean()) if len(y) else 0.0


# ---------------------------------------------------------------------------------- QAT


def _qat_qconfig_mapping() -> Any:
    from torch.ao.quantization import (
        FakeQuantize,
        MovingAverageMinMaxObserver,
        MovingAveragePerChannelMinMaxObserver,
        QConfig,
        QConfigMapping,
    )

    activation = FakeQuantize.with_args(
        observer=MovingAverageMinMaxObserver,
        quant_min=0,
        quant_max=255,
        dtype=torch.quint8,
        qscheme=torch.per_tensor_affine,
    )
    weight = FakeQuantize.with_args(
        observer=MovingAveragePerChannelMinMaxObserver,
        quant_min=-128,
        quant_max=127,
        dtype=torch.qint8,
        qscheme=torch.per_channel_symmetric,
        ch_axis=0,
    )
    return QConfigMapping().set_global(QConfig(activation=activation, weight=weight))


def prepare_qat(model: nn.Module, example_inputs: torch.Tensor) -> nn.Module:
    """A copy of ``model`` with fake quantization inserted, ready for fine-tuning (train mode).

    Uses the deprecated ``torch.ao.quantization`` FX API (see the module docstring).
    """
    from torch.ao.quantization.quantize_fx import prepare_qat_fx

    copied = copy.deepcopy(model).train()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return prepare_qat_fx(copied, _qat_qconfig_mapping(), (example_inputs,))
        except Exception as exc:  # FX tracing errors
            raise UserError(
                f"cannot prepare {type(model).__name__} for QAT (FX tracing failed: "
                f"{first_line(exc)})"
            ) from None


def freeze_qat(prepared: nn.Module) -> nn.Module:
    """An eval-mode copy of a QAT model with its observers off (scales fixed as learned)."""
    from torch.ao.quantization import disable_observer

    frozen = copy.deepcopy(prepared).eval()
    frozen.apply(disable_observer)
    return frozen


def export_qat_onnx(prepared: nn.Module, example_inputs: torch.Tensor) -> bytes:
    """The fine-tuned QAT model as a QDQ ONNX graph (observers frozen, scales as learned)."""
    return export_onnx(freeze_qat(prepared), example_inputs)


def finetune_qat(
    model: nn.Module,
    dataset: Dataset,
    *,
    epochs: int,
    lr: float = 0.005,
    batch_size: int = 64,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> nn.Module:
    """A copy of ``model`` with fake quantization (:func:`prepare_qat`) fine-tuned for ``epochs``
    on ``dataset``'s training images, learning from the labels and from the float ``model``'s
    outputs (distillation, as :func:`compress.distillation.train_student` does); in eval mode,
    ready for :func:`export_qat_onnx`. ``model`` is left unchanged."""
    from compress.distillation import train_student

    if epochs < 1:
        raise UserError(f"quantization-aware fine-tuning needs at least 1 epoch, got {epochs}")
    teacher = copy.deepcopy(model).eval()
    prepared = prepare_qat(model, torch.as_tensor(dataset.x_train[:2]))
    return train_student(
        prepared,
        dataset,
        teacher=teacher,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
    )


def convert_qat(prepared: nn.Module) -> nn.Module:
    """torch's int8 model of a fine-tuned QAT model (runs in torch; not exportable to ONNX)."""
    from torch.ao.quantization.quantize_fx import convert_fx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return convert_fx(freeze_qat(prepared))  # type: ignore[arg-type]
