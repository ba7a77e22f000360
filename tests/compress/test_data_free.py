"""Data-free calibration images synthesized from batch norm statistics (ZeroQ-style)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from compress.data_free import batch_norm_images
from nas.data import Dataset
from nas.errors import UserError
from tests.compress import models
from tests.compress.conftest import one_line

SHAPE = (models.IN_CHANNELS, models.RESOLUTION, models.RESOLUTION)


def _with_statistics(digits16: Dataset) -> nn.Module:
    """plain_cnn whose batch norms hold the statistics of the digits (cumulative averages)."""
    torch.manual_seed(0)
    model = models.plain_cnn()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.as_tensor(digits16.x_train[:512]))
    return model.eval()


def _distance(model: nn.Module, images: np.ndarray) -> float:
    """Summed distance of the batch statistics of ``images`` from the running ones."""
    total = 0.0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        nonlocal total
        assert isinstance(module, nn.BatchNorm2d)
        x = inputs[0]
        mean, std = x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3), unbiased=False)
        total += float((mean - module.running_mean).norm())
        total += float((std - (module.running_var + 1e-5).sqrt()).norm())

    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    handles = [m.register_forward_pre_hook(hook) for m in norms]
    with torch.no_grad():
        model(torch.as_tensor(images))
    for handle in handles:
        handle.remove()
    return total


def test_images_match_the_statistics_batch_norm_remembers(digits16: Dataset) -> None:
    model = _with_statistics(digits16)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    calls: list[tuple[int, int]] = []
    images = batch_norm_images(
        model, SHAPE, count=32, steps=60, seed=1, progress=lambda d, t: calls.append((d, t))
    )
    assert images.shape == (32, *SHAPE) and images.dtype == np.float32
    assert calls[-1] == (60, 60) and len(calls) == 60
    noise = np.random.default_rng(1).standard_normal(images.shape).astype(np.float32)
    real = digits16.x_test[:32]
    synthesized = _distance(model, images)
    # closer to the statistics than noise is, and about as close as real images are
    assert synthesized < _distance(model, noise) / 3
    assert synthesized < 2 * _distance(model, real)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), f"{key} changed"
    again = batch_norm_images(model, SHAPE, count=32, steps=60, seed=1)
    assert np.array_equal(images, again)


def test_refuses_a_model_without_batch_norm_and_bad_counts() -> None:
    plain = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))
    with pytest.raises(UserError, match="no batch norm statistics") as info:
        batch_norm_images(plain, SHAPE, count=4, steps=1)
    one_line(info.value)
    with pytest.raises(UserError, match="at least 2 images"):
        batch_norm_images(models.plain_cnn().eval(), SHAPE, count=1, steps=1)
