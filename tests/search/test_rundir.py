"""Reading a finished search's run directory: settings, front, subnets ready to compress, and
the front exported as deployable files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import search_spaces as ss
from nas.data import load_dataset
from nas.errors import UserError
from nas.search.rundir import (
    export_front,
    front_points,
    load_run_subnet,
    read_run,
    run_arch,
    select,
)
from nas.train import load_supernet, recalibrated
from tests.search.fake_run import fake_search_run

SPACE = ss.get_space("tiny")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A search run over an untrained tiny supernet: the smallest subnet chosen, two points."""
    smallest, largest = SPACE.smallest().to_dict(), SPACE.largest().to_dict()
    front = [
        {"point": 0, "arch": smallest, "predicted_accuracy": 0.5},
        {"point": 1, "arch": largest, "predicted_accuracy": 0.6},
    ]
    return fake_search_run(tmp_path_factory.mktemp("rundir"), front)


def test_read_run_and_front(run_dir: Path, tmp_path: Path) -> None:
    assert read_run(run_dir)["space"] == "tiny"
    rows = front_points(run_dir)
    assert [row["point"] for row in rows] == [0, 1]
    assert select(rows, "all") == rows
    assert select(rows, "1") == [rows[1]]
    with pytest.raises(UserError, match="not on the front"):
        select(rows, "0,5")
    with pytest.raises(UserError, match="comma-separated"):
        select(rows, "first")
    with pytest.raises(UserError, match="not a search run"):
        read_run(tmp_path)
    with pytest.raises(UserError, match=r"no pareto\.json"):
        front_points(tmp_path)


def test_run_arch_is_the_chosen_or_a_front_point(run_dir: Path) -> None:
    assert run_arch(run_dir) == SPACE.smallest()
    assert run_arch(run_dir, 1) == SPACE.largest()
    with pytest.raises(UserError, match="not on the front"):
        run_arch(run_dir, 2)


def test_load_run_subnet_recalibrates_the_subnet_and_its_teacher(run_dir: Path) -> None:
    subnet = load_run_subnet(run_dir, 1)
    assert subnet.arch == SPACE.largest() and subnet.space == SPACE
    assert (subnet.data, subnet.seed) == ("digits", 0)
    resolution = SPACE.largest().resolution
    assert subnet.input_shape == (SPACE.in_channels, resolution, resolution)
    assert not subnet.model.training and not subnet.teacher.training
    supernet, _ = load_supernet(run_dir.parent / "runs" / "supernet-tiny")
    dataset = load_dataset("digits", resolution=max(SPACE.resolution.values), seed=0)
    expected = recalibrated(supernet, SPACE.largest(), dataset, seed=0).eval()
    images = torch.as_tensor(dataset.x_test[:8])
    with torch.no_grad():
        torch.testing.assert_close(subnet.model(images), expected(images))
        torch.testing.assert_close(subnet.teacher(images), expected(images))
    chosen = load_run_subnet(run_dir, seed=3)
    assert chosen.arch == SPACE.smallest() and chosen.seed == 3


def test_load_run_subnet_refuses_a_bad_run(run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "search.json").write_text(json.dumps({"space": "nowhere", "workdir": "x"}))
    with pytest.raises(UserError, match="cannot read the search run"):
        load_run_subnet(tmp_path)
    (tmp_path / "search.json").write_text(json.dumps({"space": "tiny"}))
    with pytest.raises(UserError, match="does not name its space and workdir"):
        load_run_subnet(tmp_path)


def test_export_front_writes_models_cards_and_summaries(run_dir: Path, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    out = tmp_path / "export"
    written = export_front(
        run_dir, out, fmt="safetensors", points="1", progress=lambda *a: calls.append(a)
    )
    assert written == [out / "point-001.safetensors"]
    card = json.loads((out / "point-001.safetensors.json").read_text())
    assert card["arch"] == SPACE.largest().to_dict() and card["predicted_accuracy"] == 0.6
    assert (out / "pareto.json").read_bytes() == (run_dir / "pareto.json").read_bytes()
    assert calls == [(1, 1)]
    with pytest.raises(UserError, match="unknown format"):
        export_front(run_dir, out, fmt="tflite")
