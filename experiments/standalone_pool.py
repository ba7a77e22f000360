"""Shared by the Fashion-MNIST experiments: subnets trained from scratch in parallel processes,
each result written to the experiment's results file as soon as it is known (a killed run
resumes where it stopped)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import search_spaces as ss
from nas.data import Dataset, resize_images
from nas.train import Recipe, accuracy, cross_entropy, train_from_scratch

__all__ = ["Job", "log_flops_strata", "run_jobs"]

# The data set the worker processes train on: set before the pool forks, read in the workers.
_DATASET: Dataset | None = None


@dataclass(frozen=True)
class Job:
    """One stand-alone training: ``key`` names it in the results file."""

    key: str
    arch: ss.Arch
    seed: int


def _train(space: ss.Space, job: Job, recipe: Recipe, threads: int) -> dict[str, Any]:
    assert _DATASET is not None
    torch.set_num_threads(threads)
    start = time.perf_counter()
    network = train_from_scratch(space, job.arch, _DATASET, recipe, seed=job.seed)
    seconds = time.perf_counter() - start
    result: dict[str, Any] = {"seconds": seconds, "threads": threads}
    for split in ("val", "test"):
        x = resize_images(getattr(_DATASET, f"x_{split}"), job.arch.resolution)
        y = getattr(_DATASET, f"y_{split}")
        result[f"{split}_accuracy"] = accuracy(network, x, y)
        result[f"{split}_nll"] = cross_entropy(network, x, y)
    return result


def run_jobs(
    space: ss.Space,
    dataset: Dataset,
    recipe: Recipe,
    jobs: Iterable[Job],
    done: dict[str, Any],
    save: Callable[[], None],
    *,
    processes: int,
) -> None:
    """Train every job whose key is not in ``done``, ``processes`` at a time (each on
    ``os.cpu_count() // processes`` threads); ``done[key]`` gets each result, then ``save()``."""
    global _DATASET
    todo = [job for job in jobs if job.key not in done]
    if not todo:
        return
    _DATASET = dataset
    threads = max(1, (os.cpu_count() or 1) // processes)
    with ProcessPoolExecutor(max_workers=processes) as pool:
        futures = {pool.submit(_train, space, job, recipe, threads): job for job in todo}
        for count, future in enumerate(as_completed(futures), start=1):
            job = futures[future]
            done[job.key] = {"arch": job.arch.to_dict(), "seed": job.seed, **future.result()}
            save()
            print(
                f"[{count}/{len(todo)}] {job.key}: test {done[job.key]['test_accuracy']:.4f} "
                f"in {done[job.key]['seconds']:.0f} s",
                file=sys.stderr,
                flush=True,
            )


def log_flops_strata(
    space: ss.Space, rng: np.random.Generator, count: int, pool_size: int = 5000
) -> list[ss.Arch]:
    """``count`` subnets stratified over FLOPs: bins equally spaced in log-FLOPs from the
    smallest subnet to the largest, one subnet drawn at random from each bin of a random pool
    (the pool's nearest unused subnet where a bin is empty); the smallest and largest subnets
    stand for the first and last bins."""
    pool = [ss.decode_genome(space, g) for g in ss.sample_genomes(space, rng, pool_size)]
    flops = np.log(np.array([space.flops(arch) for arch in pool], dtype=float))
    low, high = np.log(space.flops(space.smallest())), np.log(space.flops(space.largest()))
    edges = np.linspace(low, high, count + 1)
    chosen: list[ss.Arch] = [space.smallest()]
    used: set[int] = set()
    for index in range(1, count - 1):
        inside = np.flatnonzero((flops >= edges[index]) & (flops < edges[index + 1]))
        inside = np.array([i for i in inside if i not in used], dtype=int)
        if len(inside):
            pick = int(rng.choice(inside))
        else:
            centre = (edges[index] + edges[index + 1]) / 2
            order = np.argsort(np.abs(flops - centre))
            pick = int(next(i for i in order if i not in used))
        used.add(pick)
        chosen.append(pool[pick])
    chosen.append(space.largest())
    return chosen
