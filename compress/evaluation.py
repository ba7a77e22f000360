"""Before/after figures of a compressed model, for any output structure.

:func:`summarize_model` counts parameters and multiply-adds, measures latency (through
:func:`nas.measure.measure_latency`, the one place that times things) and describes the
outputs; it reports top-1 accuracy only where it applies: the model's output is one
``(N, classes)`` tensor of the labelled data set's classes. :func:`accuracy_note` says why
not otherwise (``"not applicable: the model's output is (N, 3, 32, 32), not (N, 10) class
logits"``), or that it was not requested. :func:`compare_models` gives both summaries and the
note as a :class:`ComparisonReport`, which ``nas prune`` prints and writes as JSON.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from compress.images import Data, labels_of
from compress.metrics import count_flops, count_params
from compress.outputs import accuracy_not_applicable, describe_output
from nas.errors import UserError, first_line
from nas.measure import MeasureConfig, measure_latency

__all__ = [
    "ComparisonReport",
    "ModelSummary",
    "accuracy_note",
    "compare_models",
    "graph_accuracy_note",
    "summarize_model",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ModelSummary:
    """Size, cost, speed and (where it applies) accuracy of one model."""

    params: int
    macs: int
    latency_ms: float
    latency_iqr_ms: float
    outputs: str
    accuracy: float | None = None


@dataclass(frozen=True, kw_only=True)
class ComparisonReport:
    """A model before and after compression; ``accuracy_note`` says why accuracy is missing."""

    before: ModelSummary
    after: ModelSummary
    accuracy_note: str
    data: str
    input_shape: tuple[int, int, int]
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "before": asdict(self.before),
            "after": asdict(self.after),
            "accuracy_note": self.accuracy_note,
            "data": self.data,
            "input_shape": list(self.input_shape),
            "settings": self.settings,
        }


def _run(model: nn.Module, images: np.ndarray) -> Any:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(torch.as_tensor(images))
    except Exception as exc:  # the user's forward may raise anything
        raise UserError(
            f"{type(model).__name__} fails on images of shape {tuple(images.shape)}: "
            f"{first_line(exc)}"
        ) from None
    finally:
        model.train(was_training)


def accuracy_note(model: nn.Module, data: Data, *, evaluate: bool = True) -> str:
    """Empty when top-1 accuracy of ``model`` on ``data`` applies and is wanted, else why not."""
    if not evaluate:
        return "not measured (not requested)"
    dataset = labels_of(data)
    output = _run(model, data.x_train[:2])
    reason = accuracy_not_applicable(output, None if dataset is None else dataset.num_classes)
    if reason is None:
        return ""
    if dataset is None:
        reason = f"{data.name} images have no labels"
    return f"not applicable: {reason}"


def graph_accuracy_note(graph: bytes, data: Data, *, evaluate: bool = True) -> str:
    """:func:`accuracy_note` for an ONNX graph."""
    from compress.quantization import onnx_outputs

    if not evaluate:
        return "not measured (not requested)"
    dataset = labels_of(data)
    outputs = [torch.as_tensor(v) for v in onnx_outputs(graph, data.x_train[:2]).values()]
    output: Any = outputs[0] if len(outputs) == 1 else tuple(outputs)
    reason = accuracy_not_applicable(output, None if dataset is None else dataset.num_classes)
    if reason is None:
        return ""
    if dataset is None:
        reason = f"{data.name} images have no labels"
    return f"not applicable: {reason}"


def summarize_model(
    model: nn.Module,
    data: Data,
    *,
    measure: MeasureConfig | None = None,
    evaluate: bool = True,
) -> ModelSummary:
    """Parameters, multiply-adds (one image), latency and outputs of ``model`` on ``data``'s
    image shape; test accuracy only when ``evaluate`` and :func:`accuracy_note` allow it."""
    from nas.train import accuracy

    example = torch.as_tensor(data.x_test[:1] if len(data.x_test) else data.x_train[:1])
    output = _run(model, example.numpy())
    latency = measure_latency(model, data.image_shape, measure)
    dataset = labels_of(data)
    value = None
    if dataset is not None and not accuracy_note(model, data, evaluate=evaluate):
        value = accuracy(model, dataset.x_test, dataset.y_test)
    return ModelSummary(
        params=count_params(model),
        macs=count_flops(model, example),
        latency_ms=latency.median_ms,
        latency_iqr_ms=latency.iqr_ms,
        outputs=describe_output(output),
        accuracy=value,
    )


def compare_models(
    original: nn.Module,
    compressed: nn.Module,
    data: Data,
    *,
    measure: MeasureConfig | None = None,
    evaluate: bool = True,
    settings: dict[str, Any] | None = None,
) -> ComparisonReport:
    """Both models summarised the same way, with the reason accuracy is missing if it is."""
    note = accuracy_note(original, data, evaluate=evaluate)
    before = summarize_model(original, data, measure=measure, evaluate=evaluate)
    after = summarize_model(compressed, data, measure=measure, evaluate=evaluate)
    if before.outputs != after.outputs:
        raise UserError(f"the outputs changed from {before.outputs} to {after.outputs}")
    logger.info(
        "params %d -> %d, MACs %d -> %d, latency %.3f -> %.3f ms",
        before.params,
        after.params,
        before.macs,
        after.macs,
        before.latency_ms,
        after.latency_ms,
    )
    return ComparisonReport(
        before=before,
        after=after,
        accuracy_note=note,
        data=data.name,
        input_shape=data.image_shape,
        settings=dict(settings or {}),
    )
