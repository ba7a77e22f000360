"""The elastic supernet of a space, as in Once-for-All: one set of weights, every subnet."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, cast

import numpy as np
import torch
from torch import nn

from nas.supernet.blocks import ElasticStage
from nas.supernet.head import ElasticHead
from nas.supernet.limits import block_limits, head_in_channel_choices
from nas.supernet.ops import ElasticBatchNorm2d
from nas.supernet.static import activation
from search_spaces import Arch, BlockShape, LayerShapes, Space, layer_shapes, validate

if TYPE_CHECKING:
    from nas.supernet.static import StaticNetwork

__all__ = ["Supernet"]

logger = logging.getLogger(__name__)


class Supernet(nn.Module):
    """Every subnet of ``space`` in one module, with weights shared by all of them.

    A fixed stem conv-BN-act, the first ``max(num_stages)`` stages at their largest depth (a
    subnet runs the first ``num_stages`` stages and the first ``depth`` blocks of each), and the
    head. Channels, kernels, expand ratios and strides are elastic; the network is
    resolution-agnostic, so the caller feeds images at ``active_arch.resolution``. The active
    subnet starts as ``space.largest()``.

    Every module is configured from :func:`search_spaces.layer_shapes` of the active arch, the
    same description :class:`nas.supernet.static.StaticNetwork` is built from.

    Raises ``ValueError`` when a stage's expand ratio choices mix 1 with other values.
    """

    def __init__(self, space: Space) -> None:
        super().__init__()
        self.space = space
        stem = space.stem
        self.stem = nn.Sequential(
            nn.Conv2d(
                space.in_channels,
                stem.channels,
                stem.kernel_size,
                stride=stem.stride,
                padding=stem.kernel_size // 2,
                bias=False,
            ),
            ElasticBatchNorm2d(stem.channels),  # batch norm that data-parallel training syncs
            activation(stem.activation),
        )
        self.stages = nn.ModuleList(ElasticStage(limits) for limits in block_limits(space))
        self.head = ElasticHead(space.head, max(head_in_channel_choices(space)), space.num_classes)
        self._active_arch: Arch = space.largest()
        self._active_shapes: LayerShapes = layer_shapes(space, self._active_arch)
        self.set_active(self._active_arch)

    @property
    def active_arch(self) -> Arch:
        """The subnet that ``forward`` computes."""
        return self._active_arch

    @property
    def active_shapes(self) -> LayerShapes:
        """The layer shapes of the active subnet."""
        return self._active_shapes

    def stage(self, index: int) -> ElasticStage:
        """Stage ``index`` of the supernet."""
        return cast(ElasticStage, self.stages[index])

    def set_active(self, arch: Arch) -> None:
        """Make ``arch`` the active subnet; raises ``ArchError`` when it is not in the space."""
        validate(self.space, arch)
        shapes = layer_shapes(self.space, arch)
        by_stage: list[list[BlockShape]] = [[] for _ in range(arch.num_stages)]
        for block in shapes.blocks:
            by_stage[block.stage].append(block)
        for index, blocks in enumerate(by_stage):
            self.stage(index).set_active(blocks)
        self._active_arch = arch
        self._active_shapes = shapes
        logger.debug("active subnet %s", arch)

    def set_max(self) -> Arch:
        """Activate the largest subnet (``space.largest()``) and return it."""
        arch = self.space.largest()
        self.set_active(arch)
        return arch

    def set_min(self) -> Arch:
        """Activate the smallest subnet (``space.smallest()``) and return it."""
        arch = self.space.smallest()
        self.set_active(arch)
        return arch

    def sample_active(self, rng: np.random.Generator) -> Arch:
        """Activate a subnet drawn uniformly per gene with ``rng`` and return it."""
        arch = self.space.sample(rng)
        self.set_active(arch)
        return arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for index in range(self._active_arch.num_stages):
            x = self.stages[index](x)
        return cast(torch.Tensor, self.head(x))

    def extract(self, arch: Arch | None = None) -> StaticNetwork:
        """A :class:`~nas.supernet.static.StaticNetwork` of ``arch`` (default: the active one).

        The weights are copies (kernel transforms applied, channels sliced, batch norm
        statistics copied), on this supernet's device and in its train/eval mode; the supernet
        itself is left unchanged.
        """
        from nas.supernet.extract import extract_network

        return extract_network(self, self._active_arch if arch is None else arch)
