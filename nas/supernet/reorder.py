"""Channel re-ordering by importance, done once before width is made elastic (Once-for-All).

A subnet of smaller width or expand ratio uses the *first* channels of each layer, so sorting
channels by importance (most important first) makes the smaller subnets keep the most useful
ones. A re-ordering permutes every tensor that touches the channels consistently, so the
function of every subnet at full width and largest expand ratio (any depth, kernel, stride,
number of stages) is unchanged; subnets of smaller width or expand ratio do change, by design.

Optimizer state (momentum buffers) is not permuted: re-order before building the optimizer.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch

from nas.supernet.blocks import ElasticInvertedResidual
from nas.supernet.limits import stage_channel_choices
from nas.supernet.ops import ElasticBatchNorm2d, ElasticConv2d
from search_spaces import Space

if TYPE_CHECKING:
    from nas.supernet.network import Supernet

__all__ = ["hidden_importance", "reorder_channels", "stage_reorder_blockers"]

logger = logging.getLogger(__name__)


def _permute(tensor: torch.Tensor, order: torch.Tensor, dim: int) -> None:
    """Permute the first ``len(order)`` entries of ``tensor`` along ``dim`` in place."""
    view = tensor.narrow(dim, 0, order.numel())
    view.copy_(view.index_select(dim, order))


def _permute_bn(bn: ElasticBatchNorm2d, order: torch.Tensor) -> None:
    for tensor in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
        if tensor is not None:
            _permute(tensor, order, 0)


def _permute_conv_outputs(conv: ElasticConv2d, order: torch.Tensor) -> None:
    _permute(conv.weight, order, 0)
    if conv.bias is not None:
        _permute(conv.bias, order, 0)


def _descending(importance: torch.Tensor) -> torch.Tensor:
    return torch.argsort(importance, descending=True, stable=True)


def hidden_importance(block: ElasticInvertedResidual) -> torch.Tensor:
    """Importance of a block's expanded channels: L1 norm of the project conv's input weights."""
    return block.project_conv.weight.detach().abs().sum(dim=(0, 2, 3))


def _reorder_hidden(block: ElasticInvertedResidual) -> None:
    """Sort the expanded channels of a block (and its SE hidden channels) by importance."""
    if not block.limits.has_expand:
        return  # the expanded channels are the block's input channels: not the block's to sort
    order = _descending(hidden_importance(block))
    for conv, bn in (
        (block.expand_conv, block.expand_bn),
        (block.depthwise_conv, block.depthwise_bn),
        (block.fused_conv, block.fused_bn),
    ):
        if conv is not None and bn is not None:
            _permute_conv_outputs(conv, order)
            _permute_bn(bn, order)
    if block.se is not None:
        _permute(block.se.reduce.weight, order, 1)
        _permute_conv_outputs(block.se.expand, order)
        se_order = _descending(block.se.expand.weight.detach().abs().sum(dim=(0, 2, 3)))
        _permute_conv_outputs(block.se.reduce, se_order)
        _permute(block.se.expand.weight, se_order, 1)
    _permute(block.project_conv.weight, order, 1)


def stage_reorder_blockers(space: Space, stage: int) -> list[str]:
    """Why the output channels of ``stage`` cannot be re-ordered on their own (empty: they can).

    A stage's output channels feed its own residuals, the first block of the next stage and,
    when the stage can be the last, the head. They are re-ordered only when every reader can be
    permuted with them and no reader is shared with other channels: no residual links them to
    the previous or next stage's channels at full width, both this stage and the next have
    expand convs (otherwise depthwise convs would read them directly), and no other stage can
    be the last one (the head's input weights would be shared).
    """
    reasons = []
    count = int(space.num_stages.max)
    for first, second in ((stage - 1, stage), (stage, stage + 1)):
        if second >= count:
            continue
        same = max(stage_channel_choices(space, first)) == max(stage_channel_choices(space, second))
        if same and 1 in space.stages[second].stride.values:
            reasons.append(f"a residual links stage {first} to stage {second} at full width")
    for index in (stage, stage + 1):
        if index < count and 1 in space.stages[index].expand_ratio.values:
            reasons.append(f"stage {index} has blocks without an expand conv")
    last = {int(n) - 1 for n in space.num_stages.values}
    if stage in last and len(last) > 1:
        reasons.append(f"the head's input weights are shared by stages {sorted(last)}")
    return reasons


def _blocks(supernet: Supernet, stage: int) -> list[ElasticInvertedResidual]:
    elastic = supernet.stage(stage)
    return [elastic.block(index) for index in range(elastic.max_depth)]


def _stage_readers(supernet: Supernet, stage: int) -> list[torch.Tensor]:
    """Weights whose input channels (dim 1) are the output channels of ``stage``."""
    readers: list[torch.Tensor] = []
    following = _blocks(supernet, stage)[1:]
    if stage + 1 < len(supernet.stages):
        following.append(supernet.stage(stage + 1).block(0))
    for block in following:
        if block.expand_conv is not None:
            readers.append(block.expand_conv.weight)
        if block.fused_conv is not None:
            readers.append(block.fused_conv.weight)
    if stage in {int(n) - 1 for n in supernet.space.num_stages.values}:
        readers.append(supernet.head.conv.weight)
    return readers


def _reorder_stage(supernet: Supernet, stage: int) -> None:
    channels = max(stage_channel_choices(supernet.space, stage))
    readers = _stage_readers(supernet, stage)
    if not readers:
        return
    importance = torch.zeros(channels, device=readers[0].device, dtype=readers[0].dtype)
    for weight in readers:
        importance += weight.detach()[:, :channels].abs().sum(dim=(0, 2, 3))
    order = _descending(importance)
    for block in _blocks(supernet, stage):
        _permute_conv_outputs(block.project_conv, order)
        _permute_bn(block.project_bn, order)
    for weight in readers:
        _permute(weight, order, 1)


def reorder_channels(supernet: Supernet) -> tuple[int, ...]:
    """Sort channels by importance in place; returns the stages whose outputs were sorted.

    In every block with an expand conv, the expanded channels are sorted by the L1 norm of the
    project conv's input-channel weights (descending), permuting the expand conv outputs and
    its batch norm (running statistics included), the depthwise conv and its batch norm, the
    SE reduce inputs and expand outputs, and the project conv inputs; the SE hidden channels
    are sorted likewise by the L1 norm of the SE expand conv's input weights. Blocks without an
    expand conv are skipped (their expanded channels are their input channels).

    A stage's output channels are sorted by the L1 norm of the weights that read them (later
    blocks' expand convs, the next stage's first expand conv, the head conv), permuting the
    project convs and batch norms of all its blocks and all those readers, but only where
    :func:`stage_reorder_blockers` finds nothing against it; other stages are skipped.
    """
    with torch.no_grad():
        for index in range(len(supernet.stages)):
            for block in _blocks(supernet, index):
                _reorder_hidden(block)
        sorted_stages = []
        for index in range(len(supernet.stages)):
            blockers = stage_reorder_blockers(supernet.space, index)
            if blockers:
                logger.debug("stage %d outputs not re-ordered: %s", index, "; ".join(blockers))
                continue
            _reorder_stage(supernet, index)
            sorted_stages.append(index)
    return tuple(sorted_stages)
