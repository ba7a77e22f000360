from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nas.supernet import Supernet
from search_spaces import Arch, ArchError, Choice, Space, StageArch, get_space

from .conftest import images, randomize


def test_starts_at_largest_and_set_max_min(tiny: Space) -> None:
    net = Supernet(tiny)
    assert net.active_arch == tiny.largest()
    assert net.set_min() == tiny.smallest()
    assert net.active_arch == tiny.smallest()
    net.set_max()
    assert net.active_arch == tiny.largest()


def test_set_active_rejects_arch_outside_space(tiny: Space) -> None:
    net = Supernet(tiny)
    before = net.active_arch
    largest = tiny.largest()
    bad_kernel = dataclasses.replace(
        largest,
        stages=(dataclasses.replace(largest.stages[0], kernel_size=(7, 7)), *largest.stages[1:]),
    )
    too_many = Arch(resolution=20, stages=largest.stages * 2)
    for arch in (bad_kernel, too_many, dataclasses.replace(largest, resolution=32)):
        with pytest.raises(ArchError):
            net.set_active(arch)
    assert net.active_arch == before


def test_sample_active_is_deterministic_and_varied(tiny: Space) -> None:
    net = Supernet(tiny)
    first = [net.sample_active(np.random.default_rng(7)) for _ in range(2)]
    assert first[0] == first[1]
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    seq_a = [net.sample_active(rng_a) for _ in range(10)]
    seq_b = [Supernet(tiny).sample_active(rng_b) for _ in range(10)]
    assert seq_a == seq_b
    assert len(set(seq_a)) > 5
    assert net.active_arch == seq_a[-1]


def test_every_subnet_runs_at_its_resolution(tiny: Space) -> None:
    net = Supernet(tiny).eval()
    rng = np.random.default_rng(0)
    for _ in range(10):
        arch = net.sample_active(rng)
        with torch.no_grad():
            out = net(images(tiny, arch, batch=2))
        assert out.shape == (2, tiny.num_classes)


def test_mixed_expand_ratio_one_is_rejected(tiny: Space) -> None:
    stage = dataclasses.replace(tiny.stages[1], expand_ratio=Choice((1, 3)))
    space = dataclasses.replace(tiny, stages=(tiny.stages[0], stage, tiny.stages[2]))
    with pytest.raises(ValueError, match="mixes 1"):
        Supernet(space)


def test_stage_with_only_expand_one_has_no_expand_conv() -> None:
    space = get_space("mbv3-imagenet")
    net = Supernet(space)
    assert net.stage(0).block(0).expand_conv is None
    assert net.stage(1).block(0).expand_conv is not None


def test_state_dict_round_trip(tiny: Space) -> None:
    net = Supernet(tiny)
    randomize(net, seed=1)
    copy = Supernet(tiny)
    copy.load_state_dict(net.state_dict())
    copy.eval()
    arch = tiny.sample(np.random.default_rng(5))
    net.set_active(arch)
    copy.set_active(arch)
    x = images(tiny, arch)
    with torch.no_grad():
        torch.testing.assert_close(net(x), copy(x), rtol=0, atol=0)
    assert any(k.endswith("transform.matrices.5to3") for k in net.state_dict())


def test_gradients_reach_shared_weights(tiny: Space) -> None:
    net = Supernet(tiny)
    largest = tiny.largest()
    stage0 = StageArch(width_mult=0.5, stride=2, kernel_size=(3,), expand_ratio=(2,))
    arch = Arch(resolution=16, stages=(stage0, largest.stages[1]))
    net.set_active(arch)
    net.train()
    x = images(tiny, arch, batch=3)
    loss = F.cross_entropy(net(x), torch.tensor([0, 1, 2]))
    loss.backward()
    block = net.stage(0).block(0)
    for param in (
        block.depthwise_conv.weight,
        block.depthwise_conv.transform.matrices["5to3"],
        block.project_conv.weight,
        net.stage(1).block(1).project_conv.weight,
        net.head.conv.weight,
        net.stem[0].weight,
    ):
        assert param.grad is not None and param.grad.abs().sum() > 0
    assert block.project_conv.weight.grad is not None
    # only the active slices get gradients
    assert block.project_conv.weight.grad[4:].abs().sum() == 0
    assert net.stage(0).block(1).project_conv.weight.grad is None
    assert net.stage(2).block(0).project_conv.weight.grad is None
