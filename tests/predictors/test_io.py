from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import search_spaces as ss
from nas.errors import UserError
from nas.measure import machine_info
from nas.measure.profiling import sample_for_coverage
from nas.predictors import (
    AccuracyPredictor,
    FlopsPredictor,
    LatencyTable,
    LearnedConfig,
    LearnedPredictor,
    MachineMismatchWarning,
    ParamsPredictor,
    Predictor,
    load_predictor,
    save_predictor,
)
from nas.testing.predictors import check_file_round_trip

from .conftest import Measured


def _fitted(space: ss.Space, measured: Measured) -> dict[str, Predictor]:
    archs = sample_for_coverage(space, np.random.default_rng(0), 24)
    y = np.array([0.03 + space.flops(a) / 1e6 for a in archs])
    accuracy = 0.4 + 0.1 * np.log(y)
    measured_y = np.array([r.median_ms for r in measured.arch_records])
    config = LearnedConfig(models=("ridge", "gbdt", "mlp"), folds=3, seed=3)
    return {
        "flops": FlopsPredictor(space).fit(archs, y),
        "params": ParamsPredictor(space),
        "learned": LearnedPredictor(space, config).fit(archs, y),
        "accuracy": AccuracyPredictor(space, config).fit(archs, accuracy),
        "latency_table": LatencyTable(space, measured.block_records).fit(
            measured.archs, measured_y
        ),
    }


def test_round_trip_gives_identical_predictions(
    tiny: ss.Space, measured: Measured, tmp_path: Path
) -> None:
    probe = measured.archs + sample_for_coverage(tiny, np.random.default_rng(9), 10)
    for kind, predictor in _fitted(tiny, measured).items():
        # the table only knows the operators of the measured subnets
        subset = measured.archs if kind == "latency_table" else probe
        check_file_round_trip(predictor, subset, tmp_path)  # the shipped suite's check
        data = json.loads((tmp_path / f"{kind}.json").read_text())
        assert data["kind"] == kind == predictor.kind
        assert data["space"]["name"] == "tiny"
        assert {"settings", "machine", "versions", "predictor"} <= set(data)
        if kind == "latency_table":
            assert data["settings"]["repeats"] == 3
    learned = json.loads((tmp_path / "learned.json").read_text())["predictor"]
    assert learned["hyper"]["config"]["seed"] == 3 and len(learned["train"]["y"]) == 24
    assert json.loads((tmp_path / "accuracy.json").read_text())["machine"] == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{kind}.json" for kind in ("flops", "params", "learned", "accuracy", "latency_table")
    )  # no temporary files left behind


def _saved(space: ss.Space, tmp_path: Path) -> Path:
    archs = sample_for_coverage(space, np.random.default_rng(0), 8)
    predictor = FlopsPredictor(space).fit(archs, [space.flops(a) / 1e6 for a in archs])
    return save_predictor(predictor, tmp_path / "flops.json")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a predictor file \\(not valid JSON"),
        ("", "not valid JSON"),
        ("[1, 2]", "not a predictor file"),
        ('{"format": "something-else"}', "not a predictor file"),
    ],
)
def test_bad_files(tmp_path: Path, content: str, message: str) -> None:
    file = tmp_path / "bad.json"
    file.write_text(content)
    with pytest.raises(UserError, match=message) as error:
        load_predictor(file)
    assert "\n" not in str(error.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read predictor file"):
        load_predictor(tmp_path / "absent.json")


def test_unknown_kind_and_corrupt_data(tiny: ss.Space, tmp_path: Path) -> None:
    file = _saved(tiny, tmp_path)
    data = json.loads(file.read_text())
    file.write_text(json.dumps({**data, "kind": "pickle"}))
    with pytest.raises(UserError, match="unknown predictor kind 'pickle'"):
        load_predictor(file)
    broken = json.loads(json.dumps(data))
    broken["predictor"]["train"]["y"] = broken["predictor"]["train"]["y"][:-1]
    file.write_text(json.dumps(broken))
    with pytest.raises(UserError, match="one target per arch"):
        load_predictor(file)
    del broken["predictor"]["train"]
    file.write_text(json.dumps(broken))
    with pytest.raises(UserError, match="is corrupt \\(KeyError"):
        load_predictor(file)
    file.write_text(file.read_text()[:100])  # cut short
    with pytest.raises(UserError, match="not valid JSON"):
        load_predictor(file)


def test_other_space_is_refused(tiny: ss.Space, tmp_path: Path) -> None:
    file = _saved(tiny, tmp_path)
    with pytest.raises(UserError, match="built for space 'tiny', not 'mbv3-small'"):
        load_predictor(file, ss.get_space("mbv3-small"))
    data = ss.space_to_dict(tiny)
    data["resolution"] = [16]
    changed = ss.space_from_dict(data)
    with pytest.raises(UserError, match="another definition of space 'tiny'"):
        load_predictor(file, changed)


def test_other_machine_warns_with_both_descriptions(tiny: ss.Space, tmp_path: Path) -> None:
    file = _saved(tiny, tmp_path)
    data = json.loads(file.read_text())
    data["machine"] = {**data["machine"], "cpu": "Imaginary CPU 9000", "logical_cores": 128}
    file.write_text(json.dumps(data))
    with pytest.warns(MachineMismatchWarning) as caught:
        predictor = load_predictor(file, tiny)
    message = str(caught[0].message)
    assert "Imaginary CPU 9000" in message and str(machine_info()["cpu"]) in message
    assert predictor.predict([tiny.smallest()]).shape == (1,)
