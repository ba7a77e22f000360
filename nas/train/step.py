"""One optimizer step of supernet training: every subnet of the step forward and backward on
the same batch (the largest teaching the others), then one update of the summed gradients."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch.nn import functional

from nas.data import resize_images
from nas.supernet import Supernet, synchronized_batch_norm
from nas.train.config import SCORE_IMAGES, TrainConfig
from nas.train.layout import batch_in_layout
from nas.train.parallel import Step
from search_spaces import Arch

__all__ = ["cosine_lr", "distill_loss", "train_step"]


def cosine_lr(lr: float, step: int, total: int) -> float:
    return 0.5 * lr * (1 + math.cos(math.pi * step / max(total, 1)))


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    log_student = functional.log_softmax(student / temperature, dim=1)
    soft_teacher = functional.softmax(teacher / temperature, dim=1)
    kl = functional.kl_div(log_student, soft_teacher, reduction="batchmean")
    return kl * temperature**2


def train_step(
    supernet: Supernet,
    optimizer: torch.optim.Optimizer,
    subnets: list[Arch],
    images: np.ndarray,
    labels: torch.Tensor,
    config: TrainConfig,
    device: torch.device,
    step: Step | None = None,
    *,
    candidates: Sequence[Sequence[Arch]] = (),
) -> float:
    """One optimizer step on the summed gradients of ``subnets`` on this batch; returns the
    mean loss. Of each group of ``candidates`` the one with the highest loss on the first
    :data:`SCORE_IMAGES` images joins them (worst-of sampling; one process only). ``step``
    (data-parallel training) says how this worker's part of the batch joins the others
    (:class:`Step`); a worker whose part is empty only joins the final sum."""
    if candidates and step is not None:
        raise ValueError("worst-of sampling needs the whole batch in one process")
    optimizer.zero_grad(set_to_none=True)
    synchronised = (
        synchronized_batch_norm(step.batch_sum)
        if step is not None and step.batch_sum is not None
        else contextlib.nullcontext()
    )
    with synchronised:
        total = _forward_backward(
            supernet, subnets, images, labels, config, device, step, candidates
        )
    mean = total / (len(subnets) + len(candidates))
    if step is not None:
        mean = step.sync(supernet, mean)
    optimizer.step()
    return mean


def _forward_backward(
    supernet: Supernet,
    subnets: list[Arch],
    images: np.ndarray,
    labels: torch.Tensor,
    config: TrainConfig,
    device: torch.device,
    step: Step | None,
    candidates: Sequence[Sequence[Arch]] = (),
) -> float:
    """Every subnet's loss on the batch, back-propagated; returns their sum. The worst of
    each group of ``candidates`` is chosen once the fixed subnets (and so the teacher) ran."""
    scale = 1.0 if step is None else step.loss_scale
    teacher: torch.Tensor | None = None
    total = 0.0
    resized: dict[int, torch.Tensor] = {}

    def batch_at(resolution: int) -> torch.Tensor:
        if resolution not in resized:
            batch = torch.as_tensor(resize_images(images, resolution), device=device)
            resized[resolution] = batch_in_layout(batch, config.channels_last)
        return resized[resolution]

    def score(arch: Arch) -> float:
        return _candidate_loss(supernet, arch, batch_at(arch.resolution), teacher, labels, config)

    def train(arch: Arch, is_largest: bool) -> None:
        nonlocal teacher, total
        supernet.set_active(arch)
        logits = supernet(batch_at(arch.resolution))
        if teacher is not None and config.inplace_distillation:
            loss = distill_loss(logits, teacher, config.distill_temperature)
        else:
            loss = functional.cross_entropy(logits, labels, label_smoothing=config.label_smoothing)
        (loss * scale if scale != 1.0 else loss).backward()
        if is_largest:
            teacher = logits.detach()
        total += float(loss.detach())

    if not len(images):
        return total
    for index, arch in enumerate(subnets):
        # The sandwich puts the phase's largest subnet first: it teaches the others.
        train(arch, is_largest=index == 0 and config.sandwich)
    for group in candidates:  # the teacher is known now: train the worst of each group
        train(max(group, key=score), is_largest=False)
    return total


def _candidate_loss(
    supernet: Supernet,
    arch: Arch,
    batch: torch.Tensor,
    teacher: torch.Tensor | None,
    labels: torch.Tensor,
    config: TrainConfig,
) -> float:
    """How badly ``arch`` does on the first :data:`SCORE_IMAGES` images of the batch: its
    distillation loss against the teacher's predictions, or its cross-entropy without one."""
    supernet.set_active(arch)
    with torch.no_grad():
        logits = supernet(batch[:SCORE_IMAGES])
        if teacher is not None and config.inplace_distillation:
            loss = distill_loss(logits, teacher[:SCORE_IMAGES], config.distill_temperature)
        else:
            loss = functional.cross_entropy(logits, labels[:SCORE_IMAGES])
    return float(loss)
