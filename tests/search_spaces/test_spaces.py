from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import search_spaces as ss
from search_spaces import Arch, ArchError, Space, SpaceError, StageArch

from .conftest import micro_space


@pytest.fixture(params=ss.SPACE_NAMES)
def space(request: pytest.FixtureRequest) -> Space:
    return ss.get_space(request.param)


def test_search_spaces_never_imports_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np, search_spaces as ss\n"
        "for name in ss.SPACE_NAMES:\n"
        "    space = ss.get_space(name)\n"
        "    arch = space.sample(np.random.default_rng(0))\n"
        "    space.validate(arch); space.encode(arch); space.flops(arch); space.size()\n"
        "assert not any(m == 'torch' or m.startswith('torch.') for m in sys.modules "
        "if sys.modules[m] is not None)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_builtin_spaces_and_default() -> None:
    assert {"mbv3-28", "mbv3-small", "mbv3-imagenet", "tiny"} <= set(ss.SPACE_NAMES)
    assert ss.DEFAULT_SPACE == "mbv3-28"
    small = ss.get_space("mbv3-small")
    assert small.size() > 10**9
    assert set(small.num_stages.values) == {3, 4, 5}
    for stage in small.stages:
        assert set(stage.depth.values) == {2, 3, 4}
        assert set(stage.kernel_size.values) == {3, 5, 7}
        assert set(stage.expand_ratio.values) == {3, 4, 6}
        assert set(stage.stride.values) == {1, 2}
    imagenet = ss.get_space("mbv3-imagenet")
    assert imagenet.num_classes == 1000 and imagenet.in_channels == 3
    assert imagenet.resolution.min == 128 and imagenet.resolution.max == 224
    assert imagenet.size() > 10**19
    assert ss.get_space("tiny").size() < small.size()


def test_unknown_space_names_the_choices() -> None:
    with pytest.raises(SpaceError, match="mbv3-small"):
        ss.get_space("resnet-9000")


def test_sample_is_deterministic_by_seed(space: Space) -> None:
    first = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    again = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    assert first == again
    many_a = ss.sample_genomes(space, np.random.default_rng(1), 50)
    many_b = ss.sample_genomes(space, np.random.default_rng(1), 50)
    many_c = ss.sample_genomes(space, np.random.default_rng(2), 50)
    assert np.array_equal(many_a, many_b)
    assert not np.array_equal(many_a, many_c)


def test_samples_are_valid_and_cover_every_choice(space: Space) -> None:
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(400)]
    for arch in archs:
        space.validate(arch)
    assert {a.resolution for a in archs} == set(space.resolution.values)
    assert {a.num_stages for a in archs} == set(space.num_stages.values)
    first = space.stages[0]
    assert {k for a in archs for k in a.stages[0].kernel_size} == set(first.kernel_size.values)
    assert {a.stages[0].width_mult for a in archs} == set(first.width_mult.values)


def test_arch_json_round_trip(space: Space) -> None:
    rng = np.random.default_rng(3)
    for arch in [space.sample(rng) for _ in range(50)] + [space.largest(), space.smallest()]:
        text = arch.to_json()
        back = Arch.from_json(text)
        assert back == arch
        assert Arch.from_dict(json.loads(text)) == arch
        space.validate(back)


def test_space_round_trip_through_yaml_and_json(space: Space, tmp_path: Path) -> None:
    assert ss.space_from_dict(ss.space_to_dict(space)) == space
    for suffix in (".yaml", ".json"):
        path = tmp_path / f"space{suffix}"
        ss.save_space(space, path)
        assert ss.load_space(path) == space
        assert ss.get_space(str(path)) == space


def test_genome_round_trip_and_encoding(space: Space) -> None:
    rng = np.random.default_rng(5)
    archs = {space.sample(rng) for _ in range(200)}
    encodings = set()
    length = ss.genome_layout(space).length
    for arch in archs:
        genome = ss.to_genome(space, arch)
        assert genome.shape == (length,)
        assert ss.decode_genome(space, genome) == arch
        features = space.encode(arch)
        assert features.shape == (length,) and features.dtype == np.float64
        encodings.add(features.tobytes())
    assert len(encodings) == len(archs)  # distinct archs, distinct encodings


def test_mutate_and_crossover_stay_in_the_space(space: Space) -> None:
    rng = np.random.default_rng(11)
    parent = space.sample(rng)
    assert ss.mutate(space, parent, rng, probability=0.0) == parent
    children = [ss.mutate(space, parent, rng, probability=0.3) for _ in range(50)]
    for child in children:
        space.validate(child)
    if space.size() > 1:
        assert any(child != parent for child in children)
    other = space.sample(rng)
    for _ in range(50):
        child = ss.crossover(space, parent, other, rng)
        space.validate(child)
    genomes = ss.sample_genomes(space, rng, 64)
    mutated = ss.mutate_genomes(space, genomes, rng, 1.0)
    assert np.array_equal(mutated, ss.canonicalize(space, mutated))
    counts = ss.downsample_counts(space, mutated)
    assert ((counts >= space.min_downsamples) & (counts <= space.max_downsamples)).all()


def test_breed_genomes_crosses_then_mutates(space: Space) -> None:
    rng = np.random.default_rng(5)
    mothers = ss.sample_genomes(space, rng, 200)
    fathers = ss.sample_genomes(space, rng, 200)
    clones = ss.breed_genomes(
        space, mothers, fathers, rng, crossover_probability=0.0, mutation_probability=0.0
    )
    assert np.array_equal(clones, mothers)
    children = ss.breed_genomes(
        space, mothers, fathers, rng, crossover_probability=1.0, mutation_probability=0.0
    )
    assert np.array_equal(children, ss.canonicalize(space, children))
    counts = ss.downsample_counts(space, children)
    assert ((counts >= space.min_downsamples) & (counts <= space.max_downsamples)).all()
    # Without mutation, every used gene other than a repaired stride comes from a parent.
    used = ss.active_genes(space, children) & ss.active_genes(space, mothers)
    used &= ss.active_genes(space, fathers)
    layout = ss.genome_layout(space)
    stride = np.isin(np.arange(layout.length), [g for _, _, g in layout.stage_genes])
    inherited = (children == mothers) | (children == fathers)
    assert inherited[used & ~stride].all()
    if space.size() > 1:
        assert not np.array_equal(children, mothers)
    with pytest.raises(ValueError, match="mutation probability"):
        ss.breed_genomes(
            space, mothers, fathers, rng, crossover_probability=0.5, mutation_probability=2.0
        )


def test_repair_fixes_invalid_stride_genes(micro: Space) -> None:
    layout = ss.genome_layout(micro)
    genome = ss.to_genome(micro, micro.largest())[None, :].copy()
    genome[0, 1] = micro.num_stages.index(2)
    for _, _, stride_gene in layout.stage_genes:
        genome[0, stride_gene] = micro.stages[0].stride.index(2)  # two downsamples, max is 1
    assert ss.downsample_counts(micro, genome)[0] == 2
    repaired = ss.repair_genomes(micro, genome)
    assert ss.downsample_counts(micro, repaired)[0] == 1
    micro.validate(ss.decode_genome(micro, repaired[0]))


def _enumerate_by_hand(space: Space) -> set[Arch]:
    """Every arch of ``space``, built independently of the genome code, then validated."""
    found: set[Arch] = set()
    for resolution in space.resolution.values:
        for num_stages in space.num_stages.values:
            per_stage = []
            for spec in space.stages[:num_stages]:
                options = []
                for depth in spec.depth.values:
                    for width, stride in itertools.product(
                        spec.width_mult.values, spec.stride.values
                    ):
                        for kernels in itertools.product(spec.kernel_size.values, repeat=depth):
                            for expands in itertools.product(
                                spec.expand_ratio.values, repeat=depth
                            ):
                                options.append(
                                    StageArch(
                                        width_mult=width,
                                        stride=stride,
                                        kernel_size=kernels,
                                        expand_ratio=expands,
                                    )
                                )
                per_stage.append(options)
            for stages in itertools.product(*per_stage):
                arch = Arch(resolution=resolution, stages=stages)
                try:
                    space.validate(arch)
                except ArchError:
                    continue
                found.add(arch)
    return found


def test_size_is_exact_by_enumeration(micro: Space) -> None:
    by_hand = _enumerate_by_hand(micro)
    assert micro.size() == len(by_hand)
    layout = ss.genome_layout(micro)
    every = np.array(list(itertools.product(*(range(c) for c in layout.cardinalities))))
    counts = ss.downsample_counts(micro, every)
    valid = every[(counts >= micro.min_downsamples) & (counts <= micro.max_downsamples)]
    canonical = np.unique(ss.canonicalize(micro, valid), axis=0)
    assert len(canonical) == micro.size()
    assert {ss.decode_genome(micro, g) for g in canonical} == by_hand


@pytest.mark.parametrize(
    "overrides",
    [
        {"min_downsamples": 0, "max_downsamples": 2},
        {"num_stages": ss.Choice((2,)), "min_downsamples": 2, "max_downsamples": 2},
        {"resolution": ss.Choice((8,))},
    ],
)
def test_size_is_exact_for_other_stride_rules(overrides: dict[str, object]) -> None:
    space = micro_space(**overrides)
    assert space.size() == len(_enumerate_by_hand(space))


def test_extremes_bound_flops_and_params(space: Space) -> None:
    rng = np.random.default_rng(0)
    low, high = space.flops(space.smallest()), space.flops(space.largest())
    low_p, high_p = space.params(space.smallest()), space.params(space.largest())
    for _ in range(30):
        arch = space.sample(rng)
        assert low <= space.flops(arch) <= high
        assert low_p <= space.params(arch) <= high_p
    assert high > low


@pytest.mark.parametrize(("name", "span"), [("mbv3-28", 20), ("mbv3-small", 50)])
def test_default_space_flops_span(name: str, span: float) -> None:
    space = ss.get_space(name)
    assert space.flops(space.largest()) / space.flops(space.smallest()) > span


def test_restricted_sampling_keeps_fixed_dimensions_at_the_largest(space: Space) -> None:
    rng = np.random.default_rng(4)
    largest = space.largest()
    kernels_only = [
        ss.decode_genome(space, g)
        for g in ss.sample_genomes(space, rng, 40, elastic={"kernel_size"})
    ]
    for arch in kernels_only:
        space.validate(arch)
        assert arch.resolution == largest.resolution and arch.depths == largest.depths
        assert [s.width_mult for s in arch.stages] == [s.width_mult for s in largest.stages]
        assert [s.expand_ratio for s in arch.stages] == [s.expand_ratio for s in largest.stages]
    if len(space.stages[1].kernel_size) > 1:
        assert len({a.stages[1].kernel_size for a in kernels_only}) > 1
    nothing = ss.sample_genomes(space, rng, 5, elastic=set())
    assert all(ss.decode_genome(space, g) == largest for g in nothing)
    everything = ss.sample_genomes(space, rng, 5, elastic=ss.DIMENSIONS)
    assert everything.shape == (5, ss.genome_layout(space).length)
    with pytest.raises(ValueError, match="unknown elastic dimensions"):
        ss.sample_genomes(space, rng, 1, elastic={"colour"})


def test_smallest_in_a_restricted_space(space: Space) -> None:
    assert ss.smallest_in(space, ss.DIMENSIONS) == space.smallest()
    assert ss.smallest_in(space, ()) == space.largest()
    kernels = ss.smallest_in(space, {"kernel_size"})
    space.validate(kernels)
    assert kernels.depths == space.largest().depths
    assert all(k == space.stages[0].kernel_size.min for k in kernels.stages[0].kernel_size)
