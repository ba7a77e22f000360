"""Properties of spaces, archs and genomes over random spaces (not only the built-in ones)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import search_spaces as ss
from search_spaces import Arch, ArchError, Space
from tests.properties.strategies import spaces

SEEDS = st.integers(0, 2**32 - 1)
# Leaves of the random JSON the arch reader must survive.
JSON_LEAVES = (
    st.none() | st.booleans() | st.integers(-3, 40) | st.floats(-2, 10) | st.text(max_size=4)
)
JSON = st.recursive(
    JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["resolution", "stages", "width_mult", "stride", "kernel_size", "expand_ratio", "x"]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(spaces())
def test_space_files_round_trip(space: Space) -> None:
    data = ss.space_to_dict(space)
    assert ss.space_from_dict(data) == space
    assert ss.space_from_dict(json.loads(json.dumps(data))) == space
    assert ss.space_from_dict(yaml.safe_load(yaml.safe_dump(data))) == space


@settings(max_examples=60, deadline=None)
@given(spaces(), SEEDS)
def test_sample_encode_decode(space: Space, seed: int) -> None:
    rng = np.random.default_rng(seed)
    layout = ss.genome_layout(space)
    genomes = ss.sample_genomes(space, rng, 16)
    assert genomes.shape == (16, layout.length)
    assert (ss.canonicalize(space, genomes) == genomes).all()
    counts = ss.downsample_counts(space, genomes)
    assert ((counts >= space.min_downsamples) & (counts <= space.max_downsamples)).all()
    features = ss.encode_genomes(space, genomes)
    for genome, feature in zip(genomes, features, strict=True):
        arch = ss.decode_genome(space, genome)
        space.validate(arch)
        assert (ss.to_genome(space, arch) == genome).all()
        assert np.array_equal(space.encode(arch), feature)
        assert Arch.from_json(arch.to_json()) == arch
        assert Arch.from_dict(json.loads(json.dumps(arch.to_dict()))) == arch
        assert space.flops(arch) > 0 and space.params(arch) > 0
    for arch in (space.smallest(), space.largest(), space.sample(rng)):
        space.validate(arch)
        assert ss.decode_genome(space, ss.to_genome(space, arch)) == arch


@settings(max_examples=40, deadline=None)
@given(spaces(), SEEDS)
def test_mutation_and_crossover_stay_in_the_space(space: Space, seed: int) -> None:
    rng = np.random.default_rng(seed)
    parents = ss.sample_genomes(space, rng, 8)
    children = np.concatenate(
        [
            ss.mutate_genomes(space, parents, rng, 0.3),
            ss.crossover_genomes(space, parents, parents[::-1], rng),
        ]
    )
    assert (ss.canonicalize(space, children) == children).all()
    for genome in children:
        space.validate(ss.decode_genome(space, genome))


@settings(max_examples=40, deadline=None)
@given(spaces(max_stages=2))
def test_size_counts_every_subnet(space: Space) -> None:
    """For spaces small enough to enumerate: ``size()`` is the number of distinct valid
    canonical genomes, and each decodes to a distinct valid arch."""
    layout = ss.genome_layout(space)
    if int(np.prod(layout.cardinalities, dtype=np.float64)) > 4000:
        return
    every = np.array(list(itertools.product(*(range(int(c)) for c in layout.cardinalities))))
    canonical = np.unique(ss.canonicalize(space, every), axis=0)
    counts = ss.downsample_counts(space, canonical)
    valid = canonical[(counts >= space.min_downsamples) & (counts <= space.max_downsamples)]
    assert len(valid) == space.size()
    archs = {ss.decode_genome(space, genome) for genome in valid}
    assert len(archs) == len(valid)
    for arch in archs:
        space.validate(arch)


def _spoil(arch: dict[str, Any], how: int, value: Any) -> dict[str, Any]:
    spoiled = json.loads(json.dumps(arch))
    stage = spoiled["stages"][0]
    if how == 0:
        spoiled["resolution"] = value
    elif how == 1:
        stage["kernel_size"][0] = value
    elif how == 2:
        stage["width_mult"] = value
    elif how == 3:
        stage["stride"] = value
    elif how == 4:
        spoiled["stages"].append(stage)
    elif how == 5:
        stage["expand_ratio"] = stage["expand_ratio"][:-1] or [value]
    elif how == 6:
        spoiled["extra"] = value
    else:
        del stage["kernel_size"]
    return spoiled


@settings(max_examples=150, deadline=None)
@given(spaces(), SEEDS, st.integers(0, 7), JSON_LEAVES)
def test_validation_accepts_exactly_the_subnets(
    space: Space, seed: int, how: int, value: Any
) -> None:
    """A spoiled arch is either refused with an ArchError naming a field, or is still a subnet
    (its genome decodes back to it); no other exception escapes."""
    arch = space.sample(np.random.default_rng(seed))
    text = json.dumps(_spoil(arch.to_dict(), how, value))
    try:
        spoiled = Arch.from_json(text)
        space.validate(spoiled)
    except ArchError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert ss.decode_genome(space, ss.to_genome(space, spoiled)) == spoiled


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_any_json_is_an_arch_or_an_arch_error(data: Any) -> None:
    space = ss.get_space("tiny")
    try:
        arch = Arch.from_json(json.dumps(data))
        space.validate(arch)
    except ArchError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert ss.decode_genome(space, ss.to_genome(space, arch)) == arch
