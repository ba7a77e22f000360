"""Elastic search spaces as pure data: no torch import.

A :class:`Space` says which subnetworks exist; an :class:`Arch` is one of them. Spaces are
frozen dataclasses, loaded from YAML/JSON (the built-in ones too), and offer exact size,
validation that names the bad field, seeded sampling, fixed-length encodings, genomes for
strategies, and analytical FLOPs, parameter counts and weight bytes. A stage's numeric precision
may be a searchable dimension too (:data:`PRECISIONS`), and so may the kind of its blocks
(:data:`BLOCK_TYPES`: inverted residual or fused).
"""

from __future__ import annotations

from search_spaces.arch import Arch, StageArch
from search_spaces.cost import (
    BlockShape,
    LayerShapes,
    conv_output_size,
    flops,
    int8_blocks,
    layer_shapes,
    params,
    precision_blocks,
    weight_bytes,
)
from search_spaces.errors import ArchError, SpaceError
from search_spaces.genome import (
    DIMENSIONS,
    GenomeLayout,
    active_genes,
    breed_genomes,
    canonicalize,
    crossover_genomes,
    decode_genome,
    downsample_counts,
    encode_genomes,
    genome_layout,
    mutate_genomes,
    repair_genomes,
    restrict_genomes,
    sample_genomes,
    smallest_in,
    to_genome,
)
from search_spaces.io import load_space, save_space, space_from_dict, space_to_dict
from search_spaces.operators import crossover, mutate
from search_spaces.registry import DEFAULT_SPACE, SPACE_NAMES, get_space
from search_spaces.spec import (
    ACTIVATION_CODES,
    ACTIVATIONS,
    BLOCK_TYPE_CODES,
    BLOCK_TYPES,
    PRECISION_BITS,
    PRECISIONS,
    Choice,
    HeadSpec,
    Space,
    StageSpec,
    StemSpec,
    make_divisible,
)
from search_spaces.subspace import float_view, subspace_problem
from search_spaces.uniform import corner_family, uniform_family
from search_spaces.validate import downsamples, size, validate

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_CODES",
    "BLOCK_TYPES",
    "BLOCK_TYPE_CODES",
    "DEFAULT_SPACE",
    "DIMENSIONS",
    "PRECISIONS",
    "PRECISION_BITS",
    "SPACE_NAMES",
    "Arch",
    "ArchError",
    "BlockShape",
    "Choice",
    "GenomeLayout",
    "HeadSpec",
    "LayerShapes",
    "Space",
    "SpaceError",
    "StageArch",
    "StageSpec",
    "StemSpec",
    "active_genes",
    "breed_genomes",
    "canonicalize",
    "conv_output_size",
    "corner_family",
    "crossover",
    "crossover_genomes",
    "decode_genome",
    "downsample_counts",
    "downsamples",
    "encode_genomes",
    "float_view",
    "flops",
    "genome_layout",
    "get_space",
    "int8_blocks",
    "layer_shapes",
    "load_space",
    "make_divisible",
    "mutate",
    "mutate_genomes",
    "params",
    "precision_blocks",
    "repair_genomes",
    "restrict_genomes",
    "sample_genomes",
    "save_space",
    "size",
    "smallest_in",
    "space_from_dict",
    "space_to_dict",
    "subspace_problem",
    "to_genome",
    "uniform_family",
    "validate",
    "weight_bytes",
]
