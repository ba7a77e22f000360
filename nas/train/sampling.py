"""The subnets one training step trains: the sandwich (largest, smallest, random ones) of the
phase's elastic dimensions, any corners (the largest with one dimension at its smallest), with
the per-step dimensions shared by all of them.

The random ones are drawn uniformly over the genome, or uniformly over log multiply-adds
(``TrainConfig.sampling == "flops"``); with ``TrainConfig.worst_of`` > 1 each random one is
chosen during the step among several candidates of about its size (:class:`StepDraw`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from nas.predictors.features import genome_costs
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

__all__ = ["POOL_SIZE", "StepDraw", "draw_step", "step_subnets"]

POOL_SIZE = 256  # random draws a "flops" target picks its nearest subnets from


@dataclass(frozen=True)
class StepDraw:
    """The subnets of one step: ``subnets`` are trained as drawn (the largest first when it is
    among them); of each group of ``candidates`` the one that scores worst is trained."""

    subnets: list[Arch]
    candidates: list[list[Arch]]

    def first_choices(self) -> list[Arch]:
        """The subnets with the first candidate of each group (no scoring)."""
        return self.subnets + [group[0] for group in self.candidates]


def step_subnets(
    space: Space, phase: Phase, config: TrainConfig, rng: np.random.Generator
) -> list[Arch]:
    """The subnets one step trains, without worst-of scoring (the first candidate of each
    group); the largest first when it is among them."""
    return draw_step(space, phase, config, rng).first_choices()


def draw_step(
    space: Space, phase: Phase, config: TrainConfig, rng: np.random.Generator
) -> StepDraw:
    """The subnets of one step and, with ``config.worst_of`` > 1, the candidate groups."""
    if not phase.elastic:
        return StepDraw([space.largest()], [])
    rps = config.resolution_per_step and "resolution" in phase.elastic
    resolution = None
    if config.sampling == "uniform":
        count = config.num_random * config.worst_of
        randoms = [
            decode_genome(space, genome)
            for genome in sample_genomes(space, rng, count, phase.elastic)
        ]
    else:
        if rps:  # the targets are sizes at the step's resolution
            resolution = int(rng.choice(space.resolution.values))
        randoms = _flops_draws(space, phase, config, rng, resolution)
    subnets = [space.largest(), smallest_in(space, phase.elastic)] if config.sandwich else []
    for dim in (d for d in config.corners if d in phase.elastic):
        corner = smallest_in(space, [dim])
        if corner != space.largest() and corner not in subnets:
            subnets.append(corner)
    subnets += randoms
    if rps:
        if resolution is None:
            resolution = int(rng.choice(space.resolution.values))
        subnets = [replace(arch, resolution=resolution) for arch in subnets]
    shared = [dim for dim in config.per_step if dim in phase.elastic]
    if shared:
        subnets = _share(space, subnets, shared, phase, rng)
    fixed = len(subnets) - len(randoms)
    if config.worst_of == 1:
        return StepDraw(subnets, [])
    k = config.worst_of
    groups = [subnets[start : start + k] for start in range(fixed, len(subnets), k)]
    return StepDraw(subnets[:fixed], groups)


def _flops_draws(
    space: Space,
    phase: Phase,
    config: TrainConfig,
    rng: np.random.Generator,
    resolution: int | None,
) -> list[Arch]:
    """``config.worst_of`` subnets per random slot, the nearest of a pool of random draws to
    a size drawn uniformly in log multiply-adds between the phase's smallest and largest."""
    pool = sample_genomes(space, rng, POOL_SIZE, phase.elastic)
    ends = np.stack(
        [to_genome(space, space.largest()), to_genome(space, smallest_in(space, phase.elastic))]
    )
    if resolution is not None:
        index = list(space.resolution.values).index(resolution)
        gene = genome_layout(space).dimensions.index("resolution")
        pool[:, gene] = index
        ends[:, gene] = index
    log_pool = np.log(genome_costs(space, pool).flops)
    high, low = np.log(genome_costs(space, ends).flops)
    chosen: list[int] = []
    for _ in range(config.num_random):
        target = rng.uniform(low, high)
        nearest = np.argsort(np.abs(log_pool - target), kind="stable")[: config.worst_of]
        chosen += [int(i) for i in nearest]
    return [decode_genome(space, pool[i]) for i in chosen]


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
