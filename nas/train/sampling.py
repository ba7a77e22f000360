"""The subnets one training step trains: the sandwich (largest, smallest, random ones) of the
phase's elastic dimensions, with the per-step dimensions shared by all of them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from nas.train.config import TrainConfig
from nas.train.schedule import Phase
from search_spaces import (
    Arch,
    Space,
    canonicalize,
    decode_genome,
    genome_layout,
    repair_genomes,
    sample_genomes,
    smallest_in,
    to_genome,
)

__all__ = ["step_subnets"]


def step_subnets(
    space: Space, phase: Phase, config: TrainConfig, rng: np.random.Generator
) -> list[Arch]:
    """The subnets one step trains; the largest first when it is among them."""
    if not phase.elastic:
        return [space.largest()]
    randoms = [
        decode_genome(space, genome)
        for genome in sample_genomes(space, rng, config.num_random, phase.elastic)
    ]
    subnets = [space.largest(), smallest_in(space, phase.elastic)] if config.sandwich else []
    subnets += randoms
    if config.resolution_per_step and "resolution" in phase.elastic:
        resolution = int(rng.choice(space.resolution.values))
        subnets = [replace(arch, resolution=resolution) for arch in subnets]
    shared = [dim for dim in config.per_step if dim in phase.elastic]
    if shared:
        subnets = _share(space, subnets, shared, phase, rng)
    return subnets


def _share(
    space: Space, subnets: list[Arch], shared: list[str], phase: Phase, rng: np.random.Generator
) -> list[Arch]:
    """``subnets`` with the genes of the ``shared`` dimensions taken from one random subnet
    (repaired where the rest no longer fits, such as a stride pattern for another number of
    stages)."""
    layout = genome_layout(space)
    draw = sample_genomes(space, rng, 1, phase.elastic)[0]
    mask = np.array([dim in shared for dim in layout.dimensions])
    genomes = np.stack([to_genome(space, arch) for arch in subnets])
    genomes[:, mask] = draw[mask]
    genomes = canonicalize(space, repair_genomes(space, genomes))
    return [decode_genome(space, genome) for genome in genomes]
