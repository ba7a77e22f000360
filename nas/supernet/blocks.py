"""Elastic squeeze-excitation, inverted-residual blocks and stages of elastic depth.

Each module is configured from the :class:`~search_spaces.BlockShape` values that
:func:`search_spaces.layer_shapes` gives for the active subnet, so the supernet computes
exactly the layers the static network of that subnet has.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from nas.supernet.limits import BlockLimits
from nas.supernet.ops import ElasticBatchNorm2d, ElasticConv2d
from nas.supernet.static import activation
from search_spaces import BlockShape

__all__ = ["ElasticInvertedResidual", "ElasticSqueezeExcitation", "ElasticStage"]


class ElasticSqueezeExcitation(nn.Module):
    """Squeeze-excitation with elastic channels and elastic hidden (reduced) channels.

    Pool, 1x1 reduce (bias, ReLU), 1x1 expand (bias), hard-sigmoid gate; both convs are sliced.
    """

    def __init__(self, max_channels: int, max_hidden: int) -> None:
        super().__init__()
        self.reduce = ElasticConv2d(max_channels, max_hidden, bias=True)
        self.expand = ElasticConv2d(max_hidden, max_channels, bias=True)

    def set_active(self, channels: int, hidden: int) -> None:
        """``channels`` in and out, ``hidden`` after the reduce conv."""
        self.reduce.set_active(out_channels=hidden)
        self.expand.set_active(out_channels=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean(dim=(2, 3), keepdim=True)
        scale = torch.relu(self.reduce(scale))
        return x * F.hardsigmoid(self.expand(scale))


class ElasticInvertedResidual(nn.Module):
    """A MobileNetV3 block with elastic expand ratio, kernel, in/out channels, stride and type.

    Optional 1x1 expand conv-BN-act (absent when the stage's only expand ratio is 1), depthwise
    conv-BN-act (stride per subnet), optional squeeze-excitation, 1x1 project conv-BN, and the
    residual add when the active shape has stride 1 and as many input as output channels. In
    a stage whose blocks may be fused, a dense kxk conv-BN-act from the input to the expanded
    channels takes the place of the expand and depthwise convs when the active shape is fused;
    the squeeze-excitation and the projection are shared by both forms. Where a stage chooses
    its squeeze-excitation or activation, the active shape decides: the module is skipped, or
    the other (parameterless) activation is applied, to the same weights.
    """

    def __init__(self, limits: BlockLimits) -> None:
        super().__init__()
        self.limits = limits
        hidden = limits.max_expanded_channels
        self.expand_conv: ElasticConv2d | None = None
        self.expand_bn: ElasticBatchNorm2d | None = None
        if limits.has_expand and limits.has_mbconv:
            self.expand_conv = ElasticConv2d(limits.max_in_channels, hidden)
            self.expand_bn = ElasticBatchNorm2d(hidden)
        self.depthwise_conv: ElasticConv2d | None = None
        self.depthwise_bn: ElasticBatchNorm2d | None = None
        if limits.has_mbconv:
            self.depthwise_conv = ElasticConv2d(hidden, hidden, limits.kernel_sizes, depthwise=True)
            self.depthwise_bn = ElasticBatchNorm2d(hidden)
        self.fused_conv: ElasticConv2d | None = None
        self.fused_bn: ElasticBatchNorm2d | None = None
        if limits.has_fused:
            self.fused_conv = ElasticConv2d(limits.max_in_channels, hidden, limits.kernel_sizes)
            self.fused_bn = ElasticBatchNorm2d(hidden)
        self.se: ElasticSqueezeExcitation | None = None
        if limits.max_se_channels:
            self.se = ElasticSqueezeExcitation(hidden, limits.max_se_channels)
        self.project_conv = ElasticConv2d(hidden, limits.max_out_channels)
        self.project_bn = ElasticBatchNorm2d(limits.max_out_channels)
        self.activations = nn.ModuleDict({name: activation(name) for name in limits.activations})
        self.act: nn.Module = self.activations[limits.activations[0]]
        self.shape: BlockShape | None = None

    def check_shape(self, shape: BlockShape) -> None:
        """Raise ``ValueError`` unless this block can compute ``shape``."""
        limits = self.limits
        problems = []
        if (shape.stage, shape.index) != (limits.stage, limits.index):
            problems.append(f"it is block {shape.index} of stage {shape.stage}")
        if shape.block_type not in limits.block_types:
            problems.append(f"block_type={shape.block_type}")
        elif not shape.fused and shape.has_expand != limits.has_expand:
            problems.append(f"has_expand={shape.has_expand}")
        for name, value, limit in (
            ("in_channels", shape.in_channels, limits.max_in_channels),
            ("out_channels", shape.out_channels, limits.max_out_channels),
            ("expanded_channels", shape.expanded_channels, limits.max_expanded_channels),
            ("se_channels", shape.se_channels, limits.max_se_channels),
        ):
            if value > limit:
                problems.append(f"{name}={value} > {limit}")
        if shape.se_channels and not limits.max_se_channels:
            problems.append(f"se_channels={shape.se_channels}")
        if shape.activation not in limits.activations:
            problems.append(f"activation={shape.activation}")
        if shape.kernel_size not in limits.kernel_sizes:
            problems.append(f"kernel_size={shape.kernel_size}")
        if shape.stride not in (1, 2):
            problems.append(f"stride={shape.stride}")
        if problems:
            raise ValueError(
                f"block {limits.index} of stage {limits.stage} cannot compute the given shape: "
                + "; ".join(problems)
            )

    def set_active(self, shape: BlockShape) -> None:
        """Compute ``shape`` from now on."""
        self.check_shape(shape)
        if shape.fused:
            assert self.fused_conv is not None  # check_shape: the block has a fused form
            self.fused_conv.set_active(
                out_channels=shape.expanded_channels, kernel_size=shape.kernel_size
            )
        else:
            if self.expand_conv is not None:
                self.expand_conv.set_active(out_channels=shape.expanded_channels)
            assert self.depthwise_conv is not None  # check_shape: the block has an mbconv form
            self.depthwise_conv.set_active(kernel_size=shape.kernel_size)
        if self.se is not None and shape.se_channels:
            self.se.set_active(shape.expanded_channels, shape.se_channels)
        self.project_conv.set_active(out_channels=shape.out_channels)
        self.act = self.activations[shape.activation]
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = self.shape
        if shape is None:
            raise RuntimeError("set_active must be called before forward")
        if x.size(1) != shape.in_channels:
            raise ValueError(
                f"block {shape.index} of stage {shape.stage} expects {shape.in_channels} "
                f"input channels, got {x.size(1)}"
            )
        out = x
        if shape.fused and self.fused_conv is not None and self.fused_bn is not None:
            out = self.act(self.fused_bn(self.fused_conv(out, stride=shape.stride)))
        elif self.depthwise_conv is not None and self.depthwise_bn is not None:
            if self.expand_conv is not None and self.expand_bn is not None:
                out = self.act(self.expand_bn(self.expand_conv(out)))
            out = self.act(self.depthwise_bn(self.depthwise_conv(out, stride=shape.stride)))
        if self.se is not None and shape.se_channels:
            out = self.se(out)
        out = self.project_bn(self.project_conv(out))
        return out + x if shape.residual else out


class ElasticStage(nn.Module):
    """The blocks of one stage at their largest depth; a subnet runs the first ``depth``."""

    def __init__(self, limits: Sequence[BlockLimits]) -> None:
        super().__init__()
        if not limits:
            raise ValueError("a stage needs at least one block")
        self.blocks = nn.ModuleList(ElasticInvertedResidual(block) for block in limits)
        self.active_depth = len(self.blocks)

    @property
    def max_depth(self) -> int:
        return len(self.blocks)

    def block(self, index: int) -> ElasticInvertedResidual:
        """Block ``index`` of the stage."""
        return cast(ElasticInvertedResidual, self.blocks[index])

    def set_active(self, shapes: Sequence[BlockShape]) -> None:
        """Run one block per shape, in order (the first ``len(shapes)`` blocks)."""
        if not 1 <= len(shapes) <= self.max_depth:
            raise ValueError(f"depth {len(shapes)} outside 1..{self.max_depth}")
        for index, shape in enumerate(shapes):
            self.block(index).set_active(shape)
        self.active_depth = len(shapes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index in range(self.active_depth):
            x = self.blocks[index](x)
        return x
