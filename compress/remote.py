"""The training stages of ``nas compress`` (distillation, fine-tuning after pruning) as Ray
tasks: the model, its teacher and the data set travel to a worker of the cluster, train there
on ``cpus`` CPUs (threads), and come back trained. Everything else (pruning, quantization,
export, latency) stays in the ``nas`` process, so latency is measured where the command runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from compress.distillation import train_student
from compress.images import Data
from nas.distributed.backend import Backend, check_resources, connect

__all__ = ["Trainer", "ray_trainer"]

# train_student's signature: the student, the data, then keyword options.
Trainer = Callable[..., nn.Module]


def _train_task(
    student: nn.Module, dataset: Data, threads: int, options: dict[str, Any]
) -> nn.Module:
    torch.set_num_threads(threads)
    return train_student(student, dataset, **options)


def ray_trainer(backend: Backend, *, cpus: int = 1) -> Trainer:
    """A drop-in for :func:`compress.distillation.train_student` that runs it as one Ray task
    of ``cpus`` CPUs (``cpus`` threads; compression trains on CPU) on ``backend``'s cluster; a
    task whose worker dies runs once more. Returns the trained student (a copy: the argument is
    left as it was)."""
    ray = connect(backend)
    check_resources(ray, workers=cpus, now=False)
    task = ray.remote(num_cpus=cpus, max_retries=1)(_train_task)

    def train(student: nn.Module, dataset: Data, **options: Any) -> nn.Module:
        trained: nn.Module = ray.get(task.remote(student, dataset, cpus, options))
        return trained

    return train
