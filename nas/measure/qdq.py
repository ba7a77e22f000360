"""int8 ONNX graphs in QDQ form, whole or in part: ONNX Runtime's post-training quantization.

:func:`quantize_graph` runs ONNX Runtime's ``quantize_static`` in QDQ format
(QuantizeLinear/DequantizeLinear pairs that ONNX Runtime and OpenVINO fuse into int8
kernels): int8 weights (per channel by default), uint8 activations whose ranges come from a
calibration pass (``minmax``, ``entropy`` or ``percentile``). The graph is first run through
``quant_pre_process`` (shape inference and graph optimisation), as the quantizer's
documentation recommends. With ``nodes`` only those nodes are quantized and the rest stay in
float, with quantize/dequantize at every boundary between the two: a mixed-precision subnet.

:func:`block_nodes` names the nodes of chosen inverted-residual blocks of a graph exported
from :class:`nas.supernet.static.StaticNetwork` (whose node names carry the module path,
``/blocks/blocks.3/...``), so a subnet whose stages differ in precision can be built, timed
and deployed from the arch alone.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas.errors import UserError

__all__ = [
    "METHODS",
    "QuantizeConfig",
    "block_nodes",
    "check_calibration",
    "graph_bytes",
    "graph_input_shape",
    "quantize_graph",
]

logger = logging.getLogger(__name__)

METHODS = ("minmax", "entropy", "percentile")


@dataclass(frozen=True, kw_only=True)
class QuantizeConfig:
    """Settings of :func:`quantize_graph` (validated)."""

    per_channel: bool = True
    method: str = "minmax"
    batch_size: int = 32
    num_batches: int | None = None
    preprocess: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UserError(
                f"unknown calibration method {self.method!r}; choose one of {', '.join(METHODS)}"
            )
        for name in ("batch_size", "num_batches"):
            value = getattr(self, name)
            if value is None and name == "num_batches":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"{name} must be a positive integer, got {value!r}")


def graph_bytes(model: bytes | str | Path) -> bytes:
    """The serialized ONNX graph of ``model`` (bytes as they are, or a file's contents)."""
    if isinstance(model, bytes):
        return model
    path = Path(model)
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    return path.read_bytes()


def _load(graph: bytes) -> Any:
    import onnx

    try:
        return onnx.load_model_from_string(graph)
    except Exception as exc:
        raise UserError(f"not a valid ONNX model: {exc}") from None


def _inputs(proto: Any) -> list[Any]:
    initializers = {t.name for t in proto.graph.initializer}
    return [i for i in proto.graph.input if i.name not in initializers]


def graph_input_shape(graph: bytes) -> tuple[int, int, int] | None:
    """``(C, H, W)`` of the first input of an ONNX graph when those dimensions are fixed."""
    inputs = _inputs(_load(graph))
    if not inputs:
        return None
    dims = inputs[0].type.tensor_type.shape.dim
    values = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if len(values) != 4 or any(v is None or v < 1 for v in values[1:]):
        return None
    return (int(values[1] or 0), int(values[2] or 0), int(values[3] or 0))


def _input_name(graph: bytes) -> str:
    inputs = _inputs(_load(graph))
    if len(inputs) != 1:
        raise UserError(f"quantization supports graphs with one input, this one has {len(inputs)}")
    return str(inputs[0].name)


def check_calibration(graph: bytes, calibration: np.ndarray) -> np.ndarray:
    """``calibration`` as contiguous float32 ``(N, C, H, W)`` data the graph takes; a
    :class:`~nas.errors.UserError` naming the expected shape otherwise."""
    expected = graph_input_shape(graph)
    data = np.asarray(calibration)
    if data.ndim != 4 or (expected is not None and tuple(data.shape[1:]) != expected):
        wanted = f"(N, {', '.join(map(str, expected))})" if expected else "(N, C, H, W)"
        raise UserError(
            f"calibration data has shape {tuple(data.shape)} but the model expects {wanted}"
        )
    if len(data) == 0:
        raise UserError("calibration data is empty")
    if not np.issubdtype(data.dtype, np.floating):
        raise UserError(f"calibration data must be floating point, got {data.dtype}")
    return np.ascontiguousarray(data, dtype=np.float32)


def block_nodes(graph: bytes, blocks: Collection[int]) -> list[str]:
    """Names of the nodes of the static network's blocks ``blocks`` (indices into its flat
    ``blocks`` sequence) in an ONNX graph exported from it."""
    prefixes = tuple(f"/blocks/blocks.{index}/" for index in sorted(blocks))
    if not prefixes:
        return []
    names = [node.name for node in _load(graph).graph.node if node.name.startswith(prefixes)]
    found = {name.split("/")[2] for name in names}
    missing = [p.split("/")[2] for p in prefixes if p.split("/")[2] not in found]
    if missing:
        raise UserError(
            f"the graph has no nodes of {', '.join(missing)}: it was not exported from a "
            "static network of the space, so its blocks cannot be quantized by position"
        )
    return names


def _unshared(graph: bytes, nodes: Collection[str]) -> bytes:
    """``graph`` where no initializer is read by both a node in ``nodes`` and one outside.

    The exporter stores equal constants once (the zero biases of several folded convolutions,
    say); quantizing one reader would hand a float reader the rounded copy. Each such
    initializer gets a copy of its own for the quantized readers.
    """
    import onnx

    proto = _load(graph)
    chosen = set(nodes)
    readers: dict[str, set[bool]] = {}
    for node in proto.graph.node:
        for name in node.input:
            readers.setdefault(name, set()).add(node.name in chosen)
    shared = {
        t.name: t for t in proto.graph.initializer if readers.get(t.name, set()) == {True, False}
    }
    if not shared:
        return graph
    for name, tensor in shared.items():
        copy = onnx.TensorProto()
        copy.CopyFrom(tensor)
        copy.name = f"{name}_int8"
        proto.graph.initializer.append(copy)
    for node in proto.graph.node:
        if node.name in chosen:
            for index, name in enumerate(node.input):
                if name in shared:
                    node.input[index] = f"{name}_int8"
    return bytes(proto.SerializeToString())


def _reader(name: str, data: np.ndarray, batch_size: int) -> Any:
    """A CalibrationDataReader over fixed-size batches of a numpy array."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = [data[i : i + batch_size] for i in range(0, len(data), batch_size)]
            self.iterator: Iterator[np.ndarray] = iter(self.batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.iterator, None)
            return None if batch is None else {name: batch}

        def rewind(self) -> None:
            self.iterator = iter(self.batches)

    return Reader()


def quantize_graph(
    model: bytes | str | Path,
    calibration: np.ndarray,
    config: QuantizeConfig | None = None,
    *,
    nodes: Collection[str] | None = None,
) -> bytes:
    """The int8 QDQ version of the float ONNX ``model``, calibrated on ``calibration``.

    ``calibration`` is ``(N, C, H, W)`` float data shaped like the model's input, normalised as
    in training; at most ``config.num_batches`` batches of ``config.batch_size`` are used.
    ``nodes`` (names, e.g. from :func:`block_nodes`) limits quantization to those nodes.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    config = config or QuantizeConfig()
    graph = graph_bytes(model)
    name = _input_name(graph)
    data = check_calibration(graph, calibration)
    if config.num_batches is not None:
        data = data[: config.num_batches * config.batch_size]
    reader = _reader(name, data, config.batch_size)
    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    chosen = None if nodes is None else sorted(nodes)
    with tempfile.TemporaryDirectory(prefix="nas-quant-") as folder:
        source = Path(folder) / "float.onnx"
        source.write_bytes(graph)
        if config.preprocess:
            prepared = Path(folder) / "prepared.onnx"
            try:
                quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
                source = prepared
            except Exception as exc:  # pre-processing is an optimisation only
                logger.warning("quant_pre_process failed (%s); quantizing the graph as is", exc)
        if chosen is not None:  # after pre-processing, which shares equal constants again
            unshared = Path(folder) / "unshared.onnx"
            unshared.write_bytes(_unshared(source.read_bytes(), chosen))
            source = unshared
        output = Path(folder) / "int8.onnx"
        chatter = io.StringIO()  # the entropy and percentile calibrators print to stdout
        with warnings.catch_warnings(), contextlib.redirect_stdout(chatter):
            warnings.simplefilter("ignore")
            try:
                quantize_static(
                    str(source),
                    str(output),
                    reader,
                    quant_format=QuantFormat.QDQ,
                    per_channel=config.per_channel,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    calibrate_method=methods[config.method],
                    nodes_to_quantize=chosen,
                )
            except UserError:
                raise
            except Exception as exc:
                raise UserError(f"ONNX Runtime could not quantize the model: {exc}") from None
        quantized = output.read_bytes()
    if chatter.getvalue().strip():
        logger.debug("onnxruntime calibration: %s", " ".join(chatter.getvalue().split()))
    logger.info(
        "quantized %s to int8 (%s, per-%s): %d -> %d bytes",
        "the whole graph" if chosen is None else f"{len(chosen)} nodes",
        config.method,
        "channel" if config.per_channel else "tensor",
        len(graph),
        len(quantized),
    )
    return quantized
