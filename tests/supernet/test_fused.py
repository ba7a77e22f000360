"""Fused blocks in the supernet: their own dense convolution, shared projection and SE, the
same function as the static network, channel re-ordering, simulated int8, the latency table's
keys and the quantized graph."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
import torch

import search_spaces as ss
from nas.measure.precision import arch_graph, timing_calibration
from nas.measure.profiling import operator_module
from nas.predictors import arch_operators, space_operators
from nas.supernet import Supernet, reorder_channels
from nas.supernet.extract import extract_network
from nas.supernet.fake_quant import simulate_int8
from nas.supernet.static import build_network
from nas.train import recalibrate_batch_norm

from .conftest import images, randomize


def _with_block_types(space: ss.Space, first: tuple[str, ...], rest: tuple[str, ...]) -> ss.Space:
    """``space`` whose first stage chooses among ``first`` and the others among ``rest``,
    every stage fp32 or int8."""
    stages = tuple(
        dataclasses.replace(
            stage,
            block_type=ss.Choice(first if index == 0 else rest),
            precision=ss.Choice(("fp32", "int8")),
        )
        for index, stage in enumerate(space.stages)
    )
    return dataclasses.replace(space, name=f"{space.name}-fused", stages=stages)


@pytest.fixture(scope="module")
def space() -> ss.Space:
    return _with_block_types(ss.get_space("tiny"), ("mbconv", "fused"), ("mbconv", "fused"))


def _types(arch: ss.Arch, types: list[str]) -> ss.Arch:
    stages = tuple(
        dataclasses.replace(stage, block_type=t)
        for stage, t in zip(arch.stages, types, strict=True)
    )
    return dataclasses.replace(arch, stages=stages)


def _archs(space: ss.Space, count: int, seed: int = 0) -> list[ss.Arch]:
    rng = np.random.default_rng(seed)
    archs = [space.largest(), space.smallest()]
    archs += [space.sample(rng) for _ in range(count)]
    return archs


def test_a_fused_block_has_a_dense_convolution_of_its_own(space: ss.Space) -> None:
    supernet = Supernet(space)
    block = supernet.stage(0).block(0)
    assert block.fused_conv is not None and not block.fused_conv.depthwise
    assert block.depthwise_conv is not None  # the stage may be an inverted residual too
    only_fused = Supernet(_with_block_types(ss.get_space("tiny"), ("fused",), ("mbconv",)))
    first = only_fused.stage(0).block(0)
    assert first.depthwise_conv is None and first.expand_conv is None
    assert only_fused.stage(1).block(0).fused_conv is None
    static = build_network(space, _types(space.largest(), ["fused", "mbconv", "fused"]))
    block_types = [b.fused is not None for b in static.blocks]
    depths = space.largest().depths
    assert block_types == [True] * depths[0] + [False] * depths[1] + [True] * depths[2]


def test_the_supernet_computes_what_the_extracted_network_does(space: ss.Space) -> None:
    torch.manual_seed(0)
    supernet = Supernet(space)
    randomize(supernet, seed=1)
    for arch in _archs(space, 12):
        supernet.set_active(arch)
        x = images(space, arch)
        with torch.no_grad():
            expected = supernet(x)
            static = extract_network(supernet, arch).eval()
            assert torch.allclose(static(x), expected, atol=1e-5), arch


def test_a_fused_and_an_mbconv_subnet_differ_where_they_differ(space: ss.Space) -> None:
    torch.manual_seed(0)
    supernet = Supernet(space)
    randomize(supernet, seed=2)
    largest = space.largest()
    x = images(space, largest)
    outputs = []
    for types in (["fused"] * 3, ["mbconv"] + ["fused"] * 2):
        supernet.set_active(_types(largest, types))
        with torch.no_grad():
            outputs.append(supernet(x))
    assert not torch.allclose(*outputs)


def test_reordering_keeps_every_full_width_function(space: ss.Space) -> None:
    torch.manual_seed(0)
    supernet = Supernet(space)
    randomize(supernet, seed=3)
    largest = space.largest()
    full = [_types(largest, types) for types in (["fused"] * 3, ["mbconv"] * 3)]
    x = images(space, largest)
    before = []
    with torch.no_grad():
        for arch in full:
            supernet.set_active(arch)
            before.append(supernet(x))
        reorder_channels(supernet)
        for arch, expected in zip(full, before, strict=True):
            supernet.set_active(arch)
            assert torch.allclose(supernet(x), expected, atol=1e-4)


def test_simulated_int8_rounds_a_fused_stage(space: ss.Space) -> None:
    torch.manual_seed(0)
    arch = _types(space.largest(), ["fused", "mbconv", "mbconv"])
    network = build_network(space, arch).eval()
    data = timing_calibration((1, arch.resolution, arch.resolution), 32)
    recalibrate_batch_norm(network, data)  # activations of a normal size, as after training
    x = torch.from_numpy(data)
    with torch.no_grad():
        reference = network(x)
        first = [
            i for i, block in enumerate(ss.layer_shapes(space, arch).blocks) if block.stage == 0
        ]
        simulated = simulate_int8(network, first, data)(x)
    error = float((simulated - reference).norm() / reference.norm())
    assert 1e-4 < error < 0.2


def test_fused_blocks_have_their_own_latency_table_keys(space: ss.Space) -> None:
    largest = space.largest()
    fused_keys = {op.key for op in arch_operators(space, largest) if op.kind == "block"}
    mbconv = _types(largest, ["mbconv"] * 3)
    mbconv_keys = {op.key for op in arch_operators(space, mbconv) if op.kind == "block"}
    assert all("type=fused" in key for key in fused_keys)
    assert not any("type=" in key for key in mbconv_keys)
    every = {op.key for op in space_operators(space)}
    for arch in _archs(space, 30, seed=4):
        assert {op.key for op in arch_operators(space, arch)} <= every
    block = next(op for op in arch_operators(space, largest) if op.kind == "block")
    module = operator_module(space, block)
    assert getattr(module, "fused", None) is not None


def test_an_int8_fused_stage_is_quantized_as_a_dense_convolution(space: ss.Space) -> None:
    arch = _types(space.largest(), ["fused", "mbconv", "mbconv"])
    arch = dataclasses.replace(
        arch,
        stages=(dataclasses.replace(arch.stages[0], precision="int8"), *arch.stages[1:]),
    )
    graph = onnx.load_model_from_string(arch_graph(space, arch))
    dense = [
        node
        for node in graph.graph.node
        if node.op_type == "Conv" and node.name.startswith("/blocks/blocks.0/")
    ]
    assert dense, "the fused block's convolutions are in the graph"
    quantized_inputs = {
        node.output[0] for node in graph.graph.node if node.op_type == "DequantizeLinear"
    }
    assert all(node.input[0] in quantized_inputs for node in dense)
