"""Knowledge distillation: a student learns from a teacher's softened predictions.

:func:`distillation_loss` is Hinton et al.'s loss, ``alpha * T^2 * KL(teacher_T || student_T)
+ (1 - alpha) * CE(student, labels)`` with both distributions softened by temperature ``T``
(the ``T^2`` keeps gradient magnitudes comparable across temperatures). Logits may be
``(N, classes)`` or per-pixel ``(N, classes, H, W)``. :func:`feature_distillation_loss` matches
intermediate feature maps. :func:`distill` trains a student on a :class:`nas.data.Dataset`;
:func:`train_student` is the shared loop (also used to fine-tune pruned models).

Models that are not classifiers of the data set's classes (dense per-pixel outputs, several
outputs, other classes) and unlabelled :class:`compress.images.Images` have no task loss:
:func:`train_student` then distils the teacher's outputs, every output tensor matched leaf by
leaf with mean squared error (:func:`compress.outputs.output_distillation_loss`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from compress.images import Data, Images
from compress.outputs import accuracy_not_applicable, output_distillation_loss
from nas.data import Dataset, resize_images
from nas.errors import UserError, first_line
from nas.train.standalone import train_network

__all__ = [
    "DistillConfig",
    "distill",
    "distillation_loss",
    "feature_distillation_loss",
    "feature_projection",
    "task_loss_not_applicable",
    "train_student",
]

logger = logging.getLogger(__name__)


def _check_temperature_alpha(temperature: float, alpha: float) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        raise UserError(f"temperature must be a number, got {temperature!r}")
    if not temperature > 0 or not math.isfinite(temperature):
        raise UserError(f"temperature must be positive, got {temperature}")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 <= alpha <= 1:
        raise UserError(f"alpha must be between 0 and 1, got {alpha!r}")


@dataclass(frozen=True, kw_only=True)
class DistillConfig:
    """Training settings for :func:`train_student` (validated)."""

    epochs: int
    lr: float = 0.05
    temperature: float = 4.0
    alpha: float = 0.9
    resolution: int | None = None
    batch_size: int = 64
    weight_decay: float = 5e-5
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 0:
            raise UserError(f"epochs must be a non-negative integer, got {self.epochs!r}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, int | float) or not self.lr > 0:
            raise UserError(f"learning rate must be positive, got {self.lr!r}")
        _check_temperature_alpha(self.temperature, self.alpha)
        if (
            isinstance(self.batch_size, bool)
            or not isinstance(self.batch_size, int)
            or self.batch_size < 1
        ):
            raise UserError(f"batch size must be a positive integer, got {self.batch_size!r}")
        if self.weight_decay < 0:
            raise UserError(f"weight decay must be >= 0, got {self.weight_decay}")


def _flatten_logits(logits: torch.Tensor) -> torch.Tensor:
    """``(N, C, ...)`` logits as ``(N * ..., C)`` rows."""
    if logits.ndim <= 2:
        return logits
    return logits.movedim(1, -1).reshape(-1, logits.shape[1])


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: float = 4.0,
    alpha: float = 0.9,
) -> torch.Tensor:
    """``alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, labels)``.

    The KL term is averaged over samples (and pixels, for per-pixel logits); ``alpha=0`` is
    plain cross-entropy and ``alpha=1`` ignores the labels.
    """
    _check_temperature_alpha(temperature, alpha)
    if student_logits.shape != teacher_logits.shape:
        raise UserError(
            f"student logits {tuple(student_logits.shape)} and teacher logits "
            f"{tuple(teacher_logits.shape)} differ; the two models must predict the same classes"
        )
    student = _flatten_logits(student_logits)
    teacher = _flatten_logits(teacher_logits.detach())
    hard = functional.cross_entropy(student, labels.reshape(-1)) if alpha < 1 else None
    if alpha == 0:
        assert hard is not None
        return hard
    soft = functional.kl_div(
        functional.log_softmax(student / temperature, dim=1),
        functional.log_softmax(teacher / temperature, dim=1),
        reduction="batchmean",
        log_target=True,
    ) * (temperature**2)
    if hard is None:
        return alpha * soft
    return alpha * soft + (1 - alpha) * hard


def feature_projection(student_channels: int, teacher_channels: int) -> nn.Conv2d:
    """A 1x1 convolution mapping student feature maps to the teacher's channel count."""
    return nn.Conv2d(student_channels, teacher_channels, 1, bias=False)


def feature_distillation_loss(
    student_features: torch.Tensor,
    teacher_features: torch.Tensor,
    projection: nn.Module | None = None,
) -> torch.Tensor:
    """Mean squared error between feature maps (FitNets-style hint loss).

    ``projection`` (e.g. :func:`feature_projection`) maps the student's channels to the
    teacher's; the student map is resized bilinearly when the spatial sizes differ.
    """
    student = student_features if projection is None else projection(student_features)
    teacher = teacher_features.detach()
    if student.shape[1] != teacher.shape[1]:
        raise UserError(
            f"student features have {student.shape[1]} channels and teacher features "
            f"{teacher.shape[1]}; pass a projection such as feature_projection("
            f"{student.shape[1]}, {teacher.shape[1]})"
        )
    if student.ndim == 4 and student.shape[2:] != teacher.shape[2:]:
        student = functional.interpolate(
            student, size=teacher.shape[2:], mode="bilinear", align_corners=False
        )
    return functional.mse_loss(student, teacher)


def _forward(model: nn.Module, images: torch.Tensor, role: str) -> Any:
    try:
        output = model(images)
    except Exception as exc:  # shape errors from the user's model
        text = first_line(exc)
        raise UserError(
            f"the {role} fails on images of shape {tuple(images.shape)}: {text[:200]}"
        ) from None
    return output


def task_loss_not_applicable(model: nn.Module, data: Data, *, role: str = "model") -> str | None:
    """Why ``model`` cannot be trained on ``data``'s labels with cross-entropy (its output is
    not ``(N, classes)`` logits of the data set's classes, or there are no labels), or None."""
    if not isinstance(data, Dataset):
        return "the images have no labels"
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = _forward(model, torch.as_tensor(data.x_train[:2]), role)
    finally:
        model.train(was_training)
    return accuracy_not_applicable(output, data.num_classes)


def _distil_outputs(
    student: nn.Module,
    teacher: nn.Module,
    images: np.ndarray,
    config: DistillConfig,
    progress: Callable[[int, int], None] | None,
) -> nn.Module:
    """Train ``student`` to reproduce every output tensor of ``teacher`` on ``images``."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    parameters = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(
        parameters,
        lr=config.lr,
        momentum=0.9,
        nesterov=True,
        weight_decay=config.weight_decay,
    )
    size = config.batch_size
    total = math.ceil(len(images) / size) * config.epochs
    step = 0
    student.train()
    for epoch in range(config.epochs):
        order = rng.permutation(len(images))
        losses = []
        for start in range(0, len(images), size):
            indices = order[start : start + size]
            if len(indices) < 2 and start > 0:
                continue  # batch norm needs more than one image per batch
            batch = torch.as_tensor(images[indices])
            for group in optimizer.param_groups:
                group["lr"] = 0.5 * config.lr * (1 + math.cos(math.pi * step / max(total, 1)))
            optimizer.zero_grad(set_to_none=True)
            with torch.no_grad():
                target = _forward(teacher, batch, "teacher")
            loss = output_distillation_loss(_forward(student, batch, "student"), target)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            step += 1
            if progress is not None:
                progress(step, total)
        logger.info(
            "epoch %d/%d: output distillation loss %.4g",
            epoch + 1,
            config.epochs,
            float(np.mean(losses)) if losses else float("nan"),
        )
    return student.eval()


def train_student(
    student: nn.Module,
    dataset: Data,
    *,
    teacher: nn.Module | None = None,
    epochs: int,
    lr: float = 0.05,
    temperature: float = 4.0,
    alpha: float = 0.9,
    resolution: int | None = None,
    batch_size: int = 64,
    weight_decay: float = 5e-5,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> nn.Module:
    """Train ``student`` in place on ``dataset``'s train split; distil when ``teacher`` is given.

    SGD (Nesterov momentum 0.9) with a cosine learning rate over all steps; the teacher runs
    in eval mode without gradients. ``progress(done, total)`` is called after every step.
    Where there is no task loss (``dataset`` is unlabelled :class:`Images`, or the student's
    output is not ``(N, classes)`` logits of its classes), the student learns the teacher's
    outputs (mean squared error on every output tensor), which needs a ``teacher``.
    Returns the student in eval mode.
    """
    config = DistillConfig(
        epochs=epochs,
        lr=lr,
        temperature=temperature,
        alpha=alpha,
        resolution=resolution,
        batch_size=batch_size,
        weight_decay=weight_decay,
        seed=seed,
    )
    if isinstance(student, torch.jit.ScriptModule):
        raise UserError("a TorchScript model cannot be trained; give the nn.Module instead")
    if teacher is not None:
        teacher.eval()
    reason = task_loss_not_applicable(student, dataset, role="student")
    if reason is not None:
        if teacher is None:
            raise UserError(
                f"cannot train without a teacher: there is no task loss ({reason}); give a "
                "teacher (e.g. the unpruned model) to distil its outputs"
            )
        if isinstance(dataset, Images) and config.resolution is not None:
            raise UserError("images without labels cannot be resized; give them at their size")
        images = dataset.x_train
        if config.resolution is not None:
            images = resize_images(images, config.resolution)
        logger.info("no task loss (%s): distilling the teacher's outputs", reason)
        return _distil_outputs(student, teacher, images, config, progress)
    assert isinstance(dataset, Dataset)  # a task loss needs labels

    def loss(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = _forward(model, inputs, "student")
        if teacher is None:
            return functional.cross_entropy(_flatten_logits(logits), target.reshape(-1))
        with torch.no_grad():
            teacher_logits = _forward(teacher, inputs, "teacher")
        return distillation_loss(
            logits, teacher_logits, target, temperature=config.temperature, alpha=config.alpha
        )

    return train_network(
        student,
        dataset,
        epochs=config.epochs,
        lr=config.lr,
        batch_size=config.batch_size,
        resolution=config.resolution,
        weight_decay=config.weight_decay,
        seed=config.seed,
        loss=loss,
        progress=progress,
    )


def distill(
    student: nn.Module,
    teacher: nn.Module,
    dataset: Dataset,
    *,
    epochs: int,
    lr: float = 0.05,
    temperature: float = 4.0,
    alpha: float = 0.9,
    resolution: int | None = None,
    batch_size: int = 64,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> nn.Module:
    """Train ``student`` (in place) to match ``teacher`` on ``dataset``; returns it in eval mode."""
    return train_student(
        student,
        dataset,
        teacher=teacher,
        epochs=epochs,
        lr=lr,
        temperature=temperature,
        alpha=alpha,
        resolution=resolution,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
    )
