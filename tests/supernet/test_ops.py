from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas.supernet import (
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticLinear,
    KernelTransform,
    centre_crop,
)


def _depthwise(kernel_sizes: tuple[int, ...] = (3, 5, 7), channels: int = 6) -> ElasticConv2d:
    torch.manual_seed(0)
    return ElasticConv2d(channels, channels, kernel_sizes, depthwise=True)


def test_kernel_transform_is_centre_crop_at_init() -> None:
    conv = _depthwise()
    for kernel in (3, 5):
        expected = centre_crop(conv.weight, kernel)
        torch.testing.assert_close(conv.active_weight(6, kernel_size=kernel), expected)
    assert torch.equal(conv.active_weight(6, kernel_size=7), conv.weight)


def test_kernel_transform_chains_learned_matrices() -> None:
    conv = _depthwise()
    with torch.no_grad():
        for matrix in conv.transform.matrices.values():
            matrix.add_(0.3 * torch.randn(matrix.shape))
    small = conv.active_weight(6, kernel_size=3)
    assert not torch.allclose(small, centre_crop(conv.weight, 3))
    m75 = conv.transform.matrices[KernelTransform.key(7, 5)]
    m53 = conv.transform.matrices[KernelTransform.key(5, 3)]
    five = (centre_crop(conv.weight, 5).reshape(6, 1, 25) @ m75.T).reshape(6, 1, 5, 5)
    three = (centre_crop(five, 3).reshape(6, 1, 9) @ m53.T).reshape(6, 1, 3, 3)
    torch.testing.assert_close(small, three)
    assert set(conv.transform.matrices) == {"7to5", "5to3"}


def test_elastic_conv_slices_channels_and_strides() -> None:
    torch.manual_seed(0)
    conv = ElasticConv2d(8, 12, (3, 5))
    conv.set_active(out_channels=5, kernel_size=3)
    x = torch.randn(2, 6, 9, 9)
    for stride in (1, 2):
        expected = F.conv2d(x, centre_crop(conv.weight[:5, :6], 3), stride=stride, padding=1)
        torch.testing.assert_close(conv(x, stride=stride), expected)
    depthwise = _depthwise()
    depthwise.set_active(kernel_size=5)
    out = depthwise(torch.randn(2, 4, 8, 8), stride=2)
    assert out.shape == (2, 4, 4, 4)
    with pytest.raises(ValueError):
        conv.set_active(out_channels=13)
    with pytest.raises(ValueError):
        conv.set_active(kernel_size=7)
    with pytest.raises(ValueError):
        depthwise.set_active(out_channels=3)


def test_elastic_bn_train_updates_only_active_statistics() -> None:
    torch.manual_seed(0)
    bn = ElasticBatchNorm2d(8, momentum=None)
    reference = nn.BatchNorm2d(5, momentum=None)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.normal_()
        reference.weight.copy_(bn.weight[:5])
        reference.bias.copy_(bn.bias[:5])
    x = torch.randn(4, 5, 6, 6) * 3 + 1
    bn.train()
    reference.train()
    torch.testing.assert_close(bn(x), reference(x))
    assert torch.equal(bn.running_mean[5:], torch.zeros(3))
    assert torch.equal(bn.running_var[5:], torch.ones(3))
    assert not torch.allclose(bn.running_mean[:5], torch.zeros(5))
    torch.testing.assert_close(bn.running_mean[:5], reference.running_mean)
    torch.testing.assert_close(bn.running_var[:5], reference.running_var)
    bn.eval()
    reference.eval()
    torch.testing.assert_close(bn(x), reference(x))


def test_elastic_linear_slices_inputs() -> None:
    torch.manual_seed(0)
    linear = ElasticLinear(10, 3)
    x = torch.randn(2, 7)
    torch.testing.assert_close(linear(x), F.linear(x, linear.weight[:, :7], linear.bias))
    with pytest.raises(ValueError):
        linear(torch.randn(2, 11))


def test_synchronized_batch_norm_of_one_worker_is_batch_norm() -> None:
    """With one worker (the sum is the identity) the synchronised path gives batch norm's
    outputs, gradients and running statistics, in channels-last layout too; two halves whose
    sums are exchanged give the whole batch's outputs."""
    from nas.supernet import ElasticBatchNorm2d, synchronized_batch_norm

    torch.manual_seed(0)
    x = torch.randn(8, 6, 5, 5).to(memory_format=torch.channels_last) * 3 + 1
    plain, synced = ElasticBatchNorm2d(8), ElasticBatchNorm2d(8)
    with torch.no_grad():
        plain.weight.uniform_(0.5, 1.5)
        plain.bias.uniform_(-1, 1)
    synced.load_state_dict(plain.state_dict())
    inputs = [x.clone().requires_grad_(True) for _ in range(2)]
    expected = plain.train()(inputs[0])
    with synchronized_batch_norm(lambda t: t):
        got = synced.train()(inputs[1])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    weights = torch.randn_like(expected)
    (expected * weights).sum().backward()
    (got * weights).sum().backward()
    assert inputs[0].grad is not None and inputs[1].grad is not None
    torch.testing.assert_close(inputs[1].grad, inputs[0].grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(synced.weight.grad, plain.weight.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(synced.running_mean, plain.running_mean)
    torch.testing.assert_close(synced.running_var, plain.running_var)

    halves = x.detach()[:4], x.detach()[4:]
    sums = [None, None]

    def exchange(index: int):  # type: ignore[no-untyped-def]
        def batch_sum(local: torch.Tensor) -> torch.Tensor:
            sums[index] = local.detach()
            other = sums[1 - index]
            return local if other is None else local + other

        return batch_sum

    with synchronized_batch_norm(exchange(0)):
        synced(halves[0])  # records half 0's sums
    with synchronized_batch_norm(exchange(1)):
        second = synced(halves[1])  # half 1 normalised with both halves' statistics
    torch.testing.assert_close(second, expected.detach()[4:], rtol=1e-5, atol=1e-5)
