"""The block type as a searchable per-stage dimension: inverted residual ("mbconv") or fused
(one dense kxk convolution in place of the expansion and the depthwise one)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import search_spaces as ss
from nas.predictors import genome_costs
from nas.testing.spaces import check_space
from search_spaces import Arch, ArchError, Choice, Space, SpaceError, StageArch

from .conftest import block_type_space, check_size_by_enumeration


def _fused(arch: Arch, types: list[str]) -> Arch:
    stages = tuple(
        dataclasses.replace(stage, block_type=t)
        for stage, t in zip(arch.stages, types, strict=False)
    )
    return dataclasses.replace(arch, stages=stages + arch.stages[len(types) :])


def test_mbconv_arch_json_has_no_block_type_key(micro: Space) -> None:
    arch = micro.largest()
    assert "block_type" not in arch.to_json()
    fused = StageArch(
        width_mult=1.0, stride=1, kernel_size=(3,), expand_ratio=(3,), block_type="fused"
    )
    assert fused.to_dict()["block_type"] == "fused"
    assert StageArch.from_dict(json.loads(json.dumps(fused.to_dict()))) == fused


@pytest.mark.parametrize(
    ("value", "message"), [("dense", "block_type"), (3, "block_type"), (None, "block_type")]
)
def test_bad_block_types_are_named(value: object, message: str) -> None:
    stage = {"width_mult": 1.0, "stride": 1, "kernel_size": [3], "expand_ratio": [3]}
    with pytest.raises(ArchError, match=message):
        StageArch.from_dict({**stage, "block_type": value})
    with pytest.raises(SpaceError, match=r"stages\[0\]\.block_type"):
        ss.space_from_dict(
            {
                **ss.space_to_dict(ss.get_space("tiny")),
                "stages": [
                    {**ss.space_to_dict(ss.get_space("tiny"))["stages"][0], "block_type": [value]},
                    *ss.space_to_dict(ss.get_space("tiny"))["stages"][1:],
                ],
            }
        )


def test_validate_names_the_block_type(micro: Space, fused: Space) -> None:
    arch = _fused(micro.largest(), ["fused"])
    with pytest.raises(ArchError, match=r"stages\[0\]\.block_type"):
        micro.validate(arch)
    fused.validate(_fused(fused.largest(), ["mbconv", "fused"]))
    with pytest.raises(ArchError, match=r"stages\[1\]\.block_type"):
        fused.validate(_fused(fused.largest(), ["fused", "mbconv"]))


def test_size_counts_block_types_exactly(fused: Space) -> None:
    check_size_by_enumeration(fused)
    without = dataclasses.replace(fused.stages[0], block_type=Choice(("mbconv",)))
    assert fused.size() > dataclasses.replace(fused, stages=(without, fused.stages[1])).size()


def test_the_largest_is_fused_and_the_smallest_is_not(fused: Space) -> None:
    assert [s.block_type for s in fused.largest().stages] == ["fused", "fused"]
    assert fused.smallest().stages[0].block_type == "mbconv"
    assert fused.flops(fused.largest()) > fused.flops(_fused(fused.largest(), ["mbconv"]))


def test_genomes_carry_one_block_type_gene_per_stage_only_when_chosen(
    micro: Space, fused: Space
) -> None:
    assert ss.genome_layout(micro).block_type_genes == ()
    assert "block_type" not in ss.genome_layout(micro).dimensions
    layout = ss.genome_layout(fused)
    assert len(layout.block_type_genes) == 2
    for stage, gene in enumerate(layout.block_type_genes):
        assert layout.names[gene] == f"stages[{stage}].block_type"
        assert layout.gene_stage[gene] == stage
    rng = np.random.default_rng(0)
    genomes = ss.sample_genomes(fused, rng, 200)
    archs = [ss.decode_genome(fused, genome) for genome in genomes]
    assert {a.stages[0].block_type for a in archs} == {"mbconv", "fused"}
    for arch, genome in zip(archs, genomes, strict=True):
        assert np.array_equal(ss.to_genome(fused, arch), genome)
        assert Arch.from_json(arch.to_json()) == arch
    encoded = ss.encode_genomes(fused, genomes)
    first = layout.block_type_genes[0]
    fused_first = np.array([a.stages[0].block_type == "fused" for a in archs])
    assert np.array_equal(encoded[:, first], fused_first.astype(float))


def test_fused_blocks_cost_a_dense_convolution(fused: Space) -> None:
    arch = _fused(fused.largest(), ["fused"])
    block = ss.layer_shapes(fused, arch).blocks[0]
    assert block.fused and not block.has_expand
    area = block.output_size**2
    dense = area * block.in_channels * block.expanded_channels * block.kernel_size**2
    project = area * block.expanded_channels * block.out_channels
    assert block.flops() == dense + project
    mbconv = ss.layer_shapes(fused, _fused(arch, ["mbconv"])).blocks[0]
    assert mbconv.has_expand and mbconv.flops() < block.flops()


def test_vectorised_costs_match_the_exact_ones() -> None:
    for space in (block_type_space(), ss.get_space("mbv3-28-fused"), ss.get_space("quant-28")):
        genomes = ss.sample_genomes(space, np.random.default_rng(1), 150)
        archs = [ss.decode_genome(space, genome) for genome in genomes]
        costs = genome_costs(space, genomes)
        assert np.allclose(costs.flops, [space.flops(a) for a in archs])
        assert np.allclose(costs.params, [space.params(a) for a in archs])
        assert np.allclose(costs.weight_bytes, [ss.weight_bytes(space, a) for a in archs])


def test_a_block_type_space_round_trips_and_passes_the_conformance_suite(
    tmp_path: Path, fused: Space
) -> None:
    check_space(fused)
    path = tmp_path / "fused.yaml"
    ss.save_space(fused, path)
    assert ss.load_space(path) == fused
    assert "block_type" in path.read_text()
    assert "block_type" not in json.dumps(ss.space_to_dict(ss.get_space("mbv3-28")))


def test_the_builtin_fused_space() -> None:
    space = ss.get_space("mbv3-28-fused")
    assert space.has_block_type and space.has_precision
    assert [s.has_block_type for s in space.stages] == [True, True, False, False, False]
    check_space(space)


def test_the_builtin_space_built_for_quantization() -> None:
    space = ss.get_space("quant-28")
    assert all(s.has_block_type and s.has_precision for s in space.stages)
    assert not space.has_se_choice and not space.has_activation_choice
    assert {s.activation.values for s in space.stages} == {("relu",)}
    assert space.stem.activation == space.head.activation == "relu"
    assert not any(True in s.se.values for s in space.stages)
    largest = space.largest()
    assert all(s.block_type == "fused" for s in largest.stages)
    assert space.flops(largest) > ss.get_space("mbv3-28-fused").flops(
        ss.get_space("mbv3-28-fused").largest()
    )
    assert ss.uniform_family(space)  # a uniform baseline for searches and re-ranking
    check_space(space)


def test_corner_family_is_the_largest_of_each_block_type_in_each_precision() -> None:
    space = ss.get_space("quant-28")
    corners = ss.corner_family(space)
    forms = [({s.block_type for s in a.stages}, {s.precision for s in a.stages}) for a in corners]
    assert forms == [
        ({"mbconv"}, {"fp32"}),
        ({"mbconv"}, {"int8"}),
        ({"fused"}, {"fp32"}),
        ({"fused"}, {"int8"}),
    ]
    assert corners[2] == space.largest()  # fused everywhere: the largest
    top = dataclasses.replace(
        space.largest(),
        stages=tuple(dataclasses.replace(s, block_type="mbconv") for s in space.largest().stages),
    )
    assert corners[0] == top and space.flops(corners[0]) < space.flops(corners[2])
    for arch in corners:
        space.validate(arch)
    # a space without block-type or precision choices: the largest alone
    assert ss.corner_family(ss.get_space("mbv3-28")) == [ss.get_space("mbv3-28").largest()]
