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

import contextlib
import functools
import logging
import math
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from nas.data import Dataset, batches, epoch_images, resize_images
from nas.defaults import DEFAULT_BATCH_SIZE, DEFAULT_IMAGES_PER_EPOCH, DEFAULT_NUM_RANDOM
from nas.errors import UserError
from nas.files import LOCK_FILE, check_writable_directory, exclusive_lock
from nas.measure import torch_threads
from nas.supernet import Supernet, reorder_channels, synchronized_batch_norm
from nas.train.checkpoint import (
    CHECKPOINT_FILE,
    load_checkpoint,
    load_weights,
    save_checkpoint,
)
from nas.train.evaluate import evaluate
from nas.train.layout import as_layout, batch_in_layout
from nas.train.schedule import Phase, Schedule
from search_spaces import (
    DIMENSIONS,
    Arch,
    Space,
    canonicalize,
    decode_genome,
    genome_layout,
    repair_genomes,
    sample_genomes,
    smallest_in,
    space_to_dict,
    to_genome,
)

__all__ = ["EpochResult", "Shard", "Step", "StepResult", "TrainConfig", "train_supernet"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Optimisation settings and policies (the schedule is separate)."""

    batch_size: int = DEFAULT_BATCH_SIZE
    momentum: float = 0.9
    weight_decay: float = 5e-5
    label_smoothing: float = 0.1
    sandwich: bool = True
    num_random: int = DEFAULT_NUM_RANDOM
    inplace_distillation: bool = True
    distill_temperature: float = 1.0
    calibration_size: int = 500
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    # NHWC tensors: mkldnn's depthwise-conv backward is 2-3x faster in it on CPU, which halves
    # a sandwich step on the default space (README "Supernet training"); the numbers are the same.
    channels_last: bool = True
    # Training images per epoch, drawn afresh every epoch (seeded by the seed and the epoch);
    # None is the whole train split. Lets an epoch (and so a checkpoint) come every half minute
    # on a large data set.
    images_per_epoch: int | None = DEFAULT_IMAGES_PER_EPOCH
    # Validation images the end-of-epoch check of the largest and smallest subnets uses (the
    # first ones of the split); None is all of them. It only informs the log and the history.
    monitor_images: int | None = 1000
    # All subnets of a step see one resolution, drawn per step (as Once-for-All does), instead
    # of the largest always at the largest resolution and the smallest at the smallest. On the
    # default space it keeps the largest accurate at 20 px (README "What limits the supernet
    # here"); it does not help the other dimensions.
    resolution_per_step: bool = False
    # Dimensions (names in search_spaces.DIMENSIONS) drawn once per step and shared by every
    # subnet of the step, the largest and the smallest included: ("resolution", "num_stages",
    # "stride") trains every subnet of a step on one pyramid, so the teacher and the extremes
    # learn every pyramid rather than one each.
    per_step: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise UserError(f"batch size must be positive, got {self.batch_size}")
        if self.num_random < 0:
            raise UserError(f"num_random must be >= 0, got {self.num_random}")
        if not self.sandwich and self.num_random < 1:
            raise UserError("without the sandwich rule, num_random must be >= 1")
        if not 0 <= self.label_smoothing < 1:
            raise UserError(f"label smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.distill_temperature <= 0:
            raise UserError("distillation temperature must be positive")
        if self.threads is not None and self.threads < 1:
            raise UserError(f"threads must be positive, got {self.threads}")
        if self.images_per_epoch is not None and self.images_per_epoch < 1:
            raise UserError(f"images per epoch must be positive, got {self.images_per_epoch}")
        unknown = sorted(set(self.per_step) - set(DIMENSIONS))
        if unknown:
            raise UserError(
                f"unknown per-step dimension(s) {', '.join(unknown)}; use {', '.join(DIMENSIONS)}"
            )
        object.__setattr__(self, "per_step", tuple(sorted(set(self.per_step))))
        if self.monitor_images is not None and self.monitor_images < 1:
            raise UserError(f"monitor images must be positive, got {self.monitor_images}")
        try:
            torch.device(self.device)
        except RuntimeError:
            raise UserError(f"unknown device {self.device!r}; use cpu, cuda or cuda:N") from None


@dataclass(frozen=True)
class Shard:
    """This process's part of data-parallel training: worker ``rank`` of ``world_size`` trains
    on its contiguous slice of every batch (every worker draws the same batches and subnets),
    and ``reduce(model, loss, loss_share, grad_share)`` sums every worker's gradients (each
    times ``grad_share``) and loss (times ``loss_share``, the worker's part of the batch) and
    returns the batch's loss. With ``batch_sum`` (a differentiable sum of a tensor over the
    workers) batch norm normalises with the statistics of the whole batch and each worker
    scales its loss by its share before the backward pass, so a step is the one a single
    process takes on the whole batch; without it, batch norm uses each worker's own slice, as
    plain DDP does."""

    rank: int
    world_size: int
    reduce: Callable[[nn.Module, float, float, float], float]
    batch_sum: Callable[[torch.Tensor], torch.Tensor] | None = None

    def split(self, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, Step]:
        """This worker's images and labels of a batch, and how :func:`_train_step` runs on them."""
        start = len(labels) * self.rank // self.world_size
        stop = len(labels) * (self.rank + 1) // self.world_size
        share = (stop - start) / max(len(labels), 1)
        # A batch smaller than the workers leaves some without images: they cannot join the
        # batch-norm sums of layers they do not run, so that step keeps local statistics.
        if self.batch_sum is not None and self.world_size > 1 and len(labels) >= self.world_size:
            sync = functools.partial(_weighted_reduce, self.reduce, share, 1.0)
            return images[start:stop], labels[start:stop], Step(sync, share, self.batch_sum)
        sync = functools.partial(_weighted_reduce, self.reduce, share, share)
        return images[start:stop], labels[start:stop], Step(sync)


@dataclass(frozen=True)
class Step:
    """How one worker's part of a data-parallel step runs: ``sync`` combines the workers'
    gradients and losses after the backward passes; ``loss_scale`` multiplies the loss before
    them; ``batch_sum``, when set, synchronises batch norm."""

    sync: Callable[[nn.Module, float], float]
    loss_scale: float = 1.0
    batch_sum: Callable[[torch.Tensor], torch.Tensor] | None = None


def _weighted_reduce(
    reduce: Callable[[nn.Module, float, float, float], float],
    loss_share: float,
    grad_share: float,
    model: nn.Module,
    loss: float,
) -> float:
    return reduce(model, loss, loss_share, grad_share)


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


def _subnets(
    space: Space, phase: Phase, config: TrainConfig, rng: np.random.Generator
) -> list[Arch]:
    """The subnets one step trains; the largest first when it is among them."""
    if not phase.elastic:
        return [space.largest()]
    randoms = [
        decode_genome(space, genome)
        for genome in sample_genomes(space, rng, config.num_random, phase.elastic)
    ]
    subnets = [space.largest(), smallest_in(space, phase.elastic)] if config.sandwich else []
    subnets += randoms
    if config.resolution_per_step and "resolution" in phase.elastic:
        resolution = int(rng.choice(space.resolution.values))
        subnets = [replace(arch, resolution=resolution) for arch in subnets]
    shared = [dim for dim in config.per_step if dim in phase.elastic]
    if shared:
        subnets = _share(space, subnets, shared, phase, rng)
    return subnets


def _share(
    space: Space, subnets: list[Arch], shared: list[str], phase: Phase, rng: np.random.Generator
) -> list[Arch]:
    """``subnets`` with the genes of the ``shared`` dimensions taken from one random subnet
    (repaired where the rest no longer fits, such as a stride pattern for another number of
    stages)."""
    layout = genome_layout(space)
    draw = sample_genomes(space, rng, 1, phase.elastic)[0]
    mask = np.array([dim in shared for dim in layout.dimensions])
    genomes = np.stack([to_genome(space, arch) for arch in subnets])
    genomes[:, mask] = draw[mask]
    genomes = canonicalize(space, repair_genomes(space, genomes))
    return [decode_genome(space, genome) for genome in genomes]


def _cosine(lr: float, step: int, total: int) -> float:
    return 0.5 * lr * (1 + math.cos(math.pi * step / max(total, 1)))


def _distill(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    log_student = functional.log_softmax(student / temperature, dim=1)
    soft_teacher = functional.softmax(teacher / temperature, dim=1)
    kl = functional.kl_div(log_student, soft_teacher, reduction="batchmean")
    return kl * temperature**2


def _train_step(
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
            loss = _distill(logits, teacher, config.distill_temperature)
        else:
            loss = functional.cross_entropy(logits, labels, label_smoothing=config.label_smoothing)
        (loss * scale if scale != 1.0 else loss).backward()
        if is_largest:
            teacher = logits.detach()
        total += float(loss.detach())
    return total


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


def _check_resumable(directory: Path, space: Space, schedule: Schedule, config: TrainConfig) -> int:
    checkpoint = load_checkpoint(directory)
    if checkpoint.metadata["space"] != space_to_dict(space):
        raise UserError(
            f"{directory / CHECKPOINT_FILE} was trained on space "
            f"{checkpoint.metadata['space'].get('name')!r}, not {space.name!r}; pass the same "
            "--space or another --out"
        )
    if checkpoint.metadata.get("schedule") != schedule.to_dict():
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
                group["lr"] = _cosine(phase.lr, global_step, total_steps)
            subnets = _subnets(space, phase, config, rng)
            parallel = None
            if shard is not None:
                images, labels, parallel = shard.split(images, labels)
            loss = _train_step(
                supernet,
                optimizer,
                subnets,
                images,
                torch.as_tensor(labels, device=device),
                config,
                device,
                parallel,
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
