"""Re-ranking by training alone: the last word on which verified subnet to deploy.

The supernet ranks subnets by inherited accuracy, and on Fashion-MNIST it rates some subnets
(wide, shallow, uniformly scaled ones) lower than training them alone does (README, "Search
against baselines"). When a few minutes more are worth a better choice, the search trains its
best candidates from scratch with one recipe and chooses by their validation accuracy:

- the ``count`` verified subnets that meet the targets with the best inherited validation
  accuracy (ties by the most multiply-adds), and
- the uniformly scaled network with the most multiply-adds among those verified to meet the
  targets (the obvious alternative a user would otherwise train), when there is one.

Each result is written to ``rerank.json`` in the run directory as it finishes, its weights to
``alone/NAME.safetensors`` beside it; a resumed search trains only what is missing (the same
recipe, seed and data, or everything again).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from nas.data import Dataset
from nas.distributed import Backend
from nas.distributed.standalone import StandaloneJob, train_subnets
from nas.files import atomic_write_bytes, atomic_write_json
from nas.search.verify import UNIFORM_INDEX, Verified
from nas.supernet.static import build_network
from nas.train import Recipe, load_checkpoint
from search_spaces import Arch, Space

__all__ = [
    "RERANK_FILE",
    "RerankConfig",
    "arch_key",
    "load_trained",
    "rerank",
    "rerank_candidates",
    "train_alone",
]

logger = logging.getLogger(__name__)
RERANK_FILE = "rerank.json"


@dataclass(frozen=True, kw_only=True)
class RerankConfig:
    """``count`` best candidates by inherited accuracy (0: no re-ranking), trained for
    ``epochs`` (None: the supernet's own recipe) from ``seed``."""

    count: int = 0
    epochs: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f"rerank count must be >= 0, got {self.count}")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"rerank epochs must be >= 1, got {self.epochs}")


def rerank_candidates(space: Space, verified: Sequence[Verified], count: int) -> list[Verified]:
    """What :func:`train_alone` trains: see the module's docstring. Each subnet once."""
    if count < 1:
        return []

    def flops(item: Verified) -> int:
        return space.flops(Arch.from_dict(item.arch))

    passing = [v for v in verified if v.meets_targets]
    ranked = sorted(passing, key=lambda v: (v.val_accuracy, flops(v)), reverse=True)
    picked: dict[str, Verified] = {}
    for item in ranked:
        if len(picked) == count:
            break
        picked.setdefault(arch_key(item), item)
    uniform = [v for v in passing if v.index == UNIFORM_INDEX]
    if uniform:
        widest = max(uniform, key=flops)
        picked.setdefault(arch_key(widest), widest)
    return list(picked.values())


def arch_key(item: Verified) -> str:
    """How the re-ranking names a verified subnet: its arch as JSON, keys sorted."""
    return json.dumps(item.arch, sort_keys=True)


def train_alone(
    space: Space,
    dataset: Dataset,
    recipe: Recipe,
    candidates: Sequence[Verified],
    directory: Path,
    *,
    seed: int,
    backend: Backend | None = None,
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Each candidate trained from scratch with ``recipe`` and ``seed`` and scored on the
    validation and test splits (in the candidates' order); results kept in
    ``directory/rerank.json``, so a second call trains only what the first did not finish."""
    path = directory / RERANK_FILE
    settings = {"recipe": asdict(recipe), "seed": seed, "data": dataset.name}
    state: dict[str, Any] = {"settings": settings, "results": {}}
    if path.exists():
        known = json.loads(path.read_text())
        if known.get("settings") == settings:
            state = known
        else:
            logger.info("%s holds trainings of other settings; training again", path)
    results: dict[str, Any] = state["results"]
    keys = [arch_key(item) for item in candidates]
    jobs = [
        StandaloneJob(key, Arch.from_dict(item.arch), seed, keep_weights=True)
        for key, item in zip(keys, candidates, strict=True)
        if key not in results
    ]
    done = len(keys) - len(jobs)
    if progress is not None:
        progress(done, len(keys))

    def record(job: StandaloneJob, result: dict[str, Any]) -> None:
        nonlocal done
        from safetensors.numpy import save

        name = f"alone/{hashlib.sha256(job.key.encode()).hexdigest()[:16]}.safetensors"
        (directory / "alone").mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(directory / name, save(result.pop("state")))
        results[job.key] = {"arch": job.arch.to_dict(), "weights": name, **result}
        atomic_write_json(path, state)
        done += 1
        logger.info(
            "trained alone %d/%d: val accuracy %.4f in %.0f s",
            done,
            len(keys),
            result["val_accuracy"],
            result["seconds"],
        )
        if progress is not None:
            progress(done, len(keys))

    train_subnets(space, dataset, recipe, jobs, record, backend=backend, device=device)
    return [results[key] for key in keys]


def load_trained(space: Space, result: dict[str, Any], directory: Path) -> torch.nn.Module:
    """The network a :func:`train_alone` result in ``directory`` names, with its weights."""
    from safetensors.torch import load_file

    network = build_network(space, Arch.from_dict(result["arch"]))
    network.load_state_dict(load_file(directory / result["weights"]))
    return network.eval()


def rerank(
    space: Space,
    dataset: Dataset,
    config: RerankConfig,
    verified: Sequence[Verified],
    supernet: Path,
    directory: Path,
    *,
    backend: Backend | None = None,
    device: str = "cpu",
    note: Callable[[str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """The re-ranked candidates' results from :func:`train_alone`, by :func:`arch_key`, with
    the recipe of the supernet in the directory ``supernet`` (``config.epochs`` replacing its
    epochs); empty when ``config.count`` is 0 or nothing meets the targets."""
    candidates = rerank_candidates(space, verified, config.count)
    if not candidates:
        return {}
    recipe = Recipe.from_checkpoint(load_checkpoint(supernet).metadata)
    if config.epochs is not None:
        recipe = replace(recipe, epochs=config.epochs)
    if note is not None:
        note(
            f"training {len(candidates)} candidates alone ({recipe.epochs} epochs each) to "
            "choose among them by validation accuracy"
        )
    results = train_alone(
        space,
        dataset,
        recipe,
        candidates,
        directory,
        seed=config.seed,
        backend=backend,
        device=device,
        progress=progress,
    )
    return {arch_key(c): r for c, r in zip(candidates, results, strict=True)}
