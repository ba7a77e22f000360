"""Layer shapes of a subnet, and its analytical FLOPs (multiply-adds) and parameter counts.

:func:`layer_shapes` is the single description of what a subnet computes; the torch network
builder, the latency lookup table and the counts below all read it, so they cannot disagree.
Multiply-adds count convolutions and linear layers (batch 1); batch norm, activations, pooling
and residual additions are not counted. Parameters count every learnable tensor, batch norm
affine weights included (running statistics are buffers, not parameters). :func:`weight_bytes`
weighs each block's parameters by the bit width of its stage's precision.
"""

from __future__ import annotations

from dataclasses import dataclass

from search_spaces.arch import Arch
from search_spaces.spec import PRECISION_BITS, Space

__all__ = [
    "BlockShape",
    "LayerShapes",
    "conv_output_size",
    "flops",
    "int8_blocks",
    "layer_shapes",
    "params",
    "precision_blocks",
    "weight_bytes",
]


def conv_output_size(size: int, kernel_size: int, stride: int) -> int:
    """Output size of a convolution with ``kernel_size // 2`` padding."""
    return (size + 2 * (kernel_size // 2) - kernel_size) // stride + 1


@dataclass(frozen=True, kw_only=True)
class BlockShape:
    """One block. An inverted residual (``block_type`` "mbconv"): 1x1 expand (when
    expand_ratio != 1), depthwise kxk, SE, 1x1 project. A fused one ("fused"): one dense kxk
    convolution from the input to the expanded channels (with the block's stride), SE, 1x1
    project."""

    stage: int
    index: int
    in_channels: int
    out_channels: int
    expanded_channels: int
    expand_ratio: float
    kernel_size: int
    stride: int
    input_size: int
    se_channels: int  # 0 when the block has no squeeze-excitation
    activation: str
    precision: str = "fp32"  # the stage's numeric format; FLOPs and params do not depend on it
    block_type: str = "mbconv"

    @property
    def fused(self) -> bool:
        return self.block_type == "fused"

    @property
    def output_size(self) -> int:
        return conv_output_size(self.input_size, self.kernel_size, self.stride)

    @property
    def has_expand(self) -> bool:
        """Whether the block has a 1x1 expand convolution: an mbconv block whose expand ratio is
        not 1 (at 1 the depthwise conv reads the input; a fused block never has one)."""
        return self.expand_ratio != 1 and not self.fused

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels

    def flops(self) -> int:
        out_area = self.output_size**2
        total = 0
        if self.has_expand:
            total += self.input_size**2 * self.in_channels * self.expanded_channels
        dense = self.in_channels if self.fused else 1  # input channels per output channel
        total += out_area * dense * self.expanded_channels * self.kernel_size**2
        if self.se_channels:
            total += 2 * self.expanded_channels * self.se_channels
        total += out_area * self.expanded_channels * self.out_channels
        return total

    def params(self) -> int:
        hidden = self.expanded_channels
        total = 0
        if self.has_expand:
            total += self.in_channels * hidden + 2 * hidden
        dense = self.in_channels if self.fused else 1
        total += dense * hidden * self.kernel_size**2 + 2 * hidden
        if self.se_channels:
            total += hidden * self.se_channels + self.se_channels
            total += self.se_channels * hidden + hidden
        total += hidden * self.out_channels + 2 * self.out_channels
        return total


@dataclass(frozen=True, kw_only=True)
class LayerShapes:
    """Every layer of a subnet with its channels and spatial size."""

    in_channels: int
    resolution: int
    stem_channels: int
    stem_kernel_size: int
    stem_stride: int
    blocks: tuple[BlockShape, ...]
    head_in_channels: int
    head_channels: int
    head_input_size: int
    feature_channels: int | None
    num_classes: int

    @property
    def stem_output_size(self) -> int:
        return conv_output_size(self.resolution, self.stem_kernel_size, self.stem_stride)


def layer_shapes(space: Space, arch: Arch) -> LayerShapes:
    """The layers of ``arch`` in ``space`` (``arch`` is assumed valid; see ``validate``)."""
    stem = space.stem
    size = conv_output_size(arch.resolution, stem.kernel_size, stem.stride)
    channels = stem.channels
    blocks = []
    for s, stage in enumerate(arch.stages):
        spec = space.stages[s]
        out_channels = space.stage_channels(s, stage.width_mult)
        for b in range(stage.depth):
            expand = stage.expand_ratio[b]
            hidden = channels if expand == 1 else space.expanded_channels(channels, expand)
            block = BlockShape(
                stage=s,
                index=b,
                in_channels=channels,
                out_channels=out_channels,
                expanded_channels=hidden,
                expand_ratio=expand,
                kernel_size=stage.kernel_size[b],
                stride=stage.stride if b == 0 else 1,
                input_size=size,
                se_channels=space.se_channels(hidden) if spec.se_of(stage) else 0,
                activation=spec.activation_of(stage),
                precision=stage.precision,
                block_type=stage.block_type,
            )
            blocks.append(block)
            size = block.output_size
            channels = out_channels
    return LayerShapes(
        in_channels=space.in_channels,
        resolution=arch.resolution,
        stem_channels=stem.channels,
        stem_kernel_size=stem.kernel_size,
        stem_stride=stem.stride,
        blocks=tuple(blocks),
        head_in_channels=channels,
        head_channels=space.head.channels,
        head_input_size=size,
        feature_channels=space.head.feature_channels,
        num_classes=space.num_classes,
    )


def flops(space: Space, arch: Arch) -> int:
    """Multiply-adds of one forward pass at batch 1."""
    shapes = layer_shapes(space, arch)
    total = shapes.stem_output_size**2 * shapes.in_channels * shapes.stem_channels
    total *= shapes.stem_kernel_size**2
    total += sum(block.flops() for block in shapes.blocks)
    total += shapes.head_input_size**2 * shapes.head_in_channels * shapes.head_channels
    classifier_in = shapes.head_channels
    if shapes.feature_channels is not None:
        total += shapes.head_channels * shapes.feature_channels
        classifier_in = shapes.feature_channels
    return total + classifier_in * shapes.num_classes


def params(space: Space, arch: Arch) -> int:
    """Number of learnable parameters."""
    shapes = layer_shapes(space, arch)
    return _fixed_params(shapes) + sum(block.params() for block in shapes.blocks)


def int8_blocks(space: Space, arch: Arch) -> list[int]:
    """Indices, in the order :func:`layer_shapes` lists them, of the blocks that run in int8."""
    return precision_blocks(space, arch, "int8")


def precision_blocks(space: Space, arch: Arch, precision: str) -> list[int]:
    """Indices, in the order :func:`layer_shapes` lists them, of the blocks that run in
    ``precision``."""
    blocks = layer_shapes(space, arch).blocks
    return [index for index, block in enumerate(blocks) if block.precision == precision]


def weight_bytes(space: Space, arch: Arch) -> int:
    """Bytes of the weights: each block's parameters at its precision's bit width, the stem,
    head and classifier at fp32 (4 bytes each). A size target that precision can lower, where
    :func:`params` cannot see it."""
    shapes = layer_shapes(space, arch)
    blocks = sum(block.params() * PRECISION_BITS[block.precision] // 8 for block in shapes.blocks)
    return 4 * _fixed_params(shapes) + blocks


def _fixed_params(shapes: LayerShapes) -> int:
    """Parameters outside the blocks: stem, head and classifier (always fp32)."""
    total = shapes.in_channels * shapes.stem_channels * shapes.stem_kernel_size**2
    total += 2 * shapes.stem_channels
    total += shapes.head_in_channels * shapes.head_channels + 2 * shapes.head_channels
    classifier_in = shapes.head_channels
    if shapes.feature_channels is not None:
        total += shapes.head_channels * shapes.feature_channels
        classifier_in = shapes.feature_channels
    return total + classifier_in * shapes.num_classes + shapes.num_classes
