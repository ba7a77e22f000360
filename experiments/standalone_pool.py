"""Shared by the Fashion-MNIST experiments: subnets trained from scratch in parallel processes
or as Ray tasks (``--backend ray``), each result written to the experiment's results file as
soon as it is known (a killed run resumes where it stopped)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

import search_spaces as ss
from nas.data import Dataset
from nas.distributed import Backend
from nas.distributed.standalone import StandaloneJob, train_subnets
from nas.train import Recipe

__all__ = ["Job", "add_backend_arguments", "backend_of", "log_flops_strata", "run_jobs"]

Job = StandaloneJob


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """``--backend local|ray``, ``--address`` and ``--workers`` for the stand-alone trainings."""
    parser.add_argument(
        "--backend",
        default="local",
        choices=("local", "ray"),
        help="train the stand-alone subnets here (--processes at once) or as Ray tasks",
    )
    parser.add_argument("--address", help="Ray cluster to join (default: a private one)")
    parser.add_argument(
        "--workers", type=int, help="with --backend ray: trainings at once (default: every CPU)"
    )


def backend_of(args: argparse.Namespace) -> Backend:
    return Backend(kind=args.backend, address=args.address, workers=args.workers)


def run_jobs(
    space: ss.Space,
    dataset: Dataset,
    recipe: Recipe,
    jobs: Iterable[Job],
    done: dict[str, Any],
    save: Callable[[], None],
    *,
    processes: int,
    backend: Backend | None = None,
) -> None:
    """Train every job whose key is not in ``done`` (:func:`nas.distributed.train_subnets`:
    ``processes`` at a time here, or as Ray tasks); ``done[key]`` gets each result, then
    ``save()``."""
    todo = [job for job in jobs if job.key not in done]
    count = 0

    def record(job: Job, result: dict[str, Any]) -> None:
        nonlocal count
        count += 1
        done[job.key] = {"arch": job.arch.to_dict(), "seed": job.seed, **result}
        save()
        print(
            f"[{count}/{len(todo)}] {job.key}: test {result['test_accuracy']:.4f} "
            f"in {result['seconds']:.0f} s",
            file=sys.stderr,
            flush=True,
        )

    train_subnets(space, dataset, recipe, todo, record, backend=backend, processes=processes)


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
