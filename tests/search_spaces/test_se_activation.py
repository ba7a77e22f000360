"""Squeeze-excitation and the activation as searchable per-stage choices."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import search_spaces as ss
from nas.predictors import feature_matrix, genome_costs
from nas.testing.spaces import check_space
from search_spaces import Arch, ArchError, Choice, Space, SpaceError, StageArch

from .conftest import check_size_by_enumeration, form_space, micro_space


@pytest.fixture
def forms() -> Space:
    return form_space()


def _second(arch: Arch, **values: object) -> Arch:
    stages = (arch.stages[0], dataclasses.replace(arch.stages[1], **values))
    return dataclasses.replace(arch, stages=stages)


def test_a_fixed_value_keeps_the_space_and_arch_json_as_before() -> None:
    micro = micro_space()
    data = ss.space_to_dict(micro)
    assert data["stages"][1]["se"] is True and data["stages"][1]["activation"] == "hswish"
    assert ss.space_from_dict(data) == micro
    stage = micro.largest().stages[1]
    assert stage.se is None and stage.activation is None
    assert "se" not in stage.to_dict() and "activation" not in stage.to_dict()
    for name in ("mbv3-28", "mbv3-28-int8", "mbv3-small"):
        text = json.dumps(ss.space_to_dict(ss.get_space(name)))
        assert '"se": [' not in text and '"activation": [' not in text


def test_choices_round_trip_through_yaml_and_json(tmp_path: Path, forms: Space) -> None:
    path = tmp_path / "forms.yaml"
    ss.save_space(forms, path)
    assert ss.load_space(path) == forms
    assert "- hswish" in path.read_text()
    arch = _second(forms.largest(), se=False, activation="relu")
    forms.validate(arch)
    assert arch.to_dict()["stages"][1]["se"] is False
    assert Arch.from_json(arch.to_json()) == arch


def test_validation_names_the_field(forms: Space) -> None:
    micro = micro_space()
    with pytest.raises(ArchError, match=r"stages\[1\]\.se must be given"):
        forms.validate(_second(forms.largest(), se=None))
    with pytest.raises(ArchError, match=r"stages\[1\]\.activation=.*fixed by the space"):
        micro.validate(_second(micro.largest(), activation="hswish"))
    with pytest.raises(ArchError, match="activation"):
        StageArch(width_mult=1.0, stride=1, kernel_size=(3,), expand_ratio=(3,), activation="gelu")
    with pytest.raises(ArchError, match="se"):
        StageArch.from_dict(
            {"width_mult": 1.0, "stride": 1, "kernel_size": [3], "expand_ratio": [3], "se": 1}
        )
    data = ss.space_to_dict(micro)
    data["stages"][1]["se"] = [True, "no"]
    with pytest.raises(SpaceError, match=r"stages\[1\]\.se value 'no'"):
        ss.space_from_dict(data)
    data["stages"][1]["se"] = True
    data["stages"][1]["activation"] = ["relu", "gelu"]
    with pytest.raises(SpaceError, match=r"stages\[1\]\.activation value 'gelu'"):
        ss.space_from_dict(data)


def test_size_counts_the_choices_exactly(forms: Space) -> None:
    check_size_by_enumeration(forms)
    assert forms.size() > micro_space().size()


def test_the_largest_has_se_and_hswish_and_the_smallest_neither(forms: Space) -> None:
    largest = forms.largest()
    smallest = ss.smallest_in(forms, ["se", "activation"])  # only these two shrink
    assert (largest.stages[1].se, largest.stages[1].activation) == (True, "hswish")
    assert smallest == _second(largest, se=False, activation="relu")
    without = _second(largest, se=False)
    assert forms.flops(largest) > forms.flops(without)
    assert forms.params(largest) > forms.params(without)
    blocks = ss.layer_shapes(forms, without).blocks
    assert all(b.se_channels == 0 for b in blocks)
    relu = ss.layer_shapes(forms, _second(largest, activation="relu")).blocks[-1]
    assert relu.activation == "relu" and relu.se_channels > 0


def test_genomes_carry_the_genes_only_when_chosen(forms: Space) -> None:
    micro = micro_space()
    assert ss.genome_layout(micro).se_genes == () == ss.genome_layout(micro).activation_genes
    layout = ss.genome_layout(forms)
    assert [layout.names[g] for g in layout.se_genes] == ["stages[0].se", "stages[1].se"]
    assert layout.dimensions[layout.activation_genes[1]] == "activation"
    genomes = ss.sample_genomes(forms, np.random.default_rng(0), 200)
    archs = [ss.decode_genome(forms, g) for g in genomes]
    used = [a for a in archs if a.num_stages == 2]
    assert {a.stages[1].se for a in used} == {True, False}
    assert {a.stages[1].activation for a in used} == {"hswish", "relu"}
    assert all(a.stages[0].se is None for a in archs)
    for arch, genome in zip(archs, genomes, strict=True):
        assert np.array_equal(ss.to_genome(forms, arch), genome)
    encoded = ss.encode_genomes(forms, genomes)
    hswish = np.array([a.num_stages == 2 and a.stages[1].activation == "hswish" for a in archs])
    assert np.array_equal(encoded[:, layout.activation_genes[1]], hswish.astype(float))


def test_vectorised_costs_and_features_follow_the_choice(forms: Space) -> None:
    for space in (forms, ss.get_space("mbv3-28-joint")):
        genomes = ss.sample_genomes(space, np.random.default_rng(1), 150)
        archs = [ss.decode_genome(space, g) for g in genomes]
        costs = genome_costs(space, genomes)
        assert np.allclose(costs.flops, [space.flops(a) for a in archs])
        assert np.allclose(costs.params, [space.params(a) for a in archs])
        assert np.allclose(costs.weight_bytes, [ss.weight_bytes(space, a) for a in archs])
        se_blocks = [
            sum(b.se_channels > 0 for b in ss.layer_shapes(space, a).blocks) for a in archs
        ]
        assert np.array_equal(costs.se_blocks, se_blocks)
        assert feature_matrix(space, genomes).shape[0] == len(archs)


def test_the_float_view_of_the_builtin_joint_space_is_mbv3_28() -> None:
    joint = ss.get_space("mbv3-28-joint")
    assert joint.has_se_choice and joint.has_activation_choice and joint.has_precision
    check_space(joint)
    view = ss.float_view(joint)
    base = ss.get_space("mbv3-28")
    assert dataclasses.replace(view, name=base.name, description=base.description) == base
    assert ss.subspace_problem(view, joint) is None
    narrower = dataclasses.replace(
        joint,
        stages=tuple(dataclasses.replace(s, se=Choice((False,))) for s in joint.stages),
    )
    assert ss.subspace_problem(narrower, joint) is None
    assert "stages[2].se [True]" in (ss.subspace_problem(joint, narrower) or "")


def test_uniform_networks_take_the_reference_form_where_a_stage_chooses() -> None:
    """A space whose stages choose squeeze-excitation and activation still has its uniformly
    scaled networks (the baselines a search measures and re-ranks): the reference form of
    each choosing stage, the same networks as its float view's."""
    space = form_space()
    family = ss.uniform_family(space)
    assert family  # none at all before: an unchosen se/activation does not validate
    for arch in family:
        space.validate(arch)
        if len(arch.stages) > 1:
            assert (arch.stages[1].se, arch.stages[1].activation) == (True, "hswish")
    reference = ss.uniform_family(ss.float_view(space))
    assert [a.resolution for a in family] == [a.resolution for a in reference]
    assert [space.flops(a) for a in family] == [space.flops(a) for a in reference]
    assert len(ss.uniform_family(ss.get_space("mbv3-28-joint"))) == len(
        ss.uniform_family(ss.get_space("mbv3-28"))
    )
