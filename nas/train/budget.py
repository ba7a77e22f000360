"""A time budget for supernet training: ``nas train --budget 10m``.

The schedule's epochs stay as they are; what the budget sets is how many training images each
epoch draws. A few steps of the warm-up (the largest subnet alone) and of the elastic phases
(the sandwich rule) are timed on this machine, with the end-of-epoch check, and the images per
epoch are chosen so that the whole schedule fits. The number is then fixed in the checkpoint,
so a resumed run trains exactly as an uninterrupted one would.
"""

from __future__ import annotations

import math
import re
import statistics
import time

import numpy as np
import torch

from nas.data import Dataset
from nas.errors import UserError
from nas.supernet import Supernet
from nas.train.config import TrainConfig
from nas.train.evaluate import evaluate
from nas.train.layout import as_layout
from nas.train.sampling import draw_step
from nas.train.schedule import Schedule
from nas.train.step import train_step
from nas.train.trainer import _make_optimizer
from search_spaces import Space, smallest_in

__all__ = ["images_for_budget", "parse_duration"]

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|m|min|h)?\s*$")
# Fewer images than this per epoch would make each epoch a handful of steps.
MIN_IMAGES_PER_EPOCH = 512


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``600``, ``90s``, ``10m`` or ``1.5h``."""
    match = _DURATION.match(str(text))
    if match is None:
        raise UserError(
            f"budget {text!r} is not a duration; write it as seconds, minutes or hours, e.g. "
            "600, 90s, 10m or 1.5h"
        )
    seconds = float(match.group(1)) * _UNITS[match.group(2) or ""]
    if seconds <= 0:
        raise UserError(f"budget {text!r} must be longer than zero, e.g. 10m")
    return seconds


def _median_seconds(run: object, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def images_for_budget(
    space: Space,
    dataset: Dataset,
    schedule: Schedule,
    config: TrainConfig,
    seconds: float,
    *,
    probe_steps: int = 3,
) -> int:
    """Training images per epoch that fit ``schedule`` into ``seconds`` on this machine
    (rounded down to whole batches, and never above the train split); a :class:`UserError`
    when even the fewest images would not fit."""
    device = torch.device(config.device)
    supernet = as_layout(Supernet(space).to(device), config.channels_last)
    optimizer = _make_optimizer(supernet, config, 0.0)  # a throwaway supernet: only timed
    rng = np.random.default_rng(config.seed)
    images = dataset.x_train[: config.batch_size]
    labels = torch.as_tensor(dataset.y_train[: config.batch_size], device=device)
    step_seconds = {}
    for phase in {p.elastic: p for p in schedule.phases}.values():

        def step(phase: object = phase) -> None:
            draw = draw_step(space, phase, config, rng)  # type: ignore[arg-type]
            train_step(
                supernet,
                optimizer,
                draw.subnets,
                images,
                labels,
                config,
                device,
                candidates=draw.candidates,
            )

        step()  # warm-up
        step_seconds[phase.elastic] = _median_seconds(step, probe_steps)
    check_seconds = _median_seconds(
        lambda: [
            evaluate(
                supernet,
                arch,
                dataset,
                calibration_size=config.calibration_size,
                device=device,
                limit=config.monitor_images,
            )
            for arch in (space.largest(), smallest_in(space, schedule.phases[-1].elastic))
        ],
        1,
    )
    per_batch = sum(p.epochs * step_seconds[p.elastic] for p in schedule.phases)
    left = seconds - schedule.total_epochs * check_seconds
    batches_per_epoch = math.floor(left / per_batch) if left > 0 else 0
    count = min(batches_per_epoch * config.batch_size, len(dataset.y_train))
    if count < min(MIN_IMAGES_PER_EPOCH, len(dataset.y_train)):
        needed = schedule.total_epochs * check_seconds + per_batch * math.ceil(
            MIN_IMAGES_PER_EPOCH / config.batch_size
        )
        raise UserError(
            f"a budget of {seconds:.0f} s is too short for {schedule.total_epochs} epochs on this "
            f"machine (at least {needed:.0f} s for {MIN_IMAGES_PER_EPOCH} images an epoch); "
            "give a longer --budget or fewer --epochs"
        )
    return int(count)
