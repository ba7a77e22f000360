"""Fixed-length integer genomes: the array form of architectures that strategies work on.

A genome holds one choice index per gene: the resolution, the number of stages, then for every
stage of the space its depth, width multiplier and stride (then its precision, only in spaces
where some stage's precision is a choice, and its block type, only in spaces where some stage's
block type is a choice), and for every block it could have its kernel size and
expand ratio. Genes a subnet does not use (blocks past its depth, stages past its number of
stages) are inactive; a *canonical* genome has them set to 0, so that canonical genomes
and architectures correspond one to one. Every function here works on a batch of genomes, a
``(n, genome_length)`` integer array, with numpy.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from search_spaces.arch import Arch, StageArch
from search_spaces.spec import ACTIVATION_CODES, BLOCK_TYPE_CODES, PRECISION_BITS, Space

__all__ = [
    "DIMENSIONS",
    "GenomeLayout",
    "active_genes",
    "breed_genomes",
    "canonicalize",
    "crossover_genomes",
    "decode_genome",
    "downsample_counts",
    "encode_genomes",
    "genome_layout",
    "mutate_genomes",
    "repair_genomes",
    "restrict_genomes",
    "sample_genomes",
    "smallest_in",
    "to_genome",
]

_RESOLUTION = 0
_NUM_STAGES = 1


@dataclass(frozen=True)
class GenomeLayout:
    """Where each gene of a space lives in a genome, and what values it takes."""

    cardinalities: np.ndarray  # (length,) number of choices per gene
    value_table: np.ndarray  # (length, max cardinality) value of each choice, NaN-padded
    names: tuple[str, ...]  # a readable name per gene, e.g. "stages[1].kernel_size[2]"
    dimensions: tuple[str, ...]  # the elastic dimension of each gene, e.g. "kernel_size"
    stage_genes: tuple[tuple[int, int, int], ...]  # (depth, width_mult, stride) per stage
    block_genes: tuple[tuple[tuple[int, int], ...], ...]  # (kernel_size, expand_ratio) per block
    gene_stage: np.ndarray  # (length,) the stage a gene belongs to, -1 for global genes
    gene_block: np.ndarray  # (length,) the block a gene belongs to, -1 for non-block genes
    # One precision gene per stage, right after its stride gene; empty when the space has no
    # precision choice, so such spaces keep the genomes they had before precision existed.
    precision_genes: tuple[int, ...] = ()
    # One block-type gene per stage, after its precision (or stride) gene; empty likewise.
    block_type_genes: tuple[int, ...] = ()
    # One squeeze-excitation gene (0 or 1) and one activation gene (0 relu, 1 hswish) per
    # stage, after those, where the space chooses them; empty likewise.
    se_genes: tuple[int, ...] = ()
    activation_genes: tuple[int, ...] = ()

    @cached_property
    def depth_genes(self) -> np.ndarray:
        return np.array([depth for depth, _, _ in self.stage_genes], dtype=np.int64)

    @cached_property
    def stride_genes(self) -> np.ndarray:
        return np.array([stride for _, _, stride in self.stage_genes], dtype=np.int64)

    @property
    def length(self) -> int:
        return int(self.cardinalities.shape[0])


DIMENSIONS = (
    "resolution",
    "num_stages",
    "depth",
    "width_mult",
    "stride",
    "kernel_size",
    "expand_ratio",
    "precision",
    "block_type",
    "se",
    "activation",
)


def _dimension(gene_name: str) -> str:
    last = gene_name.split(".")[-1]
    return last.split("[")[0]


# The last space seen, by identity: hashing a whole Space (for the lru_cache) costs more than
# the numpy work of a small batch, and strategies call in here hundreds of times a second.
_LAST: list[tuple[Space, GenomeLayout]] = []


def genome_layout(space: Space) -> GenomeLayout:
    """The gene layout of ``space`` (computed once per space)."""
    if _LAST and _LAST[0][0] is space:
        return _LAST[0][1]
    layout = _layout(space)
    _LAST[:] = [(space, layout)]
    return layout


@lru_cache(maxsize=64)
def _layout(space: Space) -> GenomeLayout:
    choices: list[tuple[str, tuple[float, ...]]] = [
        ("resolution", space.resolution.values),
        ("num_stages", space.num_stages.values),
    ]
    stage_genes: list[tuple[int, int, int]] = []
    precision_genes: list[int] = []
    block_type_genes: list[int] = []
    se_genes: list[int] = []
    activation_genes: list[int] = []
    block_genes: list[tuple[tuple[int, int], ...]] = []
    for s, stage in enumerate(space.stages):
        start = len(choices)
        choices += [
            (f"stages[{s}].depth", stage.depth.values),
            (f"stages[{s}].width_mult", stage.width_mult.values),
            (f"stages[{s}].stride", stage.stride.values),
        ]
        stage_genes.append((start, start + 1, start + 2))
        if space.has_precision:
            # The gene's value is the bit width, so predictors see 32 or 8.
            precision_genes.append(len(choices))
            bits = tuple(PRECISION_BITS[p] for p in stage.precision.values)
            choices.append((f"stages[{s}].precision", bits))
        if space.has_block_type:
            # The gene's value is the type's code: 0 mbconv, 1 fused.
            block_type_genes.append(len(choices))
            codes = tuple(BLOCK_TYPE_CODES[t] for t in stage.block_type.values)
            choices.append((f"stages[{s}].block_type", codes))
        if space.has_se_choice:
            se_genes.append(len(choices))
            choices.append((f"stages[{s}].se", tuple(float(v) for v in stage.se.values)))
        if space.has_activation_choice:
            activation_genes.append(len(choices))
            codes = tuple(ACTIVATION_CODES[a] for a in stage.activation.values)
            choices.append((f"stages[{s}].activation", codes))
        blocks = []
        for b in range(stage.max_depth):
            blocks.append((len(choices), len(choices) + 1))
            choices += [
                (f"stages[{s}].kernel_size[{b}]", stage.kernel_size.values),
                (f"stages[{s}].expand_ratio[{b}]", stage.expand_ratio.values),
            ]
        block_genes.append(tuple(blocks))
    gene_stage = np.full(len(choices), -1, dtype=np.int64)
    gene_block = np.full(len(choices), -1, dtype=np.int64)
    for s, genes in enumerate(stage_genes):
        gene_stage[list(genes)] = s
        if precision_genes:
            gene_stage[precision_genes[s]] = s
        if block_type_genes:
            gene_stage[block_type_genes[s]] = s
        if se_genes:
            gene_stage[se_genes[s]] = s
        if activation_genes:
            gene_stage[activation_genes[s]] = s
        for b, pair in enumerate(block_genes[s]):
            gene_stage[list(pair)] = s
            gene_block[list(pair)] = b
    widest = max(len(values) for _, values in choices)
    table = np.full((len(choices), widest), np.nan)
    for gene, (_, values) in enumerate(choices):
        table[gene, : len(values)] = values
    return GenomeLayout(
        cardinalities=np.array([len(values) for _, values in choices], dtype=np.int64),
        value_table=table,
        names=tuple(name for name, _ in choices),
        dimensions=tuple(_dimension(name) for name, _ in choices),
        stage_genes=tuple(stage_genes),
        block_genes=tuple(block_genes),
        gene_stage=gene_stage,
        gene_block=gene_block,
        precision_genes=tuple(precision_genes),
        block_type_genes=tuple(block_type_genes),
        se_genes=tuple(se_genes),
        activation_genes=tuple(activation_genes),
    )


def _values(layout: GenomeLayout, genomes: np.ndarray, gene: int) -> np.ndarray:
    return layout.value_table[gene, genomes[:, gene]]


def _as_batch(genomes: np.ndarray, layout: GenomeLayout) -> np.ndarray:
    batch = np.asarray(genomes, dtype=np.int64)
    if batch.ndim != 2 or batch.shape[1] != layout.length:
        raise ValueError(
            f"genomes must have shape (n, {layout.length}) for this space, got {batch.shape}"
        )
    if (batch < 0).any() or (batch >= layout.cardinalities).any():
        raise ValueError("genomes hold a choice index outside the space's choices")
    return batch


def active_genes(space: Space, genomes: np.ndarray) -> np.ndarray:
    """Boolean ``(n, length)`` mask of the genes each genome uses."""
    layout = genome_layout(space)
    return _active(layout, _as_batch(genomes, layout))


def _active(layout: GenomeLayout, batch: np.ndarray) -> np.ndarray:
    num_stages = _values(layout, batch, _NUM_STAGES)
    depth_genes = layout.depth_genes
    depths = layout.value_table[depth_genes, batch[:, depth_genes]]  # (n, stages)
    stage = np.maximum(layout.gene_stage, 0)
    # A stage gene is used when the stage is; a block gene when the stage is and is deep enough
    # (block -1 for stage genes, so every depth passes).
    mask = (num_stages[:, None] > stage) & (depths[:, stage] > layout.gene_block)
    mask[:, layout.gene_stage < 0] = True
    return mask


def canonicalize(space: Space, genomes: np.ndarray) -> np.ndarray:
    """Set every inactive gene to 0, so equal subnets have equal genomes."""
    layout = genome_layout(space)
    batch = _as_batch(genomes, layout)
    return np.where(_active(layout, batch), batch, 0)


def downsample_counts(space: Space, genomes: np.ndarray) -> np.ndarray:
    """How many used stages have stride 2, per genome."""
    layout = genome_layout(space)
    return _downsamples(layout, _as_batch(genomes, layout))


def _downsamples(layout: GenomeLayout, batch: np.ndarray) -> np.ndarray:
    num_stages = _values(layout, batch, _NUM_STAGES)
    stride_genes = layout.stride_genes
    strides = layout.value_table[stride_genes, batch[:, stride_genes]]
    used = num_stages[:, None] > np.arange(len(stride_genes))
    return (used & (strides == 2)).sum(axis=1)


def repair_genomes(space: Space, genomes: np.ndarray) -> np.ndarray:
    """Fix the stride genes of genomes whose number of downsamples is out of bounds.

    Too many: the last downsampling stages that may have stride 1 get it. Too few: the first
    stride-1 stages that may downsample get stride 2. Deterministic; valid genomes are unchanged.
    """
    layout = genome_layout(space)
    return _repair(space, layout, _as_batch(genomes, layout).copy())


def _repair(space: Space, layout: GenomeLayout, batch: np.ndarray) -> np.ndarray:
    """:func:`repair_genomes` in place on a checked batch."""
    counts = _downsamples(layout, batch)
    excess = counts - space.max_downsamples
    deficit = space.min_downsamples - counts
    if not (excess > 0).any() and not (deficit > 0).any():
        return batch
    num_stages = _values(layout, batch, _NUM_STAGES)
    order = list(enumerate(layout.stage_genes))
    for s, (_, _, gene) in reversed(order):
        stride_choice = space.stages[s].stride
        if 1 not in stride_choice:
            continue
        fix = (excess > 0) & (num_stages > s) & (_values(layout, batch, gene) == 2)
        batch[fix, gene] = stride_choice.index(1)
        excess -= fix
    for s, (_, _, gene) in order:
        stride_choice = space.stages[s].stride
        if 2 not in stride_choice:
            continue
        fix = (deficit > 0) & (num_stages > s) & (_values(layout, batch, gene) == 1)
        batch[fix, gene] = stride_choice.index(2)
        deficit -= fix
    return batch


def _valid(space: Space, genomes: np.ndarray) -> np.ndarray:
    counts = _downsamples(genome_layout(space), genomes)
    return (counts >= space.min_downsamples) & (counts <= space.max_downsamples)


def _random_genomes(space: Space, rng: np.random.Generator, count: int) -> np.ndarray:
    layout = genome_layout(space)
    # Scaling uniform floats is several times faster than integers() with per-gene bounds.
    uniform = rng.random((count, layout.length))
    return np.minimum((uniform * layout.cardinalities).astype(np.int64), layout.cardinalities - 1)


def restrict_genomes(space: Space, genomes: np.ndarray, elastic: Collection[str]) -> np.ndarray:
    """Genomes whose genes outside the ``elastic`` dimensions take the largest subnet's values
    (not canonicalised nor repaired)."""
    unknown = sorted(set(elastic) - set(DIMENSIONS))
    if unknown:
        raise ValueError(f"unknown elastic dimensions {unknown}; use {list(DIMENSIONS)}")
    layout = genome_layout(space)
    batch = _as_batch(genomes, layout).copy()
    fixed = np.array([dim not in elastic for dim in layout.dimensions])
    batch[:, fixed] = to_genome(space, space.largest())[fixed]
    return batch


def smallest_in(space: Space, elastic: Collection[str]) -> Arch:
    """The smallest subnet when only the ``elastic`` dimensions may shrink."""
    layout = genome_layout(space)
    smallest = to_genome(space, space.smallest())[None, :]
    # Genes the smallest subnet leaves unused (deeper blocks, later stages) may be used once the
    # fixed dimensions are at the largest: they take their smallest value, not choice 0 (for
    # precision the smallest value is the fewest bits). Strides stay as they were: repair
    # decides them.
    lowest = np.nanargmin(layout.value_table, axis=1)
    lowest[layout.stride_genes] = 0
    smallest = np.where(_active(layout, smallest), smallest, lowest)
    genome = restrict_genomes(space, smallest, elastic)
    return decode_genome(space, canonicalize(space, repair_genomes(space, genome))[0])


def sample_genomes(
    space: Space,
    rng: np.random.Generator,
    count: int,
    elastic: Collection[str] | None = None,
) -> np.ndarray:
    """``count`` canonical genomes, each gene uniform over its choices.

    Stride genes are redrawn until the number of downsamples is valid, so among the valid stride
    patterns each is equally likely. ``elastic`` limits sampling to some dimensions (names in
    :data:`DIMENSIONS`); the others keep the largest subnet's values, as progressive shrinking
    needs.
    """
    layout = genome_layout(space)
    batch = _random_genomes(space, rng, count)
    if elastic is not None:
        batch = restrict_genomes(space, batch, elastic)
    stride_genes = [gene for _, _, gene in layout.stage_genes]
    if elastic is not None and "stride" not in elastic:
        stride_genes = []
    for _ in range(100 if stride_genes else 0):
        bad = ~_valid(space, batch)
        if not bad.any():
            break
        redraw = rng.integers(
            0, layout.cardinalities[stride_genes], size=(int(bad.sum()), len(stride_genes))
        )
        rows = np.flatnonzero(bad)
        batch[np.ix_(rows, np.array(stride_genes))] = redraw
    return _canonical_repaired(space, batch)


def _canonical_repaired(space: Space, batch: np.ndarray) -> np.ndarray:
    """Repaired canonical genomes from a batch known to hold valid choice indices."""
    layout = genome_layout(space)
    batch = _repair(space, layout, batch)
    return np.where(_active(layout, batch), batch, 0)


def _with_hidden_genes_random(
    space: Space, genomes: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Inactive genes drawn at random, so genes that become active are not biased to index 0."""
    layout = genome_layout(space)
    batch = _as_batch(genomes, layout)
    return np.where(_active(layout, batch), batch, _random_genomes(space, rng, batch.shape[0]))


def mutate_genomes(
    space: Space, genomes: np.ndarray, rng: np.random.Generator, probability: float
) -> np.ndarray:
    """Redraw each gene with ``probability``; returns repaired canonical genomes."""
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"mutation probability must be in [0, 1], got {probability}")
    batch = _with_hidden_genes_random(space, genomes, rng)
    redraw = rng.random(batch.shape) < probability
    batch = np.where(redraw, _random_genomes(space, rng, batch.shape[0]), batch)
    return _canonical_repaired(space, batch)


def crossover_genomes(
    space: Space, first: np.ndarray, second: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Uniform crossover of paired parents; returns repaired canonical children."""
    a = _with_hidden_genes_random(space, first, rng)
    b = _with_hidden_genes_random(space, second, rng)
    if a.shape != b.shape:
        raise ValueError(f"parents must have the same shape, got {a.shape} and {b.shape}")
    take_b = rng.random(a.shape) < 0.5
    return _canonical_repaired(space, np.where(take_b, b, a))


def breed_genomes(
    space: Space,
    mothers: np.ndarray,
    fathers: np.ndarray,
    rng: np.random.Generator,
    *,
    crossover_probability: float,
    mutation_probability: float,
) -> np.ndarray:
    """Children of paired parents: with ``crossover_probability`` a uniform crossover of the
    pair (else the mother), then each gene redrawn with ``mutation_probability``. The same
    children as :func:`crossover_genomes` followed by :func:`mutate_genomes` would give in
    distribution, with one repair and canonicalisation instead of two."""
    for name, probability in (
        ("crossover", crossover_probability),
        ("mutation", mutation_probability),
    ):
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"{name} probability must be in [0, 1], got {probability}")
    a = _with_hidden_genes_random(space, mothers, rng)
    b = _with_hidden_genes_random(space, fathers, rng)
    if a.shape != b.shape:
        raise ValueError(f"parents must have the same shape, got {a.shape} and {b.shape}")
    mate = np.asarray(rng.random(len(a)) < crossover_probability)
    take_b = (rng.random(a.shape) < 0.5) & mate[:, None]
    redraw = rng.random(a.shape) < mutation_probability
    children = np.where(take_b, b, a)
    children = np.where(redraw, _random_genomes(space, rng, a.shape[0]), children)
    return _canonical_repaired(space, children)


def encode_genomes(space: Space, genomes: np.ndarray) -> np.ndarray:
    """Numeric features for predictors: each gene's value, 0 where the gene is inactive."""
    layout = genome_layout(space)
    batch = _as_batch(genomes, layout)
    values = layout.value_table[np.arange(layout.length), batch]
    return np.where(_active(layout, batch), values, 0.0)


def to_genome(space: Space, arch: Arch) -> np.ndarray:
    """The canonical genome of an arch (which must be valid in ``space``)."""
    from search_spaces.validate import validate

    validate(space, arch)
    layout = genome_layout(space)
    genome = np.zeros(layout.length, dtype=np.int64)
    genome[_RESOLUTION] = space.resolution.index(arch.resolution)
    genome[_NUM_STAGES] = space.num_stages.index(arch.num_stages)
    for s, stage in enumerate(arch.stages):
        spec = space.stages[s]
        depth_gene, width_gene, stride_gene = layout.stage_genes[s]
        genome[depth_gene] = spec.depth.index(stage.depth)
        genome[width_gene] = spec.width_mult.index(stage.width_mult)
        genome[stride_gene] = spec.stride.index(stage.stride)
        if layout.precision_genes:
            genome[layout.precision_genes[s]] = spec.precision.index(stage.precision)
        if layout.block_type_genes:
            genome[layout.block_type_genes[s]] = spec.block_type.index(stage.block_type)
        if layout.se_genes:
            genome[layout.se_genes[s]] = spec.se.index(spec.se_of(stage))
        if layout.activation_genes:
            genome[layout.activation_genes[s]] = spec.activation.index(spec.activation_of(stage))
        for b, (kernel_gene, expand_gene) in enumerate(layout.block_genes[s][: stage.depth]):
            genome[kernel_gene] = spec.kernel_size.index(stage.kernel_size[b])
            genome[expand_gene] = spec.expand_ratio.index(stage.expand_ratio[b])
    return genome


def decode_genome(space: Space, genome: np.ndarray) -> Arch:
    """The arch a genome describes (inactive genes ignored; stride genes repaired if needed)."""
    layout = genome_layout(space)
    row = repair_genomes(space, np.asarray(genome).reshape(1, -1))[0]
    num_stages = int(space.num_stages.values[row[_NUM_STAGES]])
    stages = []
    for s in range(num_stages):
        spec = space.stages[s]
        depth_gene, width_gene, stride_gene = layout.stage_genes[s]
        depth = int(spec.depth.values[row[depth_gene]])
        blocks = layout.block_genes[s][:depth]
        precision = spec.precision.values[0]
        if layout.precision_genes:
            precision = spec.precision.values[row[layout.precision_genes[s]]]
        block_type = spec.block_type.values[0]
        if layout.block_type_genes:
            block_type = spec.block_type.values[row[layout.block_type_genes[s]]]
        se = spec.se.values[row[layout.se_genes[s]]] if spec.has_se_choice else None
        activation = None
        if spec.has_activation_choice:
            activation = spec.activation.values[row[layout.activation_genes[s]]]
        stages.append(
            StageArch(
                width_mult=spec.width_mult.values[row[width_gene]],
                stride=spec.stride.values[row[stride_gene]],
                kernel_size=tuple(spec.kernel_size.values[row[k]] for k, _ in blocks),
                expand_ratio=tuple(spec.expand_ratio.values[row[e]] for _, e in blocks),
                precision=precision,
                block_type=block_type,
                se=se,
                activation=activation,
            )
        )
    return Arch(resolution=space.resolution.values[row[_RESOLUTION]], stages=tuple(stages))
