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
