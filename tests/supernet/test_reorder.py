from __future__ import annotations

import dataclasses

import numpy as np
import torch

from nas.supernet import (
    Supernet,
    hidden_importance,
    reorder_channels,
    stage_reorder_blockers,
)
from search_spaces import Arch, Space, StageArch, get_space

from .conftest import images, randomize


def _full_width(space: Space, arch: Arch) -> Arch:
    """``arch`` with every width and expand ratio at its largest (what re-ordering keeps)."""
    stages = []
    for spec, stage in zip(space.stages, arch.stages, strict=False):
        expand = max(spec.expand_ratio.values)
        stages.append(
            StageArch(
                width_mult=max(spec.width_mult.values),
                stride=stage.stride,
                kernel_size=stage.kernel_size,
                expand_ratio=(expand,) * stage.depth,
            )
        )
    return dataclasses.replace(arch, stages=tuple(stages))


def _outputs(net: Supernet, archs: list[Arch]) -> list[torch.Tensor]:
    results = []
    with torch.no_grad():
        for arch in archs:
            net.set_active(arch)
            x = images(net.space, arch, batch=3, seed=2)
            results.append(net(x.to(net.head.conv.weight.dtype)))
    return results


def _check_reorder(net: Supernet, archs: list[Arch]) -> tuple[int, ...]:
    before = _outputs(net, archs)
    reordered = reorder_channels(net)
    after = _outputs(net, archs)
    for arch, old, new in zip(archs, before, after, strict=True):
        # 1e-5 absolute for outputs of order one (float32 sums change order when permuted)
        tolerance = 1e-5 * max(1.0, float(old.abs().max()))
        assert float((old - new).abs().max()) <= tolerance, arch
    for index in range(len(net.stages)):
        stage = net.stage(index)
        for b in range(stage.max_depth):
            block = stage.block(b)
            if block.expand_conv is None:
                continue
            importance = hidden_importance(block)
            assert torch.all(importance[:-1] >= importance[1:])
    return reordered


def test_reorder_keeps_function_and_sorts_tiny(tiny: Space) -> None:
    net = Supernet(tiny)
    randomize(net, seed=3)
    rng = np.random.default_rng(3)
    archs = [tiny.largest()] + [_full_width(tiny, tiny.sample(rng)) for _ in range(4)]
    block = net.stage(1).block(0)
    assert not torch.all(hidden_importance(block)[:-1] >= hidden_importance(block)[1:])
    # stage 0 shares a residual with the stem, stages 1 and 2 share the head's inputs
    assert _check_reorder(net, archs) == ()


def test_reorder_sorts_stage_outputs_where_consistent(small: Space) -> None:
    net = Supernet(small)
    randomize(net, seed=4, archs=2, batch=4)
    # twenty blocks with small BN variances amplify float32 rounding past 1e-5; in float64
    # the permutation is exact (differences ~1e-12)
    net.double()
    rng = np.random.default_rng(4)
    archs = [small.largest()] + [_full_width(small, small.sample(rng)) for _ in range(3)]
    assert _check_reorder(net, archs) == (1,)
    readers = [net.stage(1).block(b).expand_conv for b in range(1, 4)]
    readers.append(net.stage(2).block(0).expand_conv)
    importance = sum(conv.weight.abs().sum(dim=(0, 2, 3)) for conv in readers if conv is not None)
    assert isinstance(importance, torch.Tensor)
    assert torch.all(importance[:-1] >= importance[1:])


def test_stage_reorder_blockers_on_imagenet_space() -> None:
    space = get_space("mbv3-imagenet")
    assert stage_reorder_blockers(space, 0)
    assert all(not stage_reorder_blockers(space, s) for s in range(1, 6))
