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


def fake_search_run(root: Path, front: list[dict[str, Any]] | None = None) -> Path:
    """The run directory; ``front`` defaults to the chosen (smallest) subnet alone."""
    space = ss.get_space("tiny")
    torch.manual_seed(0)
    workdir = root / "runs"
    save_checkpoint(
        workdir / "supernet-tiny",
        model=Supernet(space),
        optimizer=None,
        space=space,
        epoch=1,
        extra={},
    )
    run = root / "search"
    run.mkdir()
    settings = {"space": "tiny", "workdir": str(workdir), "data": "digits", "seed": 0}
    (run / "search.json").write_text(json.dumps(settings))
    smallest = space.smallest().to_dict()
    points = front if front is not None else [{"arch": smallest}]
    (run / "pareto.json").write_text(json.dumps({"chosen": {"arch": smallest}, "front": points}))
    return run
