from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import search_spaces as ss
from search_spaces import Space, SpaceError

from .conftest import check_size_by_enumeration, enumerate_by_hand, micro_space


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


def test_size_is_exact_by_enumeration(micro: Space) -> None:
    check_size_by_enumeration(micro)


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
    assert space.size() == len(enumerate_by_hand(space))


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
