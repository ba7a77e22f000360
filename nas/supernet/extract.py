"""Extraction of one subnet of a supernet as a plain, deployable static network."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from nas.supernet.blocks import ElasticInvertedResidual, ElasticSqueezeExcitation
from nas.supernet.ops import ElasticConv2d
from nas.supernet.static import InvertedResidual, SqueezeExcitation, StaticNetwork
from search_spaces import Arch, BlockShape, layer_shapes, validate

if TYPE_CHECKING:
    from nas.supernet.network import Supernet

__all__ = ["extract_network"]


def _assign(target: torch.Tensor, source: torch.Tensor, name: str) -> None:
    """Copy ``source`` into ``target``; their shapes must be equal (no broadcasting)."""
    if target.shape != source.shape:
        raise RuntimeError(
            f"{name}: supernet slice has shape {tuple(source.shape)}, static network "
            f"expects {tuple(target.shape)}"
        )
    target.copy_(source)


def _copy_conv(
    source: ElasticConv2d,
    target: nn.Module,
    name: str,
    in_channels: int,
    out_channels: int,
    kernel_size: int | None = None,
) -> None:
    conv = cast(nn.Conv2d, target)
    out = None if source.depthwise else out_channels
    _assign(conv.weight, source.active_weight(in_channels, out, kernel_size), f"{name}.weight")
    bias = source.active_bias(out_channels)
    if (bias is None) != (conv.bias is None):
        raise RuntimeError(f"{name}: bias present in only one of supernet and static network")
    if bias is not None and conv.bias is not None:
        _assign(conv.bias, bias, f"{name}.bias")


def _copy_bn(source: nn.BatchNorm2d, target: nn.Module, name: str, channels: int) -> None:
    bn = cast(nn.BatchNorm2d, target)
    pairs = (
        ("weight", source.weight, bn.weight),
        ("bias", source.bias, bn.bias),
        ("running_mean", source.running_mean, bn.running_mean),
        ("running_var", source.running_var, bn.running_var),
    )
    for key, src, dst in pairs:
        if (src is None) != (dst is None):
            raise RuntimeError(f"{name}.{key} present in only one of supernet and static network")
        if src is not None and dst is not None:
            _assign(dst, src[:channels], f"{name}.{key}")
    if source.num_batches_tracked is not None and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.copy_(source.num_batches_tracked)
    bn.eps = source.eps
    bn.momentum = source.momentum


def _copy_se(
    source: ElasticSqueezeExcitation, target: SqueezeExcitation, name: str, shape: BlockShape
) -> None:
    hidden, se = shape.expanded_channels, shape.se_channels
    _copy_conv(source.reduce, target.reduce, f"{name}.reduce", hidden, se)
    _copy_conv(source.expand, target.expand, f"{name}.expand", se, hidden)


def _copy_block(
    source: ElasticInvertedResidual, target: InvertedResidual, shape: BlockShape
) -> None:
    name = f"stages[{shape.stage}].blocks[{shape.index}]"
    source.check_shape(shape)
    hidden = shape.expanded_channels
    if shape.fused:
        fused = cast(nn.Sequential, target.fused)
        conv, bn = cast(ElasticConv2d, source.fused_conv), cast(nn.BatchNorm2d, source.fused_bn)
        _copy_conv(conv, fused[0], f"{name}.fused", shape.in_channels, hidden, shape.kernel_size)
        _copy_bn(bn, fused[1], f"{name}.fused_bn", hidden)
    else:
        if source.expand_conv is not None and source.expand_bn is not None:
            expand = cast(nn.Sequential, target.expand)
            _copy_conv(source.expand_conv, expand[0], f"{name}.expand", shape.in_channels, hidden)
            _copy_bn(source.expand_bn, expand[1], f"{name}.expand_bn", hidden)
        depthwise = cast(nn.Sequential, target.depthwise)
        conv = cast(ElasticConv2d, source.depthwise_conv)
        bn = cast(nn.BatchNorm2d, source.depthwise_bn)
        _copy_conv(conv, depthwise[0], f"{name}.depthwise", hidden, hidden, shape.kernel_size)
        _copy_bn(bn, depthwise[1], f"{name}.depthwise_bn", hidden)
    if source.se is not None and shape.se_channels:
        _copy_se(source.se, cast(SqueezeExcitation, target.se), f"{name}.se", shape)
    project = cast(nn.Sequential, target.project)
    _copy_conv(source.project_conv, project[0], f"{name}.project", hidden, shape.out_channels)
    _copy_bn(source.project_bn, project[1], f"{name}.project_bn", shape.out_channels)


def extract_network(supernet: Supernet, arch: Arch) -> StaticNetwork:
    """A static network of ``arch`` holding copies of the supernet's weights for it.

    Kernel transforms are applied, channels sliced and batch-norm statistics copied, so in
    eval mode its outputs equal the supernet's with ``arch`` active. The result is on the
    supernet's device and dtype and in its train/eval mode; the supernet is not changed (not
    even its active subnet).
    """
    space = supernet.space
    validate(space, arch)
    shapes = layer_shapes(space, arch)
    reference = supernet.head.conv.weight
    static = StaticNetwork(space, arch).to(device=reference.device, dtype=reference.dtype)
    with torch.no_grad():
        static.stem.load_state_dict(supernet.stem.state_dict())
        for shape, target in zip(shapes.blocks, static.blocks, strict=True):
            source = supernet.stage(shape.stage).block(shape.index)
            _copy_block(source, cast(InvertedResidual, target), shape)
        head = supernet.head
        _copy_conv(
            head.conv, static.head[0], "head.conv", shapes.head_in_channels, shapes.head_channels
        )
        static.head[1].load_state_dict(head.bn.state_dict())
        if head.features is not None and static.features is not None:
            static.features.load_state_dict(head.features.state_dict())
        static.classifier.load_state_dict(head.classifier.state_dict())
    static.train(supernet.training)
    return static
