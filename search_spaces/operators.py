"""Arch-level mutation and crossover for strategies that work one arch at a time."""

from __future__ import annotations

import numpy as np

from search_spaces.arch import Arch
from search_spaces.genome import crossover_genomes, decode_genome, mutate_genomes, to_genome
from search_spaces.spec import Space

__all__ = ["crossover", "mutate"]


def mutate(space: Space, arch: Arch, rng: np.random.Generator, probability: float = 0.1) -> Arch:
    """A copy of ``arch`` with each gene redrawn with ``probability`` (result is valid)."""
    genome = to_genome(space, arch)[None, :]
    return decode_genome(space, mutate_genomes(space, genome, rng, probability)[0])


def crossover(space: Space, first: Arch, second: Arch, rng: np.random.Generator) -> Arch:
    """A child taking each gene from either parent with equal odds (result is valid)."""
    a = to_genome(space, first)[None, :]
    b = to_genome(space, second)[None, :]
    return decode_genome(space, crossover_genomes(space, a, b, rng)[0])
