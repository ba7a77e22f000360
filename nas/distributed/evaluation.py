"""Accuracy of many subnets of a supernet (extract, batch-norm recalibration, validation), in
this process or fanned out as Ray tasks.

On Ray the supernet's weights, its space and the data set go into the object store once; each
task rebuilds the supernet from them and evaluates a chunk of subnets with
:func:`nas.train.evaluate`, so the scores are the ones local evaluation gives, in the same
order. Tasks take one CPU each (one GPU each with a cuda device).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from nas.data import Dataset
from nas.distributed.backend import Backend, connect, worker_count
from nas.supernet import Supernet
from nas.train.checkpoint import supernet_from_weights
from nas.train.evaluate import evaluate
from search_spaces import Arch, space_from_dict, space_to_dict

__all__ = ["evaluate_subnets"]

logger = logging.getLogger(__name__)
# Chunks per worker: fewer rebuilds of the supernet than one task per subnet, yet progress and
# load balance at a quarter of each worker's share.
_CHUNKS_PER_WORKER = 4


def evaluate_subnets(
    supernet: Supernet,
    archs: Sequence[Arch],
    dataset: Dataset,
    *,
    split: str = "val",
    seed: int = 0,
    device: str = "cpu",
    backend: Backend | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[float]:
    """:func:`nas.train.evaluate` of every arch (``split`` accuracy after batch-norm
    recalibration), in order; ``progress(done, total)`` after each one (each chunk on Ray)."""
    if backend is not None and backend.is_ray:
        return _evaluate_on_ray(supernet, archs, dataset, split, seed, device, backend, progress)
    scores = []
    for index, arch in enumerate(archs):
        scores.append(evaluate(supernet, arch, dataset, split=split, seed=seed, device=device))
        if progress is not None:
            progress(index + 1, len(archs))
    return scores


def _evaluate_chunk(
    shared: tuple[dict[str, Any], dict[str, torch.Tensor], Dataset],
    archs: list[dict[str, Any]],
    split: str,
    seed: int,
    device: str,
) -> list[float]:
    """A Ray task: the supernet rebuilt from the object store, ``archs`` evaluated on it."""
    space_dict, weights, dataset = shared
    supernet = supernet_from_weights(
        space_from_dict(space_dict), weights, device, where="the supernet sent to the Ray task"
    )
    return [
        evaluate(supernet, Arch.from_dict(arch), dataset, split=split, seed=seed, device=device)
        for arch in archs
    ]


def _evaluate_on_ray(
    supernet: Supernet,
    archs: Sequence[Arch],
    dataset: Dataset,
    split: str,
    seed: int,
    device: str,
    backend: Backend,
    progress: Callable[[int, int], None] | None,
) -> list[float]:
    ray = connect(backend)
    if not archs:
        return []
    gpu = torch.device(device).type == "cuda"
    workers = worker_count(ray, backend, gpu=gpu)
    weights = {name: value.detach().cpu() for name, value in supernet.state_dict().items()}
    shared = ray.put((space_to_dict(supernet.space), weights, dataset))
    size = max(1, math.ceil(len(archs) / (workers * _CHUNKS_PER_WORKER)))
    task = ray.remote(num_cpus=1, num_gpus=1 if gpu else 0, max_retries=2)(_evaluate_chunk)
    # At most `workers` tasks at once: submitted as earlier ones finish.
    pending_chunks = [
        (start, [arch.to_dict() for arch in archs[start : start + size]])
        for start in range(0, len(archs), size)
    ]
    running: dict[Any, tuple[int, int]] = {}
    scores: list[float | None] = [None] * len(archs)
    done = 0
    while pending_chunks or running:
        while pending_chunks and len(running) < workers:
            start, chunk = pending_chunks.pop(0)
            running[task.remote(shared, chunk, split, seed, device)] = (start, len(chunk))
        finished, _ = ray.wait(list(running), num_returns=1)
        for reference in finished:
            start, count = running.pop(reference)
            scores[start : start + count] = ray.get(reference)
            done += count
            if progress is not None:
                progress(done, len(archs))
    logger.info("evaluated %d subnets on Ray in chunks of %d", len(archs), size)
    return [float(score) for score in scores if score is not None]
