from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional

from compress import (
    distill,
    distillation_loss,
    feature_distillation_loss,
    feature_projection,
    finetune,
)
from nas.data import Dataset
from nas.errors import UserError
from tests.compress import models
from tests.compress.conftest import one_line


def _logits(seed: int, shape: tuple[int, ...] = (6, 10)) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_alpha_zero_is_cross_entropy() -> None:
    student, teacher = _logits(0), _logits(1)
    labels = torch.tensor([0, 1, 2, 3, 4, 5])
    loss = distillation_loss(student, teacher, labels, temperature=3.0, alpha=0.0)
    assert torch.allclose(loss, functional.cross_entropy(student, labels))


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_soft_term_is_kl_times_t_squared(temperature: float) -> None:
    student, teacher = _logits(0), _logits(1)
    labels = torch.zeros(6, dtype=torch.long)
    soft_teacher = torch.softmax(teacher / temperature, dim=1)
    log_student = torch.log_softmax(student / temperature, dim=1)
    kl = (soft_teacher * (soft_teacher.log() - log_student)).sum(dim=1).mean()
    expected = kl * temperature**2
    loss = distillation_loss(student, teacher, labels, temperature=temperature, alpha=1.0)
    assert torch.allclose(loss, expected, atol=1e-6)
    blended = distillation_loss(student, teacher, labels, temperature=temperature, alpha=0.25)
    hard = functional.cross_entropy(student, labels)
    assert torch.allclose(blended, 0.25 * expected + 0.75 * hard, atol=1e-6)


def test_identical_logits_have_no_soft_loss_and_teacher_gets_no_gradient() -> None:
    teacher = _logits(2).requires_grad_()
    student = teacher.detach().clone().requires_grad_()
    loss = distillation_loss(student, teacher, torch.zeros(6, dtype=torch.long), alpha=1.0)
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-6)
    loss.backward()
    assert teacher.grad is None


def test_t_squared_keeps_gradients_comparable() -> None:
    """Soft-target gradients shrink as 1/T^2; the T^2 factor keeps them about the same size."""
    teacher = _logits(1)
    norms = []
    for temperature in (2.0, 8.0):
        student = _logits(0).requires_grad_()
        distillation_loss(
            student, teacher, torch.zeros(6, dtype=torch.long), temperature=temperature, alpha=1.0
        ).backward()
        assert student.grad is not None
        norms.append(float(student.grad.norm()))
    assert 0.2 < norms[1] / norms[0] < 5


def test_per_pixel_logits() -> None:
    student, teacher = _logits(0, (2, 10, 4, 4)), _logits(1, (2, 10, 4, 4))
    labels = torch.randint(0, 10, (2, 4, 4))
    loss = distillation_loss(student, teacher, labels, alpha=0.0)
    assert torch.allclose(loss, functional.cross_entropy(student, labels))
    assert math.isfinite(float(distillation_loss(student, teacher, labels)))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": -0.1}, "alpha"),
    ],
)
def test_bad_settings_are_refused(options: dict[str, float], match: str) -> None:
    with pytest.raises(UserError, match=match) as info:
        distillation_loss(_logits(0), _logits(1), torch.zeros(6, dtype=torch.long), **options)
    one_line(info.value)


def test_mismatched_logits_are_refused() -> None:
    with pytest.raises(UserError, match="same classes") as info:
        distillation_loss(_logits(0), _logits(1, (6, 5)), torch.zeros(6, dtype=torch.long))
    one_line(info.value)


def test_feature_loss_with_projection_and_resize() -> None:
    student = torch.randn(2, 4, 8, 8)
    teacher = torch.randn(2, 6, 4, 4)
    with pytest.raises(UserError, match="projection"):
        feature_distillation_loss(student, teacher)
    projection = feature_projection(4, 6)
    loss = feature_distillation_loss(student, teacher, projection)
    loss.backward()
    assert projection.weight.grad is not None
    assert float(feature_distillation_loss(teacher, teacher)) == 0.0


def test_distill_and_finetune_train_the_student(digits16: Dataset) -> None:
    small = digits16.at_resolution(8)
    torch.manual_seed(0)
    teacher = models.plain_cnn().eval()
    student = models.PlainCNN(width=4)
    before = [p.detach().clone() for p in student.parameters()]
    steps: list[tuple[int, int]] = []
    result = distill(
        student,
        teacher,
        small,
        epochs=1,
        lr=0.05,
        batch_size=128,
        seed=0,
        progress=lambda done, total: steps.append((done, total)),
    )
    assert result is student and not student.training
    assert any(not torch.equal(a, b) for a, b in zip(before, student.parameters(), strict=True))
    assert steps[-1][0] == steps[-1][1] == math.ceil(len(small.y_train) / 128)
    assert finetune(student, small, epochs=1, batch_size=128) is student
    with pytest.raises(UserError, match="epochs"):
        distill(student, teacher, small, epochs=-1)
    with pytest.raises(UserError, match="student fails") as info:
        distill(_three_channel_student(), teacher, small, epochs=1)
    one_line(info.value)


def _three_channel_student() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(10)
    )
