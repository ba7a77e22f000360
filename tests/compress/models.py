"""Small user-style CNNs for the compression tests: each is a zero-argument factory.

They cover the structures channel pruning must follow: plain stacks, residual adds, depthwise
inverted residuals, dense concatenation, grouped convolutions, squeeze-excitation, and an
encoder-decoder with skip concatenation and transposed convolutions. Inputs are 1x16x16.
"""

from __future__ import annotations

import torch
from torch import nn

IN_CHANNELS = 1
RESOLUTION = 16
NUM_CLASSES = 10


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


class PlainCNN(nn.Module):
    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv_bn_relu(IN_CHANNELS, width),
            _conv_bn_relu(width, 2 * width, stride=2),
            _conv_bn_relu(2 * width, 2 * width),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(2 * width, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNetStyle(nn.Module):
    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.stem = _conv_bn_relu(IN_CHANNELS, width)
        self.layer1 = BasicBlock(width, width)
        self.layer2 = BasicBlock(width, 2 * width, stride=2)
        self.fc = nn.Linear(2 * width, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(x.mean(dim=(2, 3)))


class InvertedResidual(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = in_channels * expand
        self.block = nn.Sequential(
            _conv_bn_relu(in_channels, hidden, kernel=1),
            _conv_bn_relu(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.residual else out


class MobileNetV2Style(nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.stem = _conv_bn_relu(IN_CHANNELS, width)
        self.blocks = nn.Sequential(
            InvertedResidual(width, width, 1, 4),
            InvertedResidual(width, 2 * width, 2, 4),
            InvertedResidual(2 * width, 2 * width, 1, 4),
        )
        self.head = _conv_bn_relu(2 * width, 8 * width, kernel=1)
        self.classifier = nn.Sequential(nn.Dropout(0.0), nn.Linear(8 * width, NUM_CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(x)))
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class DenseLayer(nn.Module):
    def __init__(self, in_channels: int, growth: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels)
        self.conv = nn.Conv2d(in_channels, growth, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.conv(torch.relu(self.bn(x)))], dim=1)


class DenseNetStyle(nn.Module):
    def __init__(self, growth: int = 8) -> None:
        super().__init__()
        self.stem = nn.Conv2d(IN_CHANNELS, 2 * growth, 3, 1, 1, bias=False)
        self.dense = nn.Sequential(
            DenseLayer(2 * growth, growth),
            DenseLayer(3 * growth, growth),
            DenseLayer(4 * growth, growth),
        )
        self.transition = nn.Sequential(
            nn.BatchNorm2d(5 * growth),
            nn.ReLU(inplace=True),
            nn.Conv2d(5 * growth, 4 * growth, 1, bias=False),
            nn.AvgPool2d(2),
        )
        self.classifier = nn.Linear(4 * growth, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.transition(self.dense(self.stem(x)))
        return self.classifier(x.mean(dim=(2, 3)))


class GroupedCNN(nn.Module):
    def __init__(self, width: int = 16, groups: int = 4) -> None:
        super().__init__()
        self.stem = _conv_bn_relu(IN_CHANNELS, width)
        self.grouped = _conv_bn_relu(width, 2 * width, stride=2, groups=groups)
        self.pointwise = _conv_bn_relu(2 * width, 2 * width, kernel=1)
        self.fc = nn.Linear(2 * width, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pointwise(self.grouped(self.stem(x)))
        return self.fc(x.mean(dim=(2, 3)))


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True)))))
        return x * scale


class SECNN(nn.Module):
    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.conv1 = _conv_bn_relu(IN_CHANNELS, width)
        self.se1 = SqueezeExcite(width)
        self.conv2 = _conv_bn_relu(width, 2 * width, stride=2)
        self.se2 = SqueezeExcite(2 * width)
        self.fc = nn.Linear(2 * width, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.se2(self.conv2(self.se1(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3)))


class UNetStyle(nn.Module):
    """Per-pixel classes: output ``(N, NUM_CLASSES, H, W)``."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.enc1 = _conv_bn_relu(IN_CHANNELS, width)
        self.enc2 = _conv_bn_relu(width, 2 * width, stride=2)
        self.bottleneck = _conv_bn_relu(2 * width, 4 * width, stride=2)
        self.up2 = nn.ConvTranspose2d(4 * width, 2 * width, 2, stride=2)
        self.dec2 = _conv_bn_relu(4 * width, 2 * width)
        self.up1 = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.dec1 = _conv_bn_relu(2 * width, width)
        self.out = nn.Conv2d(width, NUM_CLASSES, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        b = self.bottleneck(e2)
        d2 = self.dec2(torch.cat([self.up2(b), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return self.out(d1)


def plain_cnn() -> nn.Module:
    return PlainCNN()


def resnet_style() -> nn.Module:
    return ResNetStyle()


def mobilenetv2_style() -> nn.Module:
    return MobileNetV2Style()


def densenet_style() -> nn.Module:
    return DenseNetStyle()


def grouped_cnn() -> nn.Module:
    return GroupedCNN()


def se_cnn() -> nn.Module:
    return SECNN()


def unet_style() -> nn.Module:
    return UNetStyle()


FACTORIES = {
    "plain_cnn": plain_cnn,
    "resnet_style": resnet_style,
    "mobilenetv2_style": mobilenetv2_style,
    "densenet_style": densenet_style,
    "grouped_cnn": grouped_cnn,
    "se_cnn": se_cnn,
    "unet_style": unet_style,
}


class Untraceable(nn.Module):
    """A model whose forward leaves autograd (numpy round trip): torch-pruning cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(IN_CHANNELS, 8, 3, padding=1)
        self.fc = nn.Linear(8, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x))
        x = torch.as_tensor(x.detach().numpy()).mean(dim=(2, 3))
        return self.fc(x)


class HardCodedReshape(nn.Module):
    """A model that hard-codes a channel count in ``view``: pruning breaks its forward."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(IN_CHANNELS, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(torch.relu(self.conv(x))).view(-1, 8))


def untraceable() -> nn.Module:
    return Untraceable()


def hard_coded_reshape() -> nn.Module:
    return HardCodedReshape()


def not_a_model() -> object:
    return {"weights": 1}


def broken_factory() -> nn.Module:
    raise RuntimeError("this factory always fails")


class WithUnusedHead(nn.Module):
    """A model with an auxiliary head that its forward never runs (left as it is)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = PlainCNN()
        self.aux = nn.Linear(32, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def with_unused_head() -> nn.Module:
    return WithUnusedHead()
