"""Subnets whose stages differ in precision: their graphs, their operators in the latency
table, their measured latency, and their simulated int8 accuracy."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import search_spaces as ss
from compress.quantization import evaluate_onnx
from nas.errors import UserError
from nas.measure import MeasureConfig, measure_arch, measure_latency
from nas.measure.precision import (
    arch_graph,
    boundary_graph,
    int8_blocks,
    operator_graph,
    timing_calibration,
    uses_int8,
)
from nas.measure.profiling import operator_module, profile_blocks, profile_latency
from nas.measure.qdq import block_nodes
from nas.predictors import LatencyTable, arch_operators, space_operators
from nas.supernet.fake_quant import fake_quantize_weight, fold_batch_norm, simulate_int8
from nas.supernet.static import build_network
from nas.train import recalibrate_batch_norm

from .conftest import FAST


def _with_precision(space: ss.Space) -> ss.Space:
    """``space`` with every stage free to run in fp32 or int8."""
    choice = ss.Choice(("fp32", "int8"))
    stages = tuple(dataclasses.replace(s, precision=choice) for s in space.stages)
    return dataclasses.replace(space, name=f"{space.name}-int8", stages=stages)


@pytest.fixture(scope="module")
def mixed_space() -> ss.Space:
    return _with_precision(ss.get_space("tiny"))


def _set(arch: ss.Arch, precisions: list[str]) -> ss.Arch:
    stages = tuple(
        dataclasses.replace(stage, precision=p)
        for stage, p in zip(arch.stages, precisions, strict=True)
    )
    return dataclasses.replace(arch, stages=stages)


def _quantize_ops(graph: bytes) -> list[str]:
    proto = onnx.load_model_from_string(graph)
    return [n.name for n in proto.graph.node if n.op_type == "QuantizeLinear"]


def test_only_the_int8_stages_are_quantized(mixed_space: ss.Space) -> None:
    arch = _set(mixed_space.largest(), ["int8", "fp32", "fp32"])
    assert uses_int8(arch) and not uses_int8(mixed_space.largest())
    blocks = int8_blocks(mixed_space, arch)
    assert blocks == [0, 1]  # the first stage's two blocks
    graph = arch_graph(mixed_space, arch)
    quantized = _quantize_ops(graph)
    assert quantized, "the int8 stage has no quantize nodes"
    # Quantized tensors come from the stem (the int8 stage's input) or the int8 blocks only.
    assert all(
        name.startswith(("/blocks/blocks.0/", "/blocks/blocks.1/", "/stem/", "input"))
        for name in quantized
    ), quantized
    float_graph = arch_graph(mixed_space, mixed_space.largest())
    assert not _quantize_ops(float_graph)


def test_block_nodes_refuses_a_foreign_graph(mixed_space: ss.Space) -> None:
    graph = boundary_graph(4, 3)
    with pytest.raises(UserError, match=r"blocks\.0"):
        block_nodes(graph, [0])
    assert block_nodes(graph, []) == []


def test_mixed_graph_keeps_the_float_predictions_close(mixed_space: ss.Space) -> None:
    torch.manual_seed(0)
    arch = _set(mixed_space.largest(), ["int8", "int8", "fp32"])
    network = build_network(mixed_space, arch).eval()
    shape = (1, arch.resolution, arch.resolution)
    images = timing_calibration(shape, 64)
    with torch.no_grad():
        expected = network(torch.from_numpy(images)).argmax(1).numpy()
    graph = arch_graph(mixed_space, arch, network, images)
    assert evaluate_onnx(graph, images, expected) >= 0.8


def test_boundary_and_int8_operator_graphs_run(mixed_space: ss.Space) -> None:
    config = MeasureConfig(warmup=1, repeats=2, rounds=2)
    assert measure_latency(boundary_graph(8, 5), (8, 5, 5), config).median_ms > 0
    arch = _set(mixed_space.largest(), ["int8", "int8", "int8"])
    block = next(op for op in arch_operators(mixed_space, arch) if op.kind == "block")
    graph = operator_graph(operator_module(mixed_space, block), block.input_shape)
    assert _quantize_ops(graph)


def test_int8_operators_have_their_own_keys_and_junctions(mixed_space: ss.Space) -> None:
    largest = mixed_space.largest()
    floats = arch_operators(mixed_space, largest)
    assert not any("precision" in op.key for op in floats)
    assert not any(op.kind == "boundary" for op in floats)
    mixed = arch_operators(mixed_space, _set(largest, ["int8", "int8", "fp32"]))
    int8_keys = [op.key for op in mixed if "precision=int8" in op.key]
    assert len(int8_keys) == 4  # two blocks in each of the first two stages
    # Three junctions between the four consecutive int8 blocks, each subtracted.
    boundaries = [op for op in mixed if op.kind == "boundary"]
    assert len(boundaries) == 3 and all(op.sign == -1 for op in boundaries)
    # Enumerating the space finds every operator any subnet uses.
    every = {op.key for op in space_operators(mixed_space)}
    rng = np.random.default_rng(0)
    for _ in range(30):
        assert {op.key for op in arch_operators(mixed_space, mixed_space.sample(rng))} <= every


def test_the_table_subtracts_the_junctions(mixed_space: ss.Space, tmp_path: Path) -> None:
    archs = [
        _set(mixed_space.largest(), p)
        for p in (["fp32"] * 3, ["int8", "int8", "fp32"], ["int8"] * 3)
    ]
    records = profile_blocks(mixed_space, FAST, tmp_path, archs=archs)
    table = LatencyTable(mixed_space, records, calibrate=False)
    entries = table.entries
    for arch, raw in zip(archs, table.raw(archs), strict=True):
        operators = arch_operators(mixed_space, arch)
        expected = table.overhead_ms + sum(
            op.sign * (entries[op.key] - table.overhead_ms) for op in operators
        )
        assert raw == pytest.approx(expected)
    assert any(op.kind == "boundary" for op in arch_operators(mixed_space, archs[2]))


def test_torch_runtime_refuses_int8(mixed_space: ss.Space, tmp_path: Path) -> None:
    arch = _set(mixed_space.largest(), ["int8", "fp32", "fp32"])
    config = MeasureConfig(runtime="torch", warmup=1, repeats=2)
    with pytest.raises(UserError, match="cannot run int8"):
        measure_arch(mixed_space, arch, config)
    with pytest.raises(UserError, match="cannot run int8"):
        profile_blocks(mixed_space, config, tmp_path, archs=[arch])


def test_mixed_precision_subnets_are_profiled(mixed_space: ss.Space, tmp_path: Path) -> None:
    arch = _set(mixed_space.largest(), ["fp32", "int8", "int8"])
    (record,) = profile_latency(mixed_space, [arch], FAST, tmp_path)
    assert record.to_arch() == arch and record.median_ms > 0
    assert '"precision": "int8"' in record.key


# ------------------------------------------------------------------ simulated int8 accuracy


def test_fake_quantized_weights_take_255_levels_per_channel() -> None:
    weight = torch.randn(6, 3, 3, 3)
    rounded = fake_quantize_weight(weight)
    for row, original in zip(rounded, weight, strict=True):
        scale = original.abs().max() / 127
        levels = torch.round(row / scale)
        assert torch.allclose(levels * scale, row, atol=1e-5)
        assert levels.abs().max() <= 127
    assert (rounded - weight).abs().max() <= weight.abs().max() / 127


def test_folding_batch_norm_keeps_the_function() -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 5, 3, padding=1, bias=False)
    norm = torch.nn.BatchNorm2d(5).eval()
    assert norm.running_mean is not None and norm.running_var is not None
    norm.running_mean.uniform_(-1, 1)
    norm.running_var.uniform_(0.5, 2)
    norm.weight.data.uniform_(0.5, 2)
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        assert torch.allclose(fold_batch_norm(conv, norm)(x), norm(conv(x)), atol=1e-5)


def test_simulated_int8_is_close_to_onnx_runtime_int8(mixed_space: ss.Space) -> None:
    torch.manual_seed(1)
    arch = _set(mixed_space.largest(), ["int8", "int8", "fp32"])
    network = build_network(mixed_space, arch).eval()
    images = timing_calibration((1, arch.resolution, arch.resolution), 64)
    recalibrate_batch_norm(network, images)  # activations of a normal size, as after training
    simulated = simulate_int8(network, int8_blocks(mixed_space, arch), images)
    unchanged = simulate_int8(network, [], images)
    x = torch.from_numpy(images)
    with torch.no_grad():
        reference = network(x)
        assert torch.equal(unchanged(x), reference)
        sim = simulated(x)
    deployed = arch_graph(mixed_space, arch, network, images)
    from compress.quantization import onnx_logits

    real = torch.from_numpy(onnx_logits(deployed, images))
    # The rounding differs in detail (ONNX Runtime also rounds biases and some tensors the
    # simulation leaves alone), so the two errors are not the same numbers; their size is.
    simulated_error = float((sim - reference).norm() / reference.norm())
    deployed_error = float((real - reference).norm() / reference.norm())
    assert simulated_error > 1e-3
    assert 0.5 < simulated_error / deployed_error < 2.0


def test_evaluation_simulates_the_int8_stages(mixed_space: ss.Space) -> None:
    from nas.data import load_dataset, resize_images
    from nas.supernet import Supernet
    from nas.train import accuracy, recalibrated

    torch.manual_seed(0)
    supernet = Supernet(mixed_space).eval()
    data = load_dataset("digits", resolution=20, seed=0)
    floats = mixed_space.largest()
    mixed = _set(floats, ["int8", "int8", "fp32"])
    float_net = recalibrated(supernet, floats, data, calibration_size=100)
    mixed_net = recalibrated(supernet, mixed, data, calibration_size=100)
    x = torch.from_numpy(resize_images(data.x_val[:50], floats.resolution))
    with torch.no_grad():
        gap = (mixed_net(x) - float_net(x)).norm() / float_net(x).norm()
    assert 1e-4 < float(gap) < 0.5
    assert recalibrated(supernet, floats, data, calibration_size=100).state_dict().keys() == (
        float_net.state_dict().keys()
    )
    assert 0.0 <= accuracy(mixed_net, x.numpy(), data.y_val[:50]) <= 1.0


def test_an_int8_point_exports_as_a_quantized_onnx_graph(
    mixed_space: ss.Space, tmp_path: Path
) -> None:
    import json

    from nas.data import load_dataset
    from nas.export import export_model
    from nas.supernet import Supernet

    torch.manual_seed(0)
    supernet = Supernet(mixed_space).eval()
    data = load_dataset("digits", resolution=20, seed=0)
    arch = _set(mixed_space.largest(), ["fp32", "int8", "int8"])
    path = export_model(
        supernet, mixed_space, arch, tmp_path / "point.onnx", fmt="onnx", dataset=data, card={}
    )
    assert _quantize_ops(path.read_bytes())
    card = json.loads((tmp_path / "point.onnx.json").read_text())
    assert card["arch"]["stages"][1]["precision"] == "int8"
    assert card["weight_bytes"] < mixed_space.weight_bytes(mixed_space.largest())
    weights = export_model(
        supernet,
        mixed_space,
        arch,
        tmp_path / "p.safetensors",
        fmt="safetensors",
        dataset=data,
        card={},
    )
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as tensors:  # the float weights, not a graph
        assert ss.Arch.from_json(tensors.metadata()["arch"]) == arch
        assert tensors.keys()
    for fmt, dataset in (("torchscript", data), ("onnx", None)):
        with pytest.raises(UserError, match="use --format onnx"):
            export_model(
                supernet, mixed_space, arch, tmp_path / "x", fmt=fmt, dataset=dataset, card={}
            )
    assert not (tmp_path / "x").exists()


def test_vectorised_weight_bytes_are_exact(mixed_space: ss.Space) -> None:
    from nas.predictors import genome_costs

    genomes = ss.sample_genomes(mixed_space, np.random.default_rng(0), 100)
    costs = genome_costs(mixed_space, genomes)
    archs = [ss.decode_genome(mixed_space, g) for g in genomes]
    assert costs.weight_bytes.tolist() == [mixed_space.weight_bytes(a) for a in archs]
    assert any(uses_int8(a) for a in archs) and any(not uses_int8(a) for a in archs)
    plain = ss.get_space("tiny")
    genomes = ss.sample_genomes(plain, np.random.default_rng(0), 20)
    assert genome_costs(plain, genomes).weight_bytes.tolist() == [
        4.0 * p for p in genome_costs(plain, genomes).params
    ]


def test_the_latency_check_takes_the_faster_form_of_the_smallest(
    monkeypatch: pytest.MonkeyPatch, mixed_space: ss.Space, tmp_path: Path
) -> None:
    from types import SimpleNamespace

    from nas.search import run as search_run
    from nas.search.targets import parse_constraint

    def timed(space: ss.Space, arch: ss.Arch, config: object) -> SimpleNamespace:
        return SimpleNamespace(median_ms=0.08 if uses_int8(arch) else 0.03)  # int8 is slower

    monkeypatch.setattr(search_run, "measure_arch", timed)
    request = SimpleNamespace(
        space=mixed_space,
        constraints=(parse_constraint("latency<0.05ms"),),
        measure=MeasureConfig(),
    )
    reporter = SimpleNamespace(note=lambda text: None)
    assert uses_int8(mixed_space.smallest())
    search_run._refuse_impossible(request, reporter)  # type: ignore[arg-type]
    request.constraints = (parse_constraint("latency<0.02ms"),)
    with pytest.raises(UserError, match=r"measures 0\.030 ms"):
        search_run._refuse_impossible(request, reporter)  # type: ignore[arg-type]
