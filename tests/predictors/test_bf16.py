"""Stages that run in bfloat16: the space and its costs, the accuracy simulated in torch, the
graph that marks them, OpenVINO running exactly those nodes in bf16, and the refusals of the
runtimes and formats that cannot."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import search_spaces as ss
from nas.errors import UserError
from nas.export import export_model
from nas.measure import MeasureConfig, measure_arch
from nas.measure.precision import BF16_KEY, arch_graph, bf16_prefixes, uses_bf16
from nas.measure.profiling import measure_operator
from nas.measure.timing import graph_runner, keep_float32
from nas.predictors import arch_operators
from nas.supernet.fake_quant import simulate_bf16, to_bf16
from nas.supernet.static import build_network
from tests.search_spaces.conftest import bf16_space, with_precisions

FAST = MeasureConfig(warmup=1, repeats=3, rounds=1)
OPENVINO = dataclasses.replace(FAST, runtime="openvino")


def _bf16_capable() -> bool:
    try:
        import openvino as ov
    except ImportError:
        return False
    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


needs_bf16 = pytest.mark.skipif(
    not _bf16_capable(), reason="needs OpenVINO and a CPU with bfloat16 instructions"
)


@pytest.fixture(scope="module")
def space() -> ss.Space:
    return bf16_space()


_with = with_precisions


def _first_bf16(space: ss.Space) -> ss.Arch:
    arch = space.largest()
    return _with(arch, ["bf16"] + ["fp32"] * (len(arch.stages) - 1))


def test_bf16_is_a_precision_between_fp32_and_int8(space: ss.Space) -> None:
    assert ss.PRECISION_BITS["bf16"] == 16
    assert {s.precision for s in space.largest().stages} == {"fp32"}
    assert {s.precision for s in space.smallest().stages} == {"int8"}
    arch = _first_bf16(space)
    assert uses_bf16(arch) and ss.Arch.from_json(arch.to_json()) == arch
    assert json.loads(arch.to_json())["stages"][0]["precision"] == "bf16"
    floating = _with(arch, ["fp32"] * len(arch.stages))
    first = ss.layer_shapes(space, arch).blocks
    saved = sum(b.params() * 2 for b in first if b.precision == "bf16")  # 4 -> 2 bytes each
    assert space.weight_bytes(floating) - space.weight_bytes(arch) == saved > 0
    assert ss.precision_blocks(space, arch, "bf16") == [
        i for i, b in enumerate(first) if b.precision == "bf16"
    ]
    # Predictors see the bit width: 16 between 32 and 8.
    genome = ss.to_genome(space, arch)
    assert ss.decode_genome(space, genome) == arch


@torch.no_grad()
def test_simulated_bf16_rounds_only_the_bf16_blocks(space: ss.Space) -> None:
    arch = _first_bf16(space)
    torch.manual_seed(0)
    network = build_network(space, arch).eval()
    before = {k: v.clone() for k, v in network.state_dict().items()}
    blocks = ss.precision_blocks(space, arch, "bf16")
    simulated = simulate_bf16(network, blocks)
    assert all(torch.equal(v, network.state_dict()[k]) for k, v in before.items())  # unchanged
    for index, block in enumerate(simulated.blocks):
        weights = [m.weight for m in block.modules() if isinstance(m, torch.nn.Conv2d)]
        rounded = all(torch.equal(w, to_bf16(w)) for w in weights)
        assert rounded == (index in blocks)
    x = torch.randn(8, space.in_channels, arch.resolution, arch.resolution)
    exact, approximate = network(x), simulated(x)
    assert not torch.equal(exact, approximate)  # rounded for real
    assert torch.allclose(exact, approximate, rtol=0.05, atol=0.05)  # and only by bf16's error
    assert torch.equal(simulate_bf16(network, [])(x), exact)


def test_the_graph_marks_the_bf16_blocks_and_onnx_runtime_refuses_it(space: ss.Space) -> None:
    arch = _first_bf16(space)
    graph = arch_graph(space, arch)
    prefixes = bf16_prefixes(graph)
    blocks = ss.precision_blocks(space, arch, "bf16")
    assert prefixes == [f"/blocks/blocks.{i}/" for i in blocks]
    names = [n.name for n in onnx.load_model_from_string(graph).graph.node]
    assert any(name.startswith(tuple(prefixes)) for name in names)
    assert bf16_prefixes(arch_graph(space, space.largest())) is None
    example = np.zeros((1, space.in_channels, arch.resolution, arch.resolution), np.float32)
    with pytest.raises(UserError, match="ONNX Runtime cannot run stages in bf16"):
        graph_runner("onnxruntime", graph, example, 1)
    with pytest.raises(UserError, match="runtime onnxruntime cannot run bf16 stages"):
        measure_arch(space, arch, FAST)
    with pytest.raises(UserError, match="runtime torch cannot run bf16 stages"):
        measure_arch(space, arch, dataclasses.replace(FAST, runtime="torch"))
    halves = [op for op in arch_operators(space, arch) if op.block and op.block.precision == "bf16"]
    assert halves
    with pytest.raises(UserError, match="runtime onnxruntime cannot run bf16 operators"):
        measure_operator(space, halves[0], FAST)


@needs_bf16
def test_openvino_runs_exactly_the_marked_nodes_in_bf16(space: ss.Space) -> None:
    import openvino as ov

    arch = _first_bf16(space)
    graph = arch_graph(space, arch)
    prefixes = bf16_prefixes(graph)
    assert prefixes
    core = ov.Core()
    model = keep_float32(core, core.read_model(model=graph, weights=b""), prefixes)
    compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "bf16"})
    convolutions = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if info["layerType"].astype(str) == "Convolution":
            convolutions[op.get_friendly_name()] = info["runtimePrecision"].astype(str)
    marked = {n: p for n, p in convolutions.items() if n.startswith(tuple(prefixes))}
    others = {n: p for n, p in convolutions.items() if n not in marked}
    assert marked and set(marked.values()) == {"bf16"}
    assert others and set(others.values()) == {"f32"}
    assert measure_arch(space, arch, OPENVINO).median_ms > 0
    for operator in arch_operators(space, arch):
        if operator.block is not None and operator.block.precision == "bf16":
            assert measure_operator(space, operator, OPENVINO).median_ms > 0
            break
    else:
        raise AssertionError("no bf16 operator in the arch")


def test_bf16_operators_have_keys_of_their_own(space: ss.Space) -> None:
    arch = _first_bf16(space)
    floating = _with(arch, ["fp32"] * len(arch.stages))
    keys = {op.key for op in arch_operators(space, arch)}
    float_keys = {op.key for op in arch_operators(space, floating)}
    assert keys != float_keys and any("bf16" in key for key in keys)


def test_export_writes_the_marks_and_refuses_torchscript(space: ss.Space, tmp_path: Path) -> None:
    arch = _first_bf16(space)
    network = build_network(space, arch).eval()
    path = export_model(
        None, space, arch, tmp_path / "m.onnx", fmt="onnx", card={}, network=network
    )
    proto = onnx.load(str(path))
    marks = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(marks[BF16_KEY]) == bf16_prefixes(arch_graph(space, arch))
    assert "bf16" in json.loads((tmp_path / "m.onnx.json").read_text())
    with pytest.raises(UserError, match="runs bf16 stages"):
        export_model(None, space, arch, tmp_path / "m.pt", fmt="torchscript", card={})
    assert not (tmp_path / "m.pt").exists()


def test_compress_keeps_bf16_stages_marked_and_int8_stages_quantized(space: ss.Space) -> None:
    from compress.pipeline import CompressConfig, _quantize
    from nas.measure import export_onnx

    arch = space.largest()
    arch = _with(arch, ["bf16", "int8", *["fp32"] * (len(arch.stages) - 2)])
    network = build_network(space, arch).eval()
    shape = (space.in_channels, arch.resolution, arch.resolution)
    graph = export_onnx(network, torch.zeros(1, *shape))
    calibration = np.random.default_rng(0).standard_normal((8, *shape)).astype(np.float32)
    result, note, in_float = _quantize(graph, calibration, CompressConfig(), space, arch)
    assert "only the searched int8 stages [1] quantized" in note
    assert "the searched bf16 stages [0] marked for OpenVINO" in note
    # the float stages' convolutions are named among what ONNX Runtime runs in float
    assert in_float is not None and "in float on ONNX Runtime" in note
    assert {"Conv", "FusedConv"} & set(in_float)
    assert bf16_prefixes(result) == bf16_prefixes(arch_graph(space, arch))
    proto = onnx.load_model_from_string(result)
    quantized = {n.name for n in proto.graph.node if n.op_type == "QuantizeLinear"}
    assert quantized  # the int8 stage's blocks only
    int8 = ss.precision_blocks(space, arch, "int8")
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    inputs = {o for n in proto.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    for conv in convs:
        in_int8 = conv.name.startswith(tuple(f"/blocks/blocks.{i}/" for i in int8))
        assert (conv.input[1] in inputs) == in_int8, conv.name  # int8 weights
