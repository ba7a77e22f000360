"""Numeric precision as a per-stage searchable dimension: archs, spaces, genomes and costs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import search_spaces as ss
from nas.testing.spaces import check_space
from search_spaces import Arch, ArchError, Choice, Space, SpaceError, StageArch

from .conftest import check_size_by_enumeration, micro_space, precision_space

BOTH = Choice(("fp32", "int8"))


def _all_stages(precision: Choice, **overrides: object) -> Space:
    """:func:`micro_space` with every stage's precision set to ``precision``."""
    micro = micro_space()
    stages = tuple(dataclasses.replace(s, precision=precision) for s in micro.stages)
    return micro_space(name="micro-int8", stages=stages, **overrides)


def _with_precision(arch: Arch, precision: str) -> Arch:
    stages = tuple(dataclasses.replace(s, precision=precision) for s in arch.stages)
    return dataclasses.replace(arch, stages=stages)


def _keys(data: Any) -> set[str]:
    """Every mapping key anywhere in a nest of dicts and lists."""
    if isinstance(data, dict):
        return set(data) | {k for v in data.values() for k in _keys(v)}
    if isinstance(data, list):
        return {k for v in data for k in _keys(v)}
    return set()


# Archs and their JSON.


def test_fp32_arch_json_has_no_precision_key(precise: Space) -> None:
    arch = precise.largest()
    assert all(stage.precision == "fp32" for stage in arch.stages)
    assert "precision" not in _keys(arch.to_dict())
    assert "precision" not in arch.to_json()
    assert Arch.from_json(arch.to_json()) == arch


def test_int8_arch_round_trips(precise: Space) -> None:
    arch = precise.smallest()
    assert arch.stages[0].precision == "int8"
    data = arch.to_dict()
    assert data["stages"][0]["precision"] == "int8"
    assert all("precision" not in stage for stage in data["stages"][1:])
    assert Arch.from_json(arch.to_json()) == arch
    assert Arch.from_dict(json.loads(json.dumps(data))) == arch
    explicit = json.loads(arch.to_json())
    for stage in explicit["stages"]:
        stage.setdefault("precision", "fp32")  # an explicit fp32 reads as the default
    assert Arch.from_dict(explicit) == arch


@pytest.mark.parametrize(
    ("precision", "message"),
    [
        ("fp16", r"stages\[0\]\.precision must be one of \['fp32', 'bf16', 'int8'\], got 'fp16'"),
        (8, r"stages\[0\]\.precision must be one of"),
        (None, r"stages\[0\]\.precision must be one of"),
        (["int8"], r"stages\[0\]\.precision must be one of"),
    ],
)
def test_arch_from_dict_rejects_bad_precision(precision: object, message: str) -> None:
    data = micro_space().largest().to_dict()
    data["stages"][0]["precision"] = precision
    with pytest.raises(ArchError, match=message):
        Arch.from_dict(data)


def test_arch_from_dict_still_rejects_unknown_keys() -> None:
    data = micro_space().largest().to_dict()
    data["stages"][0].update(precision="int8", bits=8)
    with pytest.raises(ArchError, match=r"stages\[0\] has unknown keys bits"):
        Arch.from_dict(data)


def test_stage_arch_rejects_bad_precision() -> None:
    with pytest.raises(ArchError, match="precision must be one of"):
        StageArch(width_mult=1.0, stride=1, kernel_size=(3,), expand_ratio=(3,), precision="fp8")


# Spaces.


def test_validate_names_the_precision_field(micro: Space, precise: Space) -> None:
    int8 = _with_precision(micro.largest(), "int8")
    with pytest.raises(ArchError, match=r"stages\[0\]\.precision='int8' is not one of \['fp32'\]"):
        micro.validate(int8)
    with pytest.raises(ArchError, match=r"stages\[1\]\.precision='int8' is not one of \['fp32'\]"):
        precise.validate(int8)  # stage 0 may be int8, stage 1 may not
    precise.validate(precise.smallest())


@pytest.mark.parametrize(
    ("precision", "message"),
    [
        (
            Choice(("fp16",)),
            r"stages\[0\]\.precision value 'fp16' must be one of \['fp32', 'bf16', 'int8'\]",
        ),
        (Choice(("fp32", 8)), r"stages\[0\]\.precision value 8 must be one of"),
        (("fp32",), r"stages\[0\]\.precision must be a Choice"),
    ],
)
def test_space_rejects_bad_precision_choices(precision: object, message: str) -> None:
    micro = micro_space()
    bad = dataclasses.replace(micro.stages[0], precision=precision)
    with pytest.raises(SpaceError, match=message):
        micro_space(stages=(bad, micro.stages[1]))


def test_space_from_dict_names_the_precision_field() -> None:
    data = ss.space_to_dict(precision_space())
    data["stages"][1]["precision"] = ["fp32", "fp16"]
    with pytest.raises(SpaceError, match=r"stages\[1\]\.precision value 'fp16'"):
        ss.space_from_dict(data)
    data["stages"][1]["precision"] = ["int8", "int8"]
    with pytest.raises(SpaceError, match=r"stages\[1\]\.precision.*repeats"):
        ss.space_from_dict(data)


def test_has_precision(micro: Space, precise: Space) -> None:
    assert not micro.has_precision
    assert precise.has_precision
    assert _all_stages(Choice(("int8",))).has_precision  # one value, but not the default
    with_precision = {name for name in ss.SPACE_NAMES if ss.get_space(name).has_precision}
    assert with_precision == {"mbv3-28-int8", "mbv3-28-fused", "mbv3-28-joint", "quant-28"}


@pytest.mark.parametrize(
    "space",
    [
        precision_space(),
        _all_stages(BOTH),
        _all_stages(Choice(("int8",))),
        _all_stages(BOTH, min_downsamples=0, max_downsamples=2),
    ],
    ids=["first-stage", "every-stage", "int8-only", "more-strides"],
)
def test_size_counts_precision_choices(space: Space) -> None:
    check_size_by_enumeration(space)


def test_size_with_precision_exceeds_size_without(micro: Space) -> None:
    assert _all_stages(Choice(("int8",))).size() == micro.size()
    assert micro.size() < precision_space().size() < _all_stages(BOTH).size()


def test_extremes_order_precision_by_bits() -> None:
    # As strings "int8" > "fp32"; by bits fp32 is the larger, whatever the choice's order.
    for precision in (BOTH, Choice(("int8", "fp32"))):
        space = _all_stages(precision)
        assert all(stage.precision == "fp32" for stage in space.largest().stages)
        assert all(stage.precision == "int8" for stage in space.smallest().stages)
    two_stages = precision_space(num_stages=Choice((2,)))
    assert [s.precision for s in two_stages.smallest().stages] == ["int8", "fp32"]
    assert [s.precision for s in two_stages.largest().stages] == ["fp32", "fp32"]


def test_space_to_dict_of_builtin_spaces_has_no_precision() -> None:
    for name in ss.SPACE_NAMES:
        if name in ("mbv3-28-int8", "mbv3-28-fused", "mbv3-28-joint", "quant-28"):
            continue
        data = ss.space_to_dict(ss.get_space(name))
        assert "precision" not in _keys(data)
        assert "block_type" not in _keys(data)
        assert ss.space_from_dict(data) == ss.get_space(name)
    assert "precision" not in _keys(ss.space_to_dict(micro_space()))


def test_the_int8_space_is_the_default_space_with_precision() -> None:
    int8, default = ss.get_space("mbv3-28-int8"), ss.get_space("mbv3-28")
    assert all(stage.precision == ss.Choice(("fp32", "int8")) for stage in int8.stages)
    plain = [dataclasses.replace(stage, precision=Choice(("fp32",))) for stage in int8.stages]
    same = dataclasses.replace(int8, name=default.name, description=default.description)
    assert dataclasses.replace(same, stages=tuple(plain)) == default


def test_space_with_precision_round_trips(tmp_path: Path, precise: Space) -> None:
    data = ss.space_to_dict(precise)
    assert data["stages"][0]["precision"] == ["fp32", "int8"]
    assert "precision" not in data["stages"][1]
    assert ss.space_from_dict(data) == precise
    assert ss.space_from_dict(json.loads(json.dumps(data))) == precise
    assert ss.space_from_dict(yaml.safe_load(yaml.safe_dump(data))) == precise
    for suffix in (".yaml", ".json"):
        path = tmp_path / f"precise{suffix}"
        ss.save_space(precise, path)
        assert ss.load_space(path) == precise


def test_precision_from_user_yaml(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\nresolution: [16]\nnum_stages: [1]\nmax_downsamples: 1\n"
        "stem: {channels: 8}\nhead: {channels: 32}\n"
        "stages:\n  - {base_channels: 8, depth: [1], kernel_size: [3], expand_ratio: [2],"
        " precision: [fp32, int8]}\n"
    )
    space = ss.get_space(str(path))
    assert space.stages[0].precision == BOTH
    assert space.size() == 2
    assert {
        space.sample(np.random.default_rng(seed)).stages[0].precision for seed in range(20)
    } == {
        "fp32",
        "int8",
    }


def test_a_precision_space_passes_the_conformance_suite() -> None:
    check_space(precision_space())
    check_space(_all_stages(BOTH))


# Genomes.


def test_genomes_without_precision_are_unchanged(micro: Space) -> None:
    layout = ss.genome_layout(micro)
    assert layout.precision_genes == ()
    assert "precision" not in layout.dimensions
    # resolution, num_stages, then per stage 3 stage genes and 2 genes per possible block.
    assert layout.length == 2 + 2 * (3 + 2 * 2)


def test_one_precision_gene_per_stage_after_its_stride(micro: Space, precise: Space) -> None:
    layout = ss.genome_layout(precise)
    assert layout.length == ss.genome_layout(micro).length + len(precise.stages)
    assert len(layout.precision_genes) == len(precise.stages)
    for s, ((_, _, stride), gene) in enumerate(
        zip(layout.stage_genes, layout.precision_genes, strict=True)
    ):
        assert gene == stride + 1
        assert layout.names[gene] == f"stages[{s}].precision"
        assert layout.dimensions[gene] == "precision"
        assert layout.gene_stage[gene] == s and layout.gene_block[gene] == -1
    assert layout.cardinalities[list(layout.precision_genes)].tolist() == [2, 1]


def test_precision_genes_are_active_only_in_used_stages(precise: Space) -> None:
    one_stage = precise.smallest()
    assert one_stage.num_stages == 1
    genome = ss.to_genome(precise, one_stage)[None, :]
    active = ss.active_genes(precise, genome)[0]
    first, second = ss.genome_layout(precise).precision_genes
    assert active[first] and not active[second]


def test_encode_gives_bit_widths(precise: Space) -> None:
    layout = ss.genome_layout(precise)
    first, second = layout.precision_genes
    low, high = precise.smallest(), precise.largest()
    assert precise.encode(low)[first] == 8 and precise.encode(high)[first] == 32
    assert precise.encode(high)[second] == 32  # both stages used in the largest subnet


def test_sampled_archs_decode_back_and_cover_both_precisions(precise: Space) -> None:
    rng = np.random.default_rng(0)
    genomes = ss.sample_genomes(precise, rng, 200)
    archs = [ss.decode_genome(precise, g) for g in genomes]
    for arch, genome in zip(archs, genomes, strict=True):
        precise.validate(arch)
        assert np.array_equal(ss.to_genome(precise, arch), genome)
        assert ss.decode_genome(precise, ss.to_genome(precise, arch)) == arch
    assert {a.stages[0].precision for a in archs} == {"fp32", "int8"}
    assert {a.stages[1].precision for a in archs if a.num_stages > 1} == {"fp32"}


def test_mutation_and_crossover_change_precision() -> None:
    space = _all_stages(BOTH)
    rng = np.random.default_rng(2)
    genomes = ss.sample_genomes(space, rng, 64)
    mutated = ss.mutate_genomes(space, genomes, rng, 1.0)
    crossed = ss.crossover_genomes(space, genomes, genomes[::-1], rng)
    for batch in (mutated, crossed):
        archs = [ss.decode_genome(space, g) for g in batch]
        assert {a.stages[0].precision for a in archs} == {"fp32", "int8"}


def test_restrict_without_precision_keeps_fp32() -> None:
    space = _all_stages(BOTH)
    rng = np.random.default_rng(3)
    fixed = [
        ss.decode_genome(space, g)
        for g in ss.sample_genomes(space, rng, 50, elastic={"kernel_size", "depth", "stride"})
    ]
    assert {s.precision for a in fixed for s in a.stages} == {"fp32"}
    free = [
        ss.decode_genome(space, g) for g in ss.sample_genomes(space, rng, 50, elastic={"precision"})
    ]
    assert {s.precision for a in free for s in a.stages} == {"fp32", "int8"}
    for arch in free:  # only precision varies
        assert _with_precision(arch, "fp32") == space.largest()
    # Stage 1 is unused in the smallest subnet, yet takes int8 (not choice 0, fp32) here.
    assert ss.smallest_in(space, {"precision"}) == _with_precision(space.largest(), "int8")
    assert ss.smallest_in(space, ()) == space.largest()
    assert ss.smallest_in(space, ss.DIMENSIONS) == space.smallest()


# Costs.


def test_weight_bytes_by_precision() -> None:
    space = _all_stages(BOTH)
    rng = np.random.default_rng(4)
    for arch in [space.sample(rng) for _ in range(20)] + [space.largest(), space.smallest()]:
        fp32, int8 = _with_precision(arch, "fp32"), _with_precision(arch, "int8")
        shapes = ss.layer_shapes(space, int8)
        assert {block.precision for block in shapes.blocks} == {"int8"}
        block_params = sum(block.params() for block in shapes.blocks)
        assert space.weight_bytes(fp32) == 4 * space.params(fp32)
        assert space.weight_bytes(fp32) - space.weight_bytes(int8) == 3 * block_params
        assert ss.weight_bytes(space, int8) == space.weight_bytes(int8)
        # FLOPs and parameter counts do not depend on precision.
        assert space.flops(int8) == space.flops(fp32) and space.params(int8) == space.params(fp32)


def test_block_shapes_carry_each_stage_precision(precise: Space) -> None:
    shapes = ss.layer_shapes(precise, precise.smallest())
    for block in shapes.blocks:
        assert block.precision == precise.smallest().stages[block.stage].precision
    assert {b.precision for b in ss.layer_shapes(precise, precise.largest()).blocks} == {"fp32"}
