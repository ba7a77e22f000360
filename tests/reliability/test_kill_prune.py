"""``nas prune --finetune`` killed (SIGKILL) while fine-tuning and while writing its outputs,
and run again: the outputs are whole and equal, tensor for tensor, to those of an
uninterrupted run (pruning and fine-tuning are fixed by the seed)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from nas.cli import main
from tests.compress import models
from tests.reliability.harness import check_files_whole, nas, stderr_shows


def prune_args(model: Path, out: Path) -> list[str]:
    return [
        "prune",
        str(model),
        "--factory",
        "tests.compress.models:plain_cnn",
        "--ratio",
        "0.5",
        "--resolution",
        "16",
        "--finetune",
        "4",
        "--data",
        "digits",
        "--seed",
        "0",
        "--threads",
        "1",
        "--out",
        str(out),
    ]


def test_prune_killed_twice_then_rerun_writes_the_uninterrupted_model(
    tmp_path: Path,
) -> None:
    torch.manual_seed(0)
    model = tmp_path / "plain.pt"
    torch.save(models.plain_cnn().state_dict(), model)
    reference = tmp_path / "reference" / "pruned.safetensors"
    reference.parent.mkdir()
    assert main(prune_args(model, reference)) == 0

    out = tmp_path / "out" / "pruned.safetensors"
    out.parent.mkdir()
    args = prune_args(model, out)
    # 1. while fine-tuning
    first = nas(args, tmp_path, tmp_path / "logs-1")
    first.kill_when(stderr_shows(first, "fine-tuning:"), "fine-tuning")
    assert list(out.parent.iterdir()) == []
    # 2. mid-write: the weights are written, their description is being written
    second = nas(args, tmp_path, tmp_path / "logs-2", pause_at=f"{out.name}.json:1")
    second.kill_at_pause()
    assert out.exists() and not out.with_name(f"{out.name}.json").exists()
    nas(args, tmp_path, tmp_path / "logs-3").finish()

    assert check_files_whole(out.parent) == []
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(
        p.name for p in reference.parent.iterdir()
    )
    weights, expected = load_file(str(out)), load_file(str(reference))
    assert weights.keys() == expected.keys()
    assert [k for k in weights if not torch.equal(weights[k], expected[k])] == []
    description = json.loads(out.with_name(out.name + ".json").read_text())
    assert description == json.loads(reference.with_name(reference.name + ".json").read_text())
