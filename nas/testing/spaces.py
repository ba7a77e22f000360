"""Conformance suite for search spaces (:class:`search_spaces.Space`), built in or a user's.

- :func:`check_sampling_is_seeded`: ``sample`` and ``sample_genomes`` depend on the seed only;
- :func:`check_samples_are_valid`: samples pass ``validate`` and cover every choice;
- :func:`check_arch_json_round_trip`: ``Arch.to_json``/``from_json``/``from_dict``;
- :func:`check_space_round_trip`: ``space_to_dict``/``space_from_dict``, YAML and JSON files;
- :func:`check_genome_round_trip`: ``to_genome``/``decode_genome`` and ``encode``;
- :func:`check_mutation_and_crossover_stay_in_the_space`;
- :func:`check_extremes_bound_flops_and_params`.

The checks need no pytest; :class:`nas.testing.pytest_suites.SpaceSuite` runs them all as pytest
tests. :func:`check_space` runs them in a row.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

import search_spaces as ss
from search_spaces import Arch, Space

__all__ = [
    "check_arch_json_round_trip",
    "check_extremes_bound_flops_and_params",
    "check_genome_round_trip",
    "check_mutation_and_crossover_stay_in_the_space",
    "check_samples_are_valid",
    "check_sampling_is_seeded",
    "check_space",
    "check_space_round_trip",
]


def check_sampling_is_seeded(space: Space) -> None:
    """The same seed samples the same archs and genomes; another seed other genomes."""
    first = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    again = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    assert first == again
    many_a = ss.sample_genomes(space, np.random.default_rng(1), 50)
    many_b = ss.sample_genomes(space, np.random.default_rng(1), 50)
    many_c = ss.sample_genomes(space, np.random.default_rng(2), 50)
    assert np.array_equal(many_a, many_b)
    assert not np.array_equal(many_a, many_c)


def check_samples_are_valid(space: Space, *, samples: int = 400) -> None:
    """Every sample passes ``validate``, and the samples cover every resolution, stage count,
    and every kernel size and width of the first stage."""
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(samples)]
    for arch in archs:
        space.validate(arch)
    assert {a.resolution for a in archs} == set(space.resolution.values)
    assert {a.num_stages for a in archs} == set(space.num_stages.values)
    first = space.stages[0]
    assert {k for a in archs for k in a.stages[0].kernel_size} == set(first.kernel_size.values)
    assert {a.stages[0].width_mult for a in archs} == set(first.width_mult.values)


def check_arch_json_round_trip(space: Space) -> None:
    """Samples and the extremes come back equal (and valid) from JSON text and dicts."""
    rng = np.random.default_rng(3)
    for arch in [space.sample(rng) for _ in range(50)] + [space.largest(), space.smallest()]:
        text = arch.to_json()
        back = Arch.from_json(text)
        assert back == arch
        assert Arch.from_dict(json.loads(text)) == arch
        space.validate(back)


def check_space_round_trip(space: Space, directory: Path | None = None) -> None:
    """The space comes back equal from ``space_to_dict`` and from YAML and JSON files (written
    to ``directory``, by default a temporary one), also by path through ``get_space``."""
    assert ss.space_from_dict(ss.space_to_dict(space)) == space
    with tempfile.TemporaryDirectory() as temporary:
        folder = directory if directory is not None else Path(temporary)
        for suffix in (".yaml", ".json"):
            path = folder / f"space{suffix}"
            ss.save_space(space, path)
            assert ss.load_space(path) == space
            assert ss.get_space(str(path)) == space


def check_genome_round_trip(space: Space) -> None:
    """Genomes decode to the arch they came from; distinct archs have distinct encodings."""
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


def check_mutation_and_crossover_stay_in_the_space(space: Space) -> None:
    """Mutated and crossed archs and genomes are valid, canonical and downsample as allowed."""
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


def check_extremes_bound_flops_and_params(space: Space) -> None:
    """The smallest and largest subnets bound the FLOPs and params of samples."""
    rng = np.random.default_rng(0)
    low, high = space.flops(space.smallest()), space.flops(space.largest())
    low_p, high_p = space.params(space.smallest()), space.params(space.largest())
    for _ in range(30):
        arch = space.sample(rng)
        assert low <= space.flops(arch) <= high
        assert low_p <= space.params(arch) <= high_p
    assert high > low


def check_space(space: Space) -> None:
    """Every check of this module on ``space``."""
    check_sampling_is_seeded(space)
    check_samples_are_valid(space)
    check_arch_json_round_trip(space)
    check_space_round_trip(space)
    check_genome_round_trip(space)
    check_mutation_and_crossover_stay_in_the_space(space)
    check_extremes_bound_flops_and_params(space)
