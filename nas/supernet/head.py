"""The head of the supernet: its only elastic part is the input channels of its 1x1 conv."""

from __future__ import annotations

import torch
from torch import nn

from nas.supernet.ops import ElasticBatchNorm2d, ElasticConv2d, ElasticLinear
from nas.supernet.static import activation
from search_spaces import HeadSpec

__all__ = ["ElasticHead"]


class ElasticHead(nn.Module):
    """1x1 conv-BN-act (sliced inputs), global mean pool, [feature conv-act], dropout, linear.

    ``max_in_channels`` is the largest channel count of any stage that can be the last one.
    """

    def __init__(self, spec: HeadSpec, max_in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = ElasticConv2d(max_in_channels, spec.channels)
        self.bn = ElasticBatchNorm2d(spec.channels)  # batch norm that data-parallel training syncs
        self.act = activation(spec.activation)
        self.features: nn.Sequential | None = None
        classifier_in = spec.channels
        if spec.feature_channels is not None:
            self.features = nn.Sequential(
                nn.Conv2d(spec.channels, spec.feature_channels, 1, bias=False),
                activation(spec.activation),
            )
            classifier_in = spec.feature_channels
        self.dropout = nn.Dropout(spec.dropout)
        self.classifier = ElasticLinear(classifier_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn(self.conv(x)))
        x = x.mean(dim=(2, 3), keepdim=True)
        if self.features is not None:
            x = self.features(x)
        return self.classifier(self.dropout(torch.flatten(x, 1)))
