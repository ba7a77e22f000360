"""Graphs of subnets whose stages differ in numeric precision, for timing and deployment.

A stage of a space may run in ``int8`` (``search_spaces.PRECISIONS``). Such a subnet runs as
one ONNX graph in which the nodes of its int8 blocks are quantized in QDQ form and the rest
stay in float (:func:`arch_graph`), with a quantize at every float -> int8 boundary and a
dequantize at every int8 -> float one. ONNX Runtime and OpenVINO fuse the pairs into int8
kernels; torch cannot run such a graph.

The latency lookup table times an int8 block alone, with a quantize of its input and a
dequantize of its output (:func:`operator_graph`); where two int8 blocks follow each other the
whole network has neither between them, so the table subtracts one :func:`boundary_graph` (a
quantize-dequantize pair on that tensor) per such junction.

A stage may also run in ``bf16``: its blocks' nodes are listed in the graph's metadata
(:data:`BF16_KEY`, name prefixes; :func:`mark_bf16`), and OpenVINO, the runtime that runs
bfloat16 per node, compiles the graph with its bfloat16 hint while every other node keeps
float32 (:func:`nas.measure.timing.graph_runner`). ONNX Runtime and torch have no such mode.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from nas.errors import UserError
from nas.measure.qdq import QuantizeConfig, block_nodes, quantize_graph
from search_spaces import Arch, Space, int8_blocks, precision_blocks

__all__ = [
    "BF16_KEY",
    "arch_graph",
    "bf16_prefixes",
    "boundary_graph",
    "float_arch",
    "int8_blocks",
    "mark_bf16",
    "mark_bf16_stages",
    "operator_graph",
    "timing_calibration",
    "uses_bf16",
    "uses_int8",
]

# The ONNX metadata key naming the nodes (by name prefix, a JSON list) that run in bfloat16.
BF16_KEY = "nas.bf16_nodes"

# Calibration for graphs that are only timed: a few seeded random batches (the ranges change
# the scales, not the kernels that run).
_TIMING_IMAGES = 16


def float_arch(arch: Arch) -> Arch:
    """``arch`` with every stage in fp32: the float network its int8 form is quantized from."""
    stages = tuple(dataclasses.replace(stage, precision="fp32") for stage in arch.stages)
    return dataclasses.replace(arch, stages=stages)


def uses_int8(arch: Arch) -> bool:
    """Whether any stage of ``arch`` runs in int8."""
    return any(stage.precision == "int8" for stage in arch.stages)


def uses_bf16(arch: Arch) -> bool:
    """Whether any stage of ``arch`` runs in bfloat16."""
    return any(stage.precision == "bf16" for stage in arch.stages)


def mark_bf16(graph: bytes, prefixes: list[str]) -> bytes:
    """``graph`` with the nodes whose names start with one of ``prefixes`` marked to run in
    bfloat16 (``[""]``: every node)."""
    import json

    import onnx

    proto = onnx.load_model_from_string(graph)
    kept = [p for p in proto.metadata_props if p.key != BF16_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    proto.metadata_props.add(key=BF16_KEY, value=json.dumps(prefixes))
    return proto.SerializeToString()


def mark_bf16_stages(graph: bytes, space: Space, arch: Arch) -> bytes:
    """``graph``, exported from the static network of ``arch``, with the blocks of its bf16
    stages marked (:func:`mark_bf16`); unchanged when it has none."""
    blocks = precision_blocks(space, arch, "bf16")
    if not blocks:
        return graph
    return mark_bf16(graph, [f"/blocks/blocks.{index}/" for index in blocks])


def bf16_prefixes(graph: bytes) -> list[str] | None:
    """The name prefixes of the nodes ``graph`` runs in bfloat16 (:func:`mark_bf16`), or None
    where it has none."""
    import json

    import onnx

    if BF16_KEY.encode() not in graph:  # a byte scan, not a parse of the whole graph
        return None
    for prop in onnx.load_model_from_string(graph).metadata_props:
        if prop.key == BF16_KEY:
            prefixes = json.loads(prop.value)
            return [str(p) for p in prefixes]
    return None


def timing_calibration(
    input_shape: tuple[int, int, int], count: int = _TIMING_IMAGES
) -> np.ndarray:
    """Seeded standard-normal images of ``input_shape`` (C, H, W) to calibrate a timed graph."""
    rng = np.random.default_rng(0)
    return rng.standard_normal((count, *input_shape)).astype(np.float32)


def _export(module: nn.Module, input_shape: tuple[int, int, int]) -> bytes:
    from nas.measure.timing import export_onnx

    example = torch.from_numpy(timing_calibration(input_shape, 1))
    return export_onnx(module.eval(), example)


def arch_graph(
    space: Space,
    arch: Arch,
    network: nn.Module | None = None,
    calibration: np.ndarray | None = None,
    config: QuantizeConfig | None = None,
) -> bytes:
    """The ONNX graph of ``arch`` with its int8 stages quantized and its bf16 stages marked
    (:func:`mark_bf16`); a plain float graph when every stage is fp32.

    ``network`` is the arch's :class:`~nas.supernet.static.StaticNetwork` (a freshly
    initialised one by default: enough for timing) and ``calibration`` the images its
    activation ranges come from (seeded noise by default, for timing only).
    """
    if network is None:
        from nas.supernet.static import build_network

        with torch.random.fork_rng():
            torch.manual_seed(0)
            network = build_network(space, arch)
    shape = (space.in_channels, arch.resolution, arch.resolution)
    graph = _export(network, shape)
    blocks = int8_blocks(space, arch)
    if blocks:
        data = timing_calibration(shape) if calibration is None else calibration
        graph = quantize_graph(graph, data, config, nodes=block_nodes(graph, blocks))
    return mark_bf16_stages(graph, space, arch)


def operator_graph(
    module: nn.Module, input_shape: tuple[int, int, int], precision: str = "int8"
) -> bytes:
    """The whole ``module`` as an int8 QDQ graph, calibrated on seeded noise, or as a graph
    run in bfloat16 (``precision="bf16"``): for timing."""
    graph = _export(module, input_shape)
    if precision == "bf16":
        return mark_bf16(graph, [""])
    return quantize_graph(graph, timing_calibration(input_shape))


def boundary_graph(channels: int, size: int) -> bytes:
    """A graph that quantizes a ``(N, channels, size, size)`` float tensor to uint8 and back:
    what the network saves where two int8 blocks meet."""
    import onnx
    from onnx import TensorProto, helper

    shape: list[int | str] = ["batch", channels, size, size]
    graph = helper.make_graph(
        [
            helper.make_node("QuantizeLinear", ["input", "scale", "zero"], ["q"], name="q"),
            helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["output"], name="dq"),
        ],
        "boundary",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)],
        [
            helper.make_tensor("scale", TensorProto.FLOAT, [], [0.05]),
            helper.make_tensor("zero", TensorProto.UINT8, [], [128]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # a broken onnx install, not user input
        raise UserError(f"cannot build a quantize-dequantize graph: {exc}") from None
    return model.SerializeToString()
