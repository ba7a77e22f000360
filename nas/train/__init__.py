"""Training the elastic supernet once, and evaluating its subnets.

The schedule is data (:class:`Schedule` of :class:`Phase`), consumed by one trainer
(:func:`train_supernet`); progressive shrinking, the sandwich rule, in-place distillation and
delayed shrinking are options. Checkpoints are safetensors plus JSON.
"""

from __future__ import annotations

from nas.train.budget import images_for_budget, parse_duration
from nas.train.checkpoint import (
    CHECKPOINT_FILE,
    Checkpoint,
    init_weights,
    load_checkpoint,
    load_supernet,
    load_weights,
    save_checkpoint,
)
from nas.train.evaluate import (
    accuracy,
    cross_entropy,
    evaluate,
    recalibrate_batch_norm,
    recalibrated,
)
from nas.train.schedule import SCHEDULES, Phase, Schedule, make_schedule
from nas.train.standalone import Recipe, train_from_scratch, train_network
from nas.train.trainer import EpochResult, StepResult, TrainConfig, train_supernet

__all__ = [
    "CHECKPOINT_FILE",
    "SCHEDULES",
    "Checkpoint",
    "EpochResult",
    "Phase",
    "Recipe",
    "Schedule",
    "StepResult",
    "TrainConfig",
    "accuracy",
    "cross_entropy",
    "evaluate",
    "images_for_budget",
    "init_weights",
    "load_checkpoint",
    "load_supernet",
    "load_weights",
    "make_schedule",
    "parse_duration",
    "recalibrate_batch_norm",
    "recalibrated",
    "save_checkpoint",
    "train_from_scratch",
    "train_network",
    "train_supernet",
]
