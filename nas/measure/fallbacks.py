"""What a runtime runs in float in an int8 graph: the float fallbacks a report names.

ONNX Runtime's quantizer wraps operators it has no int8 kernel for (hard-sigmoid, say) in
quantize/dequantize pairs all the same, so only the graph a runtime builds from the QDQ file
tells its int8 operators from its float fallbacks: :func:`float_operators` reads the graph ONNX
Runtime optimizes (quantize/dequantize pairs fused into ``QLinearConv``, ``QGemm``, ...), and
:func:`openvino_float_operators` the runtime model OpenVINO's CPU plugin compiles (each
layer's runtime precision). Data movement (reshapes, layout reorders, conversions) and the
quantize steps themselves are not counted. Both return None, with a warning logged, where the
runtime cannot build that graph: a report's detail, never a reason to fail a command.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from nas.errors import first_line

__all__ = ["float_operators", "float_operators_note", "openvino_float_operators"]

logger = logging.getLogger(__name__)

# ONNX operators that only move or reshape data, and the quantize steps.
_DATA_MOVEMENT = frozenset(
    {"Cast", "Concat", "Flatten", "Gather", "Identity", "Reshape", "Shape", "Slice", "Split"}
    | {"Squeeze", "Transpose", "Unsqueeze", "QuantizeLinear", "DequantizeLinear"}
)
# The same among the layer types of OpenVINO's CPU runtime model.
_OPENVINO_DATA_MOVEMENT = frozenset(
    {"Input", "Output", "Const", "Reorder", "Reshape", "Convert", "Transpose", "Concatenation"}
    | {"Split", "Gather", "StridedSlice", "FakeQuantize"}
)


def _cleaned(proto: Any) -> None:
    """Drop from ``proto`` the nodes whose outputs an earlier node already defines (where a
    tensor has two readers the quantizer can write its quantize/dequantize pair twice, the
    second reading the first) and give every node its own name: ONNX Runtime refuses both when
    it writes an optimized graph."""
    names: set[str] = set()
    defined: set[str] = set()
    kept = []
    for index, node in enumerate(proto.graph.node):
        if node.output and all(output in defined for output in node.output):
            continue
        defined.update(node.output)
        if not node.name or node.name in names:
            node.name = f"{node.name or node.op_type}_{index}"
        names.add(node.name)
        kept.append(node)
    del proto.graph.node[:]
    proto.graph.node.extend(kept)


def float_operators(graph: bytes) -> dict[str, int] | None:
    """The operators ONNX Runtime runs in float in the QDQ ``graph``, by type (data movement
    not counted), after the graph optimizations that fuse each quantize/dequantize-wrapped
    operator it has an int8 kernel for into that kernel (``QLinearConv``, ``QGemm``, ...).
    Empty: every compute operator runs in int8. None, with a warning logged, where ONNX Runtime
    cannot build that graph: a report's detail, never a reason to fail."""
    import onnx
    import onnxruntime as ort

    try:
        proto = onnx.load_model_from_string(graph)
    except Exception as exc:
        logger.warning("cannot list the int8 graph's float operators: %s", exc)
        return None
    _cleaned(proto)
    with tempfile.TemporaryDirectory(prefix="nas-ops-") as folder:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(Path(folder) / "optimized.onnx")
        options.log_severity_level = 3
        try:
            ort.InferenceSession(
                proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ONNX Runtime's own refusal: reported, not raised
            logger.warning("cannot list the int8 graph's float operators: %s", first_line(exc))
            return None
        optimized = onnx.load(options.optimized_model_filepath)
    counts: dict[str, int] = {}
    for node in optimized.graph.node:
        quantized = node.op_type.startswith(("QLinear", "QGemm")) or "Integer" in node.op_type
        if not quantized and node.op_type not in _DATA_MOVEMENT:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def openvino_float_operators(graph: bytes, precision: str = "f32") -> dict[str, int] | None:
    """The layers OpenVINO's CPU plugin runs in float (or bfloat16) in the QDQ ``graph``
    compiled with the inference precision hint ``precision``, by layer type (``Eltwise``,
    ``Math``, ...; data movement and quantize steps not counted). Empty: every compute layer
    runs in int8. None, with a warning logged, where OpenVINO cannot compile it."""
    from nas.measure.timing import require_openvino

    ov = require_openvino("listing OpenVINO's float layers")
    try:
        core = ov.Core()
        hint = {"INFERENCE_PRECISION_HINT": precision}
        compiled = core.compile_model(core.read_model(model=graph, weights=b""), "CPU", hint)
        layers = compiled.get_runtime_model().get_ordered_ops()
    except Exception as exc:  # OpenVINO's own refusal: reported, not raised
        logger.warning("cannot list OpenVINO's float layers: %s", first_line(exc))
        return None
    counts: dict[str, int] = {}
    for layer in layers:
        info = layer.get_rt_info()
        kind, runs_in = info["layerType"].astype(str), info["runtimePrecision"].astype(str)
        if runs_in in ("f32", "bf16", "f16") and kind not in _OPENVINO_DATA_MOVEMENT:
            counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def float_operators_note(operators: dict[str, int] | None, runtime: str = "ONNX Runtime") -> str:
    """``operators`` (:func:`float_operators`, :func:`openvino_float_operators`) in words, for
    a report."""
    if operators is None:
        return f"the operators {runtime} runs in float could not be listed"
    if not operators:
        return f"every operator runs in int8 on {runtime}"
    listed = ", ".join(f"{name} x{count}" for name, count in operators.items())
    return f"in float on {runtime}: {listed}"
