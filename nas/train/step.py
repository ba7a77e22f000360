"""One optimizer step of supernet training: every subnet of the step forward and backward on
the same batch (the largest teaching the others), then one update of the summed gradients."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from torch.nn import functional

from nas.data import resize_images
from nas.supernet import Supernet, synchronized_batch_norm
from nas.train.config import TrainConfig
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
) -> float:
    """One optimizer step on the summed gradients of ``subnets`` on this batch; returns the
    mean loss. ``step`` (data-parallel training) says how this worker's part of the batch joins
    the others (:class:`Step`); a worker whose part is empty only joins the final sum."""
    optimizer.zero_grad(set_to_none=True)
    synchronised = (
        synchronized_batch_norm(step.batch_sum)
        if step is not None and step.batch_sum is not None
        else contextlib.nullcontext()
    )
    with synchronised:
        total = _forward_backward(supernet, subnets, images, labels, config, device, step)
    mean = total / len(subnets)
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
) -> float:
    """Every subnet's loss on the batch, back-propagated; returns their sum."""
    scale = 1.0 if step is None else step.loss_scale
    teacher: torch.Tensor | None = None
    total = 0.0
    resized: dict[int, torch.Tensor] = {}
    for index, arch in enumerate(subnets if len(images) else []):
        if arch.resolution not in resized:
            batch = torch.as_tensor(resize_images(images, arch.resolution), device=device)
            resized[arch.resolution] = batch_in_layout(batch, config.channels_last)
        supernet.set_active(arch)
        logits = supernet(resized[arch.resolution])
        # The sandwich puts the phase's largest subnet first: it teaches the others.
        is_largest = index == 0 and config.sandwich
        if teacher is not None and config.inplace_distillation:
            loss = distill_loss(logits, teacher, config.distill_temperature)
        else:
            loss = functional.cross_entropy(logits, labels, label_smoothing=config.label_smoothing)
        (loss * scale if scale != 1.0 else loss).backward()
        if is_largest:
            teacher = logits.detach()
        total += float(loss.detach())
    return total
