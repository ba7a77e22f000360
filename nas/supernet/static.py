"""Static (non-elastic) torch networks built from an arch's layer shapes.

These are the deployable networks: plain ``nn.Conv2d``/``nn.BatchNorm2d``/``nn.Linear`` modules
with no elastic code, which export to ONNX and run anywhere. The supernet's ``extract`` fills
one with copied weights; the same builder gives a freshly initialised network for training a
subnet alone.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from search_spaces import Arch, BlockShape, Space, layer_shapes, validate

__all__ = ["InvertedResidual", "SqueezeExcitation", "StaticNetwork", "activation", "build_network"]


def activation(name: str) -> nn.Module:
    """The module for an activation name of the space (``relu`` or ``hswish``)."""
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "hswish":
        return nn.Hardswish(inplace=True)
    raise ValueError(f"unknown activation {name!r}; expected relu or hswish")


def conv_bn(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1
) -> nn.Sequential:
    """Convolution with ``kernel_size // 2`` padding and no bias, followed by batch norm."""
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
    )


class SqueezeExcitation(nn.Module):
    """Channel attention: pool, 1x1 reduce (ReLU), 1x1 expand, hard sigmoid gate."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, hidden, 1, bias=True)
        self.expand = nn.Conv2d(hidden, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean(dim=(2, 3), keepdim=True)
        scale = torch.relu(self.reduce(scale))
        return x * nn.functional.hardsigmoid(self.expand(scale))


class InvertedResidual(nn.Module):
    """MobileNetV3 block: 1x1 expand, depthwise, optional SE, 1x1 project, residual add; a
    fused block has one dense kxk conv (``fused``) in place of the expand and depthwise ones."""

    def __init__(self, shape: BlockShape) -> None:
        super().__init__()
        hidden = shape.expanded_channels
        self.expand: nn.Module | None = None
        self.depthwise: nn.Module | None = None
        self.fused: nn.Module | None = None
        if shape.fused:
            self.fused = nn.Sequential(
                *conv_bn(shape.in_channels, hidden, shape.kernel_size, shape.stride),
                activation(shape.activation),
            )
        else:
            if shape.has_expand:
                self.expand = nn.Sequential(
                    *conv_bn(shape.in_channels, hidden, 1), activation(shape.activation)
                )
            self.depthwise = nn.Sequential(
                *conv_bn(hidden, hidden, shape.kernel_size, shape.stride, groups=hidden),
                activation(shape.activation),
            )
        self.se: nn.Module | None = None
        if shape.se_channels:
            self.se = SqueezeExcitation(hidden, shape.se_channels)
        self.project = conv_bn(hidden, shape.out_channels, 1)
        self.residual = shape.residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused is not None:
            out = self.fused(x)
        else:
            out = x if self.expand is None else self.expand(x)
            out = cast(nn.Module, self.depthwise)(out)
        if self.se is not None:
            out = self.se(out)
        out = self.project(out)
        return out + x if self.residual else out


class StaticNetwork(nn.Module):
    """stem -> blocks -> head conv -> global pool -> [feature conv] -> dropout -> classifier."""

    def __init__(self, space: Space, arch: Arch) -> None:
        super().__init__()
        validate(space, arch)
        shapes = layer_shapes(space, arch)
        self.resolution = arch.resolution
        self.stem = nn.Sequential(
            *conv_bn(
                shapes.in_channels,
                shapes.stem_channels,
                shapes.stem_kernel_size,
                shapes.stem_stride,
            ),
            activation(space.stem.activation),
        )
        self.blocks = nn.Sequential(*(InvertedResidual(block) for block in shapes.blocks))
        self.head = nn.Sequential(
            *conv_bn(shapes.head_in_channels, shapes.head_channels, 1),
            activation(space.head.activation),
        )
        self.features: nn.Module | None = None
        classifier_in = shapes.head_channels
        if shapes.feature_channels is not None:
            self.features = nn.Sequential(
                nn.Conv2d(shapes.head_channels, shapes.feature_channels, 1, bias=False),
                activation(space.head.activation),
            )
            classifier_in = shapes.feature_channels
        self.dropout = nn.Dropout(space.head.dropout)
        self.classifier = nn.Linear(classifier_in, shapes.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(x)))
        x = x.mean(dim=(2, 3), keepdim=True)
        if self.features is not None:
            x = self.features(x)
        return self.classifier(self.dropout(torch.flatten(x, 1)))


def build_network(space: Space, arch: Arch) -> StaticNetwork:
    """A freshly initialised static network for ``arch``."""
    return StaticNetwork(space, arch)
