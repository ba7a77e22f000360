"""``nas train`` killed (SIGKILL) at several moments and resumed ends with the very weights of
an uninterrupted run: no epoch lost or run twice, no half-written checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from nas.cli import main
from tests.reliability.harness import check_files_whole, nas, stderr_shows

TRAIN = [
    "train",
    "--space",
    "tiny",
    "--data",
    "digits",
    "--epochs",
    "4",
    "--warmup",
    "1",
    "--images-per-epoch",
    "256",
    "--batch-size",
    "64",
    "--num-random",
    "1",
    "--threads",
    "1",
    "--seed",
    "0",
]


def _checkpoint(directory: Path) -> dict[str, object]:
    metadata: dict[str, object] = json.loads((directory / "checkpoint.json").read_text())
    return metadata


def _weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(directory / str(_checkpoint(directory)["weights"])))


def test_train_killed_twice_resumes_to_the_uninterrupted_weights(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    assert main([*TRAIN, "--out", str(reference)]) == 0

    out = tmp_path / "killed"
    args = [*TRAIN, "--out", str(out), "--resume"]
    # 1. early, mid-write: the first epoch's weights are on disk, its description not yet
    first = nas(args, tmp_path, tmp_path / "logs-1", pause_at="checkpoint.json:1")
    first.kill_at_pause()
    assert not (out / "checkpoint.json").exists()
    assert (out / "weights-0001.safetensors").exists()
    # 2. mid-epoch: during the third epoch's steps
    second = nas(args, tmp_path, tmp_path / "logs-2")
    second.kill_when(stderr_shows(second, "epoch 3:"), "the third epoch")
    assert _checkpoint(out)["epoch"] in (2, 3)
    # resume to the end
    nas(args, tmp_path, tmp_path / "logs-3").finish()

    assert check_files_whole(out) == []  # killed writers' temporary files are cleaned up
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.json",
        "optimizer-0004.safetensors",
        "weights-0004.safetensors",
    ]
    metadata, expected = _checkpoint(out), _checkpoint(reference)
    history = metadata["history"]
    assert isinstance(history, list) and [row["epoch"] for row in history] == [1, 2, 3, 4]
    strip = ("seconds",)
    assert [{k: v for k, v in row.items() if k not in strip} for row in history] == [
        {k: v for k, v in row.items() if k not in strip}
        for row in expected["history"]  # type: ignore[attr-defined]
    ]
    weights, reference_weights = _weights(out), _weights(reference)
    assert weights.keys() == reference_weights.keys()
    different = [k for k in weights if not torch.equal(weights[k], reference_weights[k])]
    assert different == []
