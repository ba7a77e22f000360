"""One trainer for every schedule and policy: sandwich rule, in-place distillation, shrinking.

Each step trains several subnets on the same batch and takes one optimizer step on the sum of
their gradients. With the sandwich rule they are the phase's largest subnet, its smallest and
``num_random`` random ones; the largest learns from the labels and, with in-place distillation,
the others learn from the largest's predictions. The phase decides which dimensions may vary.
Every epoch ends with a checkpoint; a killed run resumes from the last one, and since batch
order and subnet draws depend only on the seed and the epoch, a resumed run matches an
uninterrupted one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.data import Dataset, batches, epoch_images
from nas.errors import UserError
from nas.files import LOCK_FILE, check_writable_directory, exclusive_lock
from nas.measure import torch_threads
from nas.supernet import Supernet, reorder_channels
from nas.train.checkpoint import (
    CHECKPOINT_FILE,
    init_weights,
    load_checkpoint,
    load_weights,
    save_checkpoint,
)
from nas.train.config import TrainConfig
from nas.train.evaluate import evaluate
from nas.train.layout import as_layout
from nas.train.parallel import Shard, Step
from nas.train.sampling import draw_step
from nas.train.schedule import Phase, Schedule
from nas.train.step import cosine_lr, train_step
from search_spaces import Space, smallest_in, space_to_dict

__all__ = ["EpochResult", "Shard", "Step", "StepResult", "TrainConfig", "train_supernet"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepResult:
    epoch: int
    step: int
    steps: int
    loss: float


@dataclass(frozen=True)
class EpochResult:
    epoch: int  # 1-based count of completed epochs
    phase: str
    loss: float
    largest_accuracy: float
    smallest_accuracy: float
    seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


def _make_optimizer(supernet: nn.Module, config: TrainConfig, lr: float) -> torch.optim.SGD:
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, parameter in supernet.named_parameters():
        (no_decay if parameter.ndim <= 1 or "transform" in name else decay).append(parameter)
    return torch.optim.SGD(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=lr,
        momentum=config.momentum,
        nesterov=True,
    )


def _varying(space: Space, schedule: Any) -> Any:
    """A schedule's dictionary without the dimensions ``space`` does not vary (precision, block
    type, squeeze-excitation and activation in spaces without those choices), so that a
    checkpoint written before such a dimension existed resumes: its phases trained exactly the
    same subnets."""
    constant = {
        name
        for name, varies in (
            ("precision", space.has_precision),
            ("block_type", space.has_block_type),
            ("se", space.has_se_choice),
            ("activation", space.has_activation_choice),
        )
        if not varies
    }
    if not isinstance(schedule, dict) or not isinstance(schedule.get("phases"), list):
        return schedule
    phases = [
        {**phase, "elastic": sorted(set(phase.get("elastic", [])) - constant)}
        if isinstance(phase, dict)
        else phase
        for phase in schedule["phases"]
    ]
    return {**schedule, "phases": phases}


def _check_resumable(directory: Path, space: Space, schedule: Schedule, config: TrainConfig) -> int:
    checkpoint = load_checkpoint(directory)
    if checkpoint.metadata["space"] != space_to_dict(space):
        raise UserError(
            f"{directory / CHECKPOINT_FILE} was trained on space "
            f"{checkpoint.metadata['space'].get('name')!r}, not {space.name!r}; pass the same "
            "--space or another --out"
        )
    if _varying(space, checkpoint.metadata.get("schedule")) != _varying(space, schedule.to_dict()):
        raise UserError(
            f"{directory / CHECKPOINT_FILE} was trained with another schedule; resume with the "
            "same schedule options or use another --out"
        )
    saved = dict(checkpoint.metadata.get("config", {}))
    for option in fields(TrainConfig):  # settings added since the checkpoint took their default
        if option.name not in saved and option.default is not MISSING:
            saved[option.name] = option.default
    saved = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()}
    current = asdict(config)
    for key in ("device", "threads", "channels_last"):  # how it runs may change between runs
        saved.pop(key, None)
        current.pop(key, None)
    if saved != current:
        changed = sorted(k for k in current if saved.get(k) != current[k])
        raise UserError(
            f"{directory / CHECKPOINT_FILE} was trained with other settings "
            f"({', '.join(changed)}); resume with the same options or use another --out"
        )
    return checkpoint.epoch


def train_supernet(
    space: Space,
    dataset: Dataset,
    schedule: Schedule,
    config: TrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    on_step: Callable[[StepResult], None] | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
) -> Supernet:
    """Train the supernet of ``space`` on ``dataset`` following ``schedule``; checkpoints in
    ``out`` after every epoch. With ``resume``, continue from the checkpoint in ``out``.

    One process at a time trains in ``out``: another one waits for it (with a warning)."""
    directory = Path(out)
    check_writable_directory(directory)
    with exclusive_lock(directory / LOCK_FILE, what=f"training the supernet in {directory}"):
        return _train_supernet(
            space,
            dataset,
            schedule,
            config,
            directory,
            resume=resume,
            on_step=on_step,
            on_epoch=on_epoch,
        )


def _train_supernet(
    space: Space,
    dataset: Dataset,
    schedule: Schedule,
    config: TrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    on_step: Callable[[StepResult], None] | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
) -> Supernet:
    directory = Path(out)
    start_epoch = _start_epoch(space, dataset, schedule, config, directory, resume=resume)
    return _train_epochs(
        space,
        dataset,
        schedule,
        config,
        directory,
        start_epoch=start_epoch,
        on_step=on_step,
        on_epoch=on_epoch,
    )


def _start_epoch(
    space: Space,
    dataset: Dataset,
    schedule: Schedule,
    config: TrainConfig,
    directory: Path,
    *,
    resume: bool,
) -> int:
    """The epoch training starts from in ``directory`` (0, or the checkpoint's with
    ``resume``), after checking the data, the space and the checkpoint's settings."""
    if dataset.in_channels != space.in_channels or dataset.num_classes != space.num_classes:
        raise UserError(
            f"data {dataset.name!r} has {dataset.in_channels} channel(s) and "
            f"{dataset.num_classes} classes but space {space.name!r} expects "
            f"{space.in_channels} and {space.num_classes}; pick a matching space or data set"
        )
    if dataset.resolution < max(space.resolution.values):
        raise UserError(
            f"data {dataset.name!r} is stored at {dataset.resolution}px but space "
            f"{space.name!r} needs up to {max(space.resolution.values)}px; load it at that size"
        )
    start_epoch = 0
    has_checkpoint = (directory / CHECKPOINT_FILE).exists()
    if has_checkpoint and not resume:
        raise UserError(
            f"{directory} already holds a checkpoint; pass --resume to continue it or choose "
            "another --out"
        )
    if resume and has_checkpoint:
        start_epoch = _check_resumable(directory, space, schedule, config)
    elif config.init_from is not None:
        load_checkpoint(config.init_from)  # a missing or unreadable one fails before any work
    check_writable_directory(directory)
    return start_epoch


def _train_epochs(
    space: Space,
    dataset: Dataset,
    schedule: Schedule,
    config: TrainConfig,
    directory: Path,
    *,
    start_epoch: int,
    shard: Shard | None = None,
    on_step: Callable[[StepResult], None] | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
) -> Supernet:
    """Epochs ``start_epoch`` onwards, continuing the checkpoint in ``directory`` when
    ``start_epoch`` > 0; each ends with a checkpoint, written by worker 0 alone when ``shard``
    makes this process one of several data-parallel workers."""
    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    supernet = as_layout(Supernet(space).to(device), config.channels_last)
    optimizer = _make_optimizer(supernet, config, schedule.phases[0].lr)
    history: list[dict[str, Any]] = []
    if start_epoch:
        checkpoint = load_checkpoint(directory)
        load_weights(supernet, checkpoint.weights(device), directory)
        state = checkpoint.optimizer_state(device)
        if state is not None:
            optimizer.load_state_dict(state)
        history = list(checkpoint.metadata.get("history", []))
        logger.info("resuming %s after epoch %d", directory, start_epoch)
    elif config.init_from is not None:
        init_weights(supernet, config.init_from, device)
        logger.info("starting from the weights in %s", config.init_from)

    threads = config.threads or torch.get_num_threads()
    with torch_threads(threads):
        for epoch in range(start_epoch, schedule.total_epochs):
            phase, phase_epoch = schedule.phase_at(epoch)
            if phase.reorder_channels and phase_epoch == 0:
                reorder_channels(supernet)
                optimizer.state.clear()  # momentum no longer lines up with permuted channels
            result = _run_epoch(
                supernet,
                optimizer,
                space,
                dataset,
                phase,
                phase_epoch,
                epoch,
                config,
                device,
                on_step,
                shard=shard,
            )
            history.append(asdict(result))
            if shard is None or shard.rank == 0:
                save_checkpoint(
                    directory,
                    model=supernet,
                    optimizer=optimizer,
                    space=space,
                    epoch=epoch + 1,
                    extra={
                        "schedule": schedule.to_dict(),
                        "config": asdict(config),
                        "history": history,
                        "data": dataset.name,
                    },
                )
            if on_epoch is not None:
                on_epoch(result)
    return as_layout(supernet, channels_last=False).eval()


def _run_epoch(
    supernet: Supernet,
    optimizer: torch.optim.Optimizer,
    space: Space,
    dataset: Dataset,
    phase: Phase,
    phase_epoch: int,
    epoch: int,
    config: TrainConfig,
    device: torch.device,
    on_step: Callable[[StepResult], None] | None,
    *,
    shard: Shard | None = None,
) -> EpochResult:
    from nas.measure import time_callable

    rng = np.random.default_rng([config.seed, epoch])
    torch.manual_seed(config.seed * 100_003 + epoch)  # dropout, the same on resume
    x_train, y_train = epoch_images(dataset.x_train, dataset.y_train, config.images_per_epoch, rng)
    steps = math.ceil(len(y_train) / config.batch_size)
    total_steps = steps * phase.epochs
    losses: list[float] = []

    def run() -> None:
        supernet.train()
        order = batches(
            x_train,
            y_train,
            batch_size=config.batch_size,
            seed=int(rng.integers(2**31)),
        )
        for step, (images, labels) in enumerate(order):
            global_step = phase_epoch * steps + step
            for group in optimizer.param_groups:
                group["lr"] = cosine_lr(phase.lr, global_step, total_steps)
            draw = draw_step(space, phase, config, rng)
            parallel = None
            if shard is not None:
                images, labels, parallel = shard.split(images, labels)
            loss = train_step(
                supernet,
                optimizer,
                draw.subnets,
                images,
                torch.as_tensor(labels, device=device),
                config,
                device,
                parallel,
                candidates=draw.candidates,
            )
            losses.append(loss)
            if on_step is not None:
                on_step(StepResult(epoch=epoch, step=step + 1, steps=steps, loss=loss))

    (milliseconds,) = time_callable(run, warmup=0, repeats=1)
    monitored = (space.largest(), smallest_in(space, phase.elastic))
    if shard is not None and shard.rank != 0:  # worker 0 alone checks and records the epoch
        supernet.set_max()
        return EpochResult(
            epoch=epoch + 1,
            phase=phase.name,
            loss=float(np.mean(losses)) if losses else float("nan"),
            largest_accuracy=float("nan"),
            smallest_accuracy=float("nan"),
            seconds=milliseconds / 1e3,
        )
    largest, smallest = (
        evaluate(
            supernet,
            arch,
            dataset,
            calibration_size=config.calibration_size,
            seed=config.seed,
            device=device,
            limit=config.monitor_images,
        )
        for arch in monitored
    )
    supernet.set_max()
    result = EpochResult(
        epoch=epoch + 1,
        phase=phase.name,
        loss=float(np.mean(losses)) if losses else float("nan"),
        largest_accuracy=largest,
        smallest_accuracy=smallest,
        seconds=milliseconds / 1e3,
    )
    logger.info(
        "epoch %d (%s): loss %.4f, largest %.4f, smallest %.4f",
        result.epoch,
        result.phase,
        result.loss,
        largest,
        smallest,
    )
    return result
