"""Data-parallel supernet training on a Ray cluster (Ray Train's ``TorchTrainer``).

Every worker runs the trainer's own epochs (:func:`nas.train.trainer._train_epochs`): the same
batches, the same subnets of each sandwich step and the same schedule, each on its contiguous
slice of the batch; before every optimizer step one all-reduce (gloo on CPU, nccl on GPU) sums
the gradients of all workers, each weighted by its share of the batch. So N workers take the
steps one process takes on the whole batch, with one exception: batch norm normalises with the
statistics of each worker's own slice (as plain DDP does), which changes the numbers slightly;
one worker reproduces local training exactly.

Worker 0 writes the same checkpoints as local training (``checkpoint.json`` + safetensors, via
:mod:`nas.train.checkpoint`) into ``out``, which every worker must see (one machine, or storage
shared by the nodes); every worker starts from the last one there, so ``--resume`` and a worker
group restarted by Ray after a failure both continue from the last completed epoch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.data import Dataset
from nas.distributed.backend import Backend, check_resources, connect
from nas.errors import UserError, first_line
from nas.files import LOCK_FILE, check_writable_directory, exclusive_lock
from nas.supernet import Supernet
from nas.train.checkpoint import CHECKPOINT_FILE, load_checkpoint, load_supernet
from nas.train.schedule import Schedule
from nas.train.trainer import EpochResult, Shard, TrainConfig, _start_epoch, _train_epochs
from search_spaces import Space, space_from_dict, space_to_dict

__all__ = ["train_supernet_on_ray"]

logger = logging.getLogger(__name__)
_POLL_SECONDS = 1.0


def all_reduce_gradients(
    model: nn.Module, loss: float, loss_share: float, grad_share: float
) -> float:
    """Sum every worker's gradients (each times ``grad_share``) and loss (times
    ``loss_share``, its part of the batch) in one all-reduce; a parameter no worker used keeps
    no gradient, as in local training. Returns the batch's loss."""
    import torch.distributed as dist

    parameters = [p for p in model.parameters() if p.requires_grad]
    device = parameters[0].device
    pieces = [
        (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) * grad_share
        for p in parameters
    ]
    used = [float(p.grad is not None) for p in parameters]
    flat = torch.cat([*pieces, torch.tensor([loss * loss_share, *used], device=device)])
    dist.all_reduce(flat)
    offset = 0
    for parameter in parameters:
        count = parameter.numel()
        grad = torch.empty_like(parameter)  # the parameter's memory format (channels last)
        parameter.grad = grad.copy_(flat[offset : offset + count].view_as(parameter))
        offset += count
    users = flat[offset + 1 :]
    for parameter, user_count in zip(parameters, users.tolist(), strict=True):
        if user_count == 0:
            parameter.grad = None
    return float(flat[offset])


def batch_sum(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` summed over the workers; its gradient is summed back over them the same way
    (what synchronised batch norm needs)."""
    from torch.distributed.nn.functional import all_reduce

    summed: torch.Tensor = all_reduce(tensor)
    return summed


def _worker_loop(settings: dict[str, Any]) -> None:
    """One Ray Train worker: the trainer's epochs on its slice of every batch."""
    import ray
    import ray.train
    import ray.train.torch

    context = ray.train.get_context()
    config: TrainConfig = settings["config"]
    if torch.device(config.device).type == "cuda":
        config = replace(config, device=str(ray.train.torch.get_device()))
    directory = Path(settings["directory"])
    # The last checkpoint (the one resumed, or this group's own when Ray restarted it).
    start_epoch = load_checkpoint(directory).epoch if (directory / CHECKPOINT_FILE).exists() else 0
    shard = Shard(
        rank=context.get_world_rank(),
        world_size=context.get_world_size(),
        reduce=all_reduce_gradients,
        batch_sum=batch_sum if config.sync_batch_norm else None,
    )
    _train_epochs(
        space_from_dict(settings["space"]),
        ray.get(settings["dataset"]),
        settings["schedule"],
        config,
        directory,
        start_epoch=start_epoch,
        shard=shard,
    )


class _EpochWatcher:
    """Calls ``on_epoch`` for every epoch the checkpoint in ``directory`` records after
    ``start_epoch``, polling it while the workers train (worker 0 writes it atomically)."""

    def __init__(
        self, directory: Path, start_epoch: int, on_epoch: Callable[[EpochResult], None] | None
    ) -> None:
        self.directory = directory
        self.reported = start_epoch
        self.on_epoch = on_epoch
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="epoch-watcher", daemon=True)

    def poll(self) -> None:
        if self.on_epoch is None or not (self.directory / CHECKPOINT_FILE).exists():
            return
        try:
            history = load_checkpoint(self.directory).metadata.get("history", [])
        except UserError:  # being replaced: read it next time
            return
        for entry in history[self.reported :]:
            self.on_epoch(EpochResult(**entry))
        self.reported = max(self.reported, len(history))

    def _run(self) -> None:
        while not self.stop.wait(_POLL_SECONDS):
            self.poll()

    def __enter__(self) -> _EpochWatcher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.poll()


def train_supernet_on_ray(
    space: Space,
    dataset: Dataset,
    schedule: Schedule,
    config: TrainConfig,
    out: str | Path,
    *,
    backend: Backend,
    resume: bool = False,
    on_epoch: Callable[[EpochResult], None] | None = None,
) -> Supernet:
    """:func:`nas.train.train_supernet` with ``backend.workers`` data-parallel Ray Train
    workers (1 CPU, or 1 GPU with a cuda ``config.device``, each). The checkpoints in ``out``
    are the same as local training's and either can resume the other's; ``on_epoch`` is
    called here as worker 0 finishes each epoch. ``out`` must be a path every worker sees."""
    if config.worst_of > 1:
        raise UserError(
            "worst-of sampling scores candidates on the whole batch in one process; train "
            "without --backend ray or with --worst-of 1"
        )
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    directory = Path(out).absolute()
    check_writable_directory(directory)
    ray = connect(backend)
    workers = backend.workers or 1
    gpu = torch.device(config.device).type == "cuda"
    check_resources(ray, workers=workers, gpu=gpu)
    with exclusive_lock(directory / LOCK_FILE, what=f"training the supernet in {directory}"):
        start_epoch = _start_epoch(space, dataset, schedule, config, directory, resume=resume)
        trainer = TorchTrainer(
            _worker_loop,
            train_loop_config={
                "space": space_to_dict(space),
                "dataset": ray.put(dataset),
                "schedule": schedule,
                "config": config,
                "directory": str(directory),
            },
            torch_config=TorchConfig(backend="nccl" if gpu else "gloo"),
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=gpu),
            run_config=RunConfig(
                name=f"supernet-{space.name}",
                storage_path=str(directory / "ray"),
                failure_config=FailureConfig(max_failures=backend.max_failures),
            ),
        )
        logger.info("training on %d Ray worker(s) from epoch %d", workers, start_epoch)
        with _EpochWatcher(directory, start_epoch, on_epoch):
            try:
                trainer.fit()
            except Exception as exc:  # Ray wraps a worker's error in its own
                if not type(exc).__module__.startswith("ray"):
                    raise
                done = (
                    load_checkpoint(directory).epoch
                    if (directory / CHECKPOINT_FILE).exists()
                    else 0
                )
                raise UserError(
                    f"training on Ray failed ({_reason(exc)}); the checkpoint after epoch "
                    f"{done} in {directory} is kept: continue it with --resume"
                ) from None
    supernet, _ = load_supernet(directory, config.device if not gpu else "cpu")
    return supernet


def _reason(exc: BaseException) -> str:
    """The innermost error's first line: a worker's own error, not Ray's wrapping."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return f"{type(exc).__name__}: {first_line(exc)}"
