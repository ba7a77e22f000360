"""Subnets trained from scratch (stand-alone), many at once: in worker processes of this
machine, or as Ray tasks.

Each job is one :func:`nas.train.train_from_scratch` of an arch with one seed and recipe,
then its accuracy and cross-entropy on the validation and test splits. Results come back as
each job finishes (``on_result``), so a caller can write them down at once and a killed run
loses only the trainings in flight. On Ray the data set goes into the object store once; a
task takes one CPU (one GPU with a cuda device) and runs one thread, and a task whose worker
dies is run again once. At most ``workers`` tasks run at a time.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from nas.data import Dataset, resize_images
from nas.distributed.backend import Backend, check_resources, connect, worker_count
from nas.measure import torch_threads
from nas.train import Recipe, accuracy, cross_entropy, train_from_scratch
from search_spaces import Arch, Space, space_from_dict, space_to_dict

__all__ = ["StandaloneJob", "train_subnets"]

logger = logging.getLogger(__name__)
# The data set of the local worker processes: set before the pool forks, read in the workers.
_DATASET: Dataset | None = None


@dataclass(frozen=True)
class StandaloneJob:
    """One stand-alone training; ``key`` names its result, which holds the trained weights
    (``state``: name -> numpy array) when ``keep_weights``."""

    key: str
    arch: Arch
    seed: int
    keep_weights: bool = False


def train_and_score(
    space: Space,
    arch: Arch,
    seed: int,
    dataset: Dataset,
    recipe: Recipe,
    *,
    threads: int = 1,
    device: str = "cpu",
    keep_weights: bool = False,
) -> dict[str, Any]:
    """``arch`` trained from scratch with ``recipe`` and ``seed``; its seconds, and accuracy
    and cross-entropy on the validation and test splits (and its weights, ``state``, when
    ``keep_weights``)."""
    with torch_threads(threads):  # the caller's setting comes back afterwards
        start = time.perf_counter()
        network = train_from_scratch(space, arch, dataset, recipe, seed=seed, device=device)
        result: dict[str, Any] = {"seconds": time.perf_counter() - start, "threads": threads}
        for split in ("val", "test"):
            x = resize_images(getattr(dataset, f"x_{split}"), arch.resolution)
            y = getattr(dataset, f"y_{split}")
            result[f"{split}_accuracy"] = accuracy(network, x, y, device=device)
            result[f"{split}_nll"] = cross_entropy(network, x, y, device=device)
        if keep_weights:
            result["state"] = {
                name: tensor.detach().cpu().numpy() for name, tensor in network.state_dict().items()
            }
    return result


def _local_job(space: Space, job: StandaloneJob, recipe: Recipe, threads: int) -> dict[str, Any]:
    assert _DATASET is not None
    return train_and_score(
        space, job.arch, job.seed, _DATASET, recipe, threads=threads, keep_weights=job.keep_weights
    )


def train_subnets(
    space: Space,
    dataset: Dataset,
    recipe: Recipe,
    jobs: Iterable[StandaloneJob],
    on_result: Callable[[StandaloneJob, dict[str, Any]], None],
    *,
    backend: Backend | None = None,
    processes: int = 1,
    device: str = "cpu",
) -> None:
    """Train every job; ``on_result(job, result)`` as each finishes. Locally ``processes`` at
    a time (each on ``cpu_count // processes`` threads; one process runs here); on Ray at
    most ``backend.workers`` tasks at a time (default: every CPU of the cluster)."""
    todo = list(jobs)
    if not todo:
        return
    if backend is not None and backend.is_ray:
        _train_on_ray(space, dataset, recipe, todo, on_result, backend, device)
        return
    threads = max(1, (os.cpu_count() or 1) // max(processes, 1))
    if processes <= 1:
        for job in todo:
            result = train_and_score(
                space,
                job.arch,
                job.seed,
                dataset,
                recipe,
                threads=threads,
                device=device,
                keep_weights=job.keep_weights,
            )
            on_result(job, result)
        return
    global _DATASET
    _DATASET = dataset
    try:
        with ProcessPoolExecutor(max_workers=processes) as pool:
            futures = {pool.submit(_local_job, space, job, recipe, threads): job for job in todo}
            for future in as_completed(futures):
                on_result(futures[future], future.result())
    finally:
        _DATASET = None


def _ray_job(
    space_dict: dict[str, Any],
    arch: dict[str, Any],
    seed: int,
    dataset: Dataset,
    recipe: Recipe,
    device: str,
    keep_weights: bool,
) -> dict[str, Any]:
    """A Ray task: one stand-alone training on one thread of this worker."""
    space = space_from_dict(space_dict)
    return train_and_score(
        space, Arch.from_dict(arch), seed, dataset, recipe, device=device, keep_weights=keep_weights
    )


def _train_on_ray(
    space: Space,
    dataset: Dataset,
    recipe: Recipe,
    jobs: list[StandaloneJob],
    on_result: Callable[[StandaloneJob, dict[str, Any]], None],
    backend: Backend,
    device: str,
) -> None:
    ray = connect(backend)
    gpu = device.startswith("cuda")
    workers = worker_count(ray, backend, gpu=gpu)
    check_resources(ray, workers=workers, gpu=gpu, now=False)
    remote = ray.remote(num_cpus=1, num_gpus=1 if gpu else 0, max_retries=1)(_ray_job)
    shared = ray.put(dataset)
    space_dict = space_to_dict(space)
    waiting = list(jobs)
    running: dict[Any, StandaloneJob] = {}
    logger.info("training %d subnets on Ray, %d at a time", len(jobs), workers)
    while waiting or running:
        while waiting and len(running) < workers:
            job = waiting.pop(0)
            ref = remote.remote(
                space_dict, job.arch.to_dict(), job.seed, shared, recipe, device, job.keep_weights
            )
            running[ref] = job
        ready, _ = ray.wait(list(running), num_returns=1)
        for ref in ready:
            job = running.pop(ref)
            on_result(job, ray.get(ref))
