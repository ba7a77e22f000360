"""A search run directory without a search: an untrained tiny supernet in ``ROOT/runs`` and a
``ROOT/search`` run whose chosen subnet is the smallest, for tests of what reads runs
(export, compress, rundir)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

import search_spaces as ss
from nas.supernet import Supernet
from nas.train import save_checkpoint

__all__ = ["fake_search_run"]


def fake_search_run(
    root: Path,
    front: list[dict[str, Any]] | None = None,
    *,
    space_name: str = "tiny",
    chosen: ss.Arch | None = None,
) -> Path:
    """The run directory of a search of ``space_name``; ``chosen`` defaults to the smallest
    subnet and ``front`` to the chosen subnet alone."""
    space = ss.get_space(space_name)
    torch.manual_seed(0)
    workdir = root / "runs"
    save_checkpoint(
        workdir / f"supernet-{space.name}",
        model=Supernet(space),
        optimizer=None,
        space=space,
        epoch=1,
        extra={},
    )
    run = root / "search"
    run.mkdir()
    settings = {"space": space.name, "workdir": str(workdir), "data": "digits", "seed": 0}
    (run / "search.json").write_text(json.dumps(settings))
    picked = (chosen or space.smallest()).to_dict()
    points = front if front is not None else [{"arch": picked}]
    (run / "pareto.json").write_text(json.dumps({"chosen": {"arch": picked}, "front": points}))
    return run
