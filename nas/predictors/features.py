"""Vectorised analytical costs and predictor features of whole batches of genomes.

:func:`genome_costs` computes, with numpy over a ``(n, genome_length)`` batch, exactly what
:func:`search_spaces.flops` and :func:`search_spaces.params` compute one arch at a time from
:func:`search_spaces.layer_shapes` (the tests check equality), plus per-stage FLOPs and block
counts. That lets predictors score tens of thousands of genomes without decoding them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from search_spaces import (
    BLOCK_TYPE_CODES,
    Arch,
    GenomeLayout,
    Space,
    encode_genomes,
    genome_layout,
    to_genome,
)

__all__ = [
    "GenomeCosts",
    "arch_genomes",
    "feature_matrix",
    "features_and_costs",
    "genome_costs",
]


@dataclass(frozen=True, kw_only=True)
class GenomeCosts:
    """Per-genome costs; every array has one entry (or row) per genome."""

    flops: np.ndarray  # (n,) multiply-adds at batch 1
    params: np.ndarray  # (n,) learnable parameters
    weight_bytes: np.ndarray  # (n,) bytes of the weights at each stage's precision
    stage_flops: np.ndarray  # (n, stages) multiply-adds of each stage's blocks (0 when unused)
    blocks: np.ndarray  # (n,) number of inverted-residual blocks
    se_blocks: np.ndarray  # (n,) number of blocks with squeeze-excitation


def _make_divisible(value: np.ndarray, divisor: int) -> np.ndarray:
    """:func:`search_spaces.make_divisible` on an array of non-negative values."""
    rounded = np.maximum(divisor, np.floor(value + divisor / 2) // divisor * divisor)
    return np.where(rounded < 0.9 * value, rounded + divisor, rounded)


def _out_size(size: np.ndarray, kernel: np.ndarray, stride: np.ndarray) -> np.ndarray:
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def arch_genomes(space: Space, archs: Sequence[Arch]) -> np.ndarray:
    """The canonical genomes of ``archs`` as one ``(n, genome_length)`` batch (validated)."""
    length = genome_layout(space).length
    if not archs:
        return np.zeros((0, length), dtype=np.int64)
    return np.stack([to_genome(space, arch) for arch in archs])


def genome_costs(space: Space, genomes: np.ndarray) -> GenomeCosts:
    """Analytical FLOPs, parameters, per-stage FLOPs and block counts of a batch of genomes."""
    return _costs(space, encode_genomes(space, genomes))


def _block_costs(
    se: np.ndarray,
    divisor: int,
    in_channels: np.ndarray,
    in_size: np.ndarray,
    block_out: np.ndarray,
    kernel: np.ndarray,
    expand: np.ndarray,
    out_channels: np.ndarray,
    fused: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """FLOPs and params of each block of a stage, ``(count, max depth)`` each: expansion,
    depthwise convolution, squeeze-and-excitation (where ``se``, ``(count, 1)``) and projection;
    where ``fused`` (``(count, 1)``), one dense convolution in place of expansion and
    depthwise."""
    hidden = np.where(
        expand != 1, _make_divisible(np.round(in_channels * expand), divisor), in_channels
    )
    has_expand = (expand != 1) & ~fused
    dense = np.where(fused, in_channels, 1.0)  # input channels per output channel
    squeeze = np.where(se, _make_divisible(hidden // 4, divisor), 0.0)
    block_flops = np.where(has_expand, in_size**2 * in_channels * hidden, 0.0)
    block_flops += block_out**2 * dense * hidden * kernel**2
    block_flops += 2 * hidden * squeeze
    block_flops += block_out**2 * hidden * out_channels[:, None]
    block_params = np.where(has_expand, in_channels * hidden + 2 * hidden, 0.0)
    block_params += dense * hidden * kernel**2 + 2 * hidden
    block_params += np.where(se, 2 * hidden * squeeze + squeeze + hidden, 0.0)
    block_params += hidden * out_channels[:, None] + 2 * out_channels[:, None]
    return block_flops, block_params


def _with_head(
    space: Space, flops: np.ndarray, params: np.ndarray, size: np.ndarray, channels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``flops`` and ``params`` plus those of the head and classifier."""
    head = space.head
    flops = flops + size**2 * channels * head.channels
    params = params + channels * head.channels + 2 * head.channels
    classifier_in = head.channels
    if head.feature_channels is not None:
        flops = flops + head.channels * head.feature_channels
        params = params + head.channels * head.feature_channels
        classifier_in = head.feature_channels
    flops = flops + classifier_in * space.num_classes
    params = params + classifier_in * space.num_classes + space.num_classes
    return flops, params


def _form_masks(
    space: Space, layout: GenomeLayout, values: np.ndarray, s: int
) -> tuple[np.ndarray, np.ndarray]:
    """Whether stage ``s`` of each encoded genome has fused blocks and squeeze-excitation,
    ``(count, 1)`` each."""
    count = values.shape[0]
    fused = np.zeros((count, 1), dtype=bool)
    if layout.block_type_genes:
        fused = values[:, layout.block_type_genes[s]][:, None] == BLOCK_TYPE_CODES["fused"]
    se = np.full((count, 1), bool(space.stages[s].se.values[0]))
    if layout.se_genes:
        se = values[:, layout.se_genes[s]][:, None] == 1.0
    return fused, se


def _costs(space: Space, values: np.ndarray) -> GenomeCosts:
    """Costs from the encoded genomes (gene values, 0 where a gene is inactive)."""
    layout = genome_layout(space)
    count = values.shape[0]
    divisor = space.channel_divisor
    stem = space.stem
    resolution = values[:, 0]
    num_stages = values[:, 1]
    size = _out_size(resolution, np.full(count, stem.kernel_size), np.full(count, stem.stride))
    channels = np.full(count, float(stem.channels))
    flops = size**2 * space.in_channels * stem.channels * stem.kernel_size**2
    params = np.full(count, float(space.in_channels * stem.channels * stem.kernel_size**2))
    params += 2 * stem.channels
    weight_bytes = 4.0 * params
    stage_flops = np.zeros((count, len(space.stages)))
    blocks = np.zeros(count)
    se_blocks = np.zeros(count)
    for s, (depth_gene, width_gene, stride_gene) in enumerate(layout.stage_genes):
        spec = space.stages[s]
        stage_on = num_stages > s
        out_channels = _make_divisible(spec.base_channels * values[:, width_gene], divisor)
        genes = np.array(layout.block_genes[s], dtype=np.int64)  # (max depth, 2)
        # on[:, b]: the stage is used and has more than b blocks.
        on = stage_on[:, None] & (values[:, depth_gene][:, None] > np.arange(len(genes)))
        kernel = np.where(on, values[:, genes[:, 0]], 1.0)
        expand = np.where(on, values[:, genes[:, 1]], 1.0)
        # The first block takes the stage's input and stride; kernels are odd and padded to
        # keep the size, so every later block maps (out_channels, out_size) to the same.
        stride = np.where(on[:, 0], values[:, stride_gene], 1.0)
        first_size = _out_size(size, kernel[:, 0], stride)
        later_size = np.where(on[:, 0], first_size, size)
        later_channels = np.where(on[:, 0], out_channels, channels)
        in_channels = np.column_stack([channels] + [later_channels] * (len(genes) - 1))
        in_size = np.column_stack([size] + [later_size] * (len(genes) - 1))
        block_out = np.column_stack([first_size] + [later_size] * (len(genes) - 1))
        fused, se = _form_masks(space, layout, values, s)
        block_flops, block_params = _block_costs(
            se, divisor, in_channels, in_size, block_out, kernel, expand, out_channels, fused
        )
        stage_flops[:, s] = np.where(on, block_flops, 0.0).sum(axis=1)
        flops = flops + stage_flops[:, s]
        stage_params = np.where(on, block_params, 0.0).sum(axis=1)
        params = params + stage_params
        bits = values[:, layout.precision_genes[s]] if layout.precision_genes else 32.0
        weight_bytes = weight_bytes + stage_params * bits / 8.0
        used = on.sum(axis=1)
        blocks += used
        se_blocks += np.where(se[:, 0], used, 0)
        size = np.where(on[:, 0], first_size, size)
        channels = later_channels
    body_params = params
    flops, params = _with_head(space, flops, params, size, channels)
    weight_bytes = weight_bytes + 4.0 * (params - body_params)
    return GenomeCosts(
        flops=flops,
        params=params,
        weight_bytes=weight_bytes,
        stage_flops=stage_flops,
        blocks=blocks,
        se_blocks=se_blocks,
    )


def feature_matrix(space: Space, genomes: np.ndarray) -> np.ndarray:
    """Predictor features: the genome encoding (gene values, 0 when inactive), then log FLOPs,
    log parameters, log(1 + FLOPs) of each stage, and the numbers of blocks and SE blocks."""
    return features_and_costs(space, genomes)[0]


def features_and_costs(space: Space, genomes: np.ndarray) -> tuple[np.ndarray, GenomeCosts]:
    """:func:`feature_matrix` and :func:`genome_costs` of a batch, computed once for both."""
    encoded = encode_genomes(space, genomes)
    costs = _costs(space, encoded)
    derived = np.column_stack(
        [
            np.log(costs.flops),
            np.log(costs.params),
            np.log1p(costs.stage_flops),
            costs.blocks,
            costs.se_blocks,
        ]
    )
    return np.hstack([encoded, derived]), costs
