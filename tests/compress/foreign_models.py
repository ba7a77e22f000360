"""Small models unlike our classifiers, as users bring them: each is a zero-argument factory.

Inputs and outputs differ from the 1x16x16 -> (N, 10) classifiers of :mod:`tests.compress.models`:

* ``densenet_block``: dense concatenation, RGB 3x16x16 -> (N, 10) class logits;
* ``shufflenet_style``: grouped 1x1 convolutions with channel shuffle and a depthwise
  convolution, RGB 3x16x16 -> (N, 10) logits;
* ``se_grouped``: squeeze-excitation around grouped convolutions, 3x16x16 -> (N, 8, 8, 8)
  feature maps (a backbone);
* ``tiny_unet``: encoder-decoder with skip connections, 4 channels, 16x24 (not square) ->
  (N, 3, 16, 24) per pixel;
* ``two_heads`` / ``two_heads_tuple``: a dict ``{"logits": (N, 10), "boxes": (N, 4)}`` or
  the same as a tuple, from 3x16x16.
"""

from __future__ import annotations

import torch
from torch import nn

NUM_CLASSES = 10
# (C, H, W) of each model's input.
INPUT_SHAPES = {
    "densenet_block": (3, 16, 16),
    "shufflenet_style": (3, 16, 16),
    "se_grouped": (3, 16, 16),
    "tiny_unet": (4, 16, 24),
    "two_heads": (3, 16, 16),
    "two_heads_tuple": (3, 16, 16),
}


def _conv_bn_relu(
    in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1, groups: int = 1
) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(
            in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False
        ),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class DenseLayer(nn.Module):
    def __init__(self, in_channels: int, growth: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels)
        self.bottleneck = nn.Conv2d(in_channels, 2 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * growth)
        self.conv = nn.Conv2d(2 * growth, growth, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = self.conv(torch.relu(self.bn2(self.bottleneck(torch.relu(self.bn(x))))))
        return torch.cat([x, new], dim=1)


class DenseNetBlock(nn.Module):
    def __init__(self, growth: int = 8) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 2 * growth, 3, 1, 1, bias=False)
        self.block = nn.Sequential(*(DenseLayer((2 + i) * growth, growth) for i in range(3)))
        self.norm = nn.BatchNorm2d(5 * growth)
        self.classifier = nn.Linear(5 * growth, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.norm(self.block(self.stem(x))))
        return self.classifier(x.mean(dim=(2, 3)))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    batch, channels, height, width = x.shape
    x = x.view(batch, groups, channels // groups, height, width).transpose(1, 2)
    return x.reshape(batch, channels, height, width)


class ShuffleUnit(nn.Module):
    """ShuffleNet v1 unit: grouped 1x1, shuffle, depthwise 3x3, grouped 1x1, residual add."""

    def __init__(self, channels: int, groups: int = 4) -> None:
        super().__init__()
        self.groups = groups
        self.reduce = _conv_bn_relu(channels, channels, kernel=1, groups=groups)
        self.depthwise = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, groups=channels, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.expand = nn.Sequential(
            nn.Conv2d(channels, channels, 1, groups=groups, bias=False), nn.BatchNorm2d(channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = channel_shuffle(self.reduce(x), self.groups)
        return torch.relu(x + self.expand(self.depthwise(out)))


class ShuffleNetStyle(nn.Module):
    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.stem = _conv_bn_relu(3, width, stride=2)
        self.units = nn.Sequential(ShuffleUnit(width), ShuffleUnit(width))
        self.head = _conv_bn_relu(width, 2 * width, kernel=1)
        self.fc = nn.Linear(2 * width, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.units(self.stem(x)))
        return self.fc(x.mean(dim=(2, 3)))


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(self.pool(x)))))


class SEGroupedBackbone(nn.Module):
    """A feature extractor (no classifier): grouped convolutions each followed by SE."""

    def __init__(self, width: int = 16, groups: int = 4) -> None:
        super().__init__()
        self.stem = _conv_bn_relu(3, width)
        self.grouped1 = _conv_bn_relu(width, width, groups=groups)
        self.se1 = SqueezeExcite(width)
        self.grouped2 = _conv_bn_relu(width, 2 * width, stride=2, groups=groups)
        self.se2 = SqueezeExcite(2 * width)
        self.project = nn.Conv2d(2 * width, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.se1(self.grouped1(self.stem(x)))
        return self.project(self.se2(self.grouped2(x)))


class TinyUNet(nn.Module):
    """Image to image: 4 input channels, 3 output channels per pixel."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.enc1 = _conv_bn_relu(4, width)
        self.enc2 = _conv_bn_relu(width, 2 * width, stride=2)
        self.bottleneck = _conv_bn_relu(2 * width, 4 * width, stride=2)
        self.up2 = nn.ConvTranspose2d(4 * width, 2 * width, 2, stride=2)
        self.dec2 = _conv_bn_relu(4 * width, 2 * width)
        self.up1 = nn.Upsample(scale_factor=2, mode="nearest")
        self.dec1 = _conv_bn_relu(3 * width, width)
        self.out = nn.Conv2d(width, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        d2 = self.dec2(torch.cat([self.up2(self.bottleneck(e2)), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return self.out(d1) + x[:, :3]


class TwoHeads(nn.Module):
    """A shared trunk with a classification head and a box-regression head."""

    def __init__(self, width: int = 16, as_tuple: bool = False) -> None:
        super().__init__()
        self.as_tuple = as_tuple
        self.trunk = nn.Sequential(
            _conv_bn_relu(3, width), _conv_bn_relu(width, 2 * width, stride=2)
        )
        self.classify = nn.Linear(2 * width, NUM_CLASSES)
        self.boxes = nn.Sequential(
            _conv_bn_relu(2 * width, width, kernel=1), nn.Conv2d(width, 4, 1)
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor] | tuple[torch.Tensor, ...]:
        features = self.trunk(x)
        logits = self.classify(features.mean(dim=(2, 3)))
        boxes = self.boxes(features).mean(dim=(2, 3))
        return (logits, boxes) if self.as_tuple else {"logits": logits, "boxes": boxes}


def densenet_block() -> nn.Module:
    return DenseNetBlock()


def shufflenet_style() -> nn.Module:
    return ShuffleNetStyle()


def se_grouped() -> nn.Module:
    return SEGroupedBackbone()


def tiny_unet() -> nn.Module:
    return TinyUNet()


def two_heads() -> nn.Module:
    return TwoHeads()


def two_heads_tuple() -> nn.Module:
    return TwoHeads(as_tuple=True)


FACTORIES = {
    "densenet_block": densenet_block,
    "shufflenet_style": shufflenet_style,
    "se_grouped": se_grouped,
    "tiny_unet": tiny_unet,
    "two_heads": two_heads,
    "two_heads_tuple": two_heads_tuple,
}


class NumpyOutput(nn.Module):
    """A model whose output is a numpy array: it cannot be traced."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> object:
        return self.conv(x).detach().numpy()


def numpy_output() -> nn.Module:
    return NumpyOutput()
