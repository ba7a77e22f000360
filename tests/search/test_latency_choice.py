"""Which latency predictor a search uses: the learned one for float spaces, and for spaces whose
stages may run in int8 the learned one or the operator table, whichever predicts held-out
profiled subnets better, chosen once per work directory and measurement settings; and how the
subnets a search measured refit it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nas.measure.latency as latency_module
import nas.search.workdir as workdir_module
import search_spaces as ss
from nas.errors import UserError
from nas.measure import MeasureConfig
from nas.measure.latency import (
    VERIFIED_FILE,
    add_verified,
    best_kind,
    describe,
    latency_kind,
)
from nas.measure.profiling import settings_of
from nas.predictors import Predictor, read_records, space_operators
from nas.search.run import _accuracy_off, _latency_note, _next_round
from nas.search.verify import Verified
from nas.search.workdir import (
    CHOICE_FILE,
    Workdir,
    ensure_latency_predictor,
    latency_choice,
    latency_predictor_kind,
    refine_latency_predictor,
)
from tests.search_spaces.conftest import precision_space

FAST = MeasureConfig(warmup=1, repeats=3, rounds=1)


def _kind(predictor: Predictor) -> str:
    """The latency kind (as --latency-predictor names it) of a fitted predictor."""
    return latency_kind(predictor.kind)


def _with_int8(space: ss.Space) -> ss.Space:
    choice = ss.Choice(("fp32", "int8"))
    stages = tuple(dataclasses.replace(s, precision=choice) for s in space.stages)
    return dataclasses.replace(space, name=f"{space.name}-int8", stages=stages)


def test_auto_is_learned_for_float_spaces_and_best_where_int8_is_a_choice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tiny = ss.get_space("tiny")
    assert latency_predictor_kind(tiny) == "learned"
    assert latency_predictor_kind(_with_int8(tiny)) == "best"
    assert latency_predictor_kind(_with_int8(tiny), "table") == "table"
    monkeypatch.setattr(workdir_module, "MAX_AUTO_OPERATORS", 100)  # too many to profile
    assert latency_predictor_kind(_with_int8(tiny)) == "learned"
    assert latency_predictor_kind(tiny, "learned") == "learned"
    with pytest.raises(UserError, match="unknown latency predictor 'lookup'"):
        latency_predictor_kind(tiny, "lookup")


def _scores(within: float, error: float) -> dict[str, float]:
    return {"within_tolerance": within, "mean_abs_rel_error": error, "kendall_tau": 0.5}


@pytest.mark.parametrize(
    ("learned", "table", "expected"),
    [
        (_scores(0.8, 0.05), _scores(0.9, 0.07), "table"),  # more within 10% wins
        (_scores(0.9, 0.07), _scores(0.8, 0.05), "learned"),
        (_scores(0.8, 0.06), _scores(0.8, 0.04), "table"),  # a tie: the smaller error
        (_scores(0.8, 0.04), _scores(0.8, 0.04), "learned"),  # all equal: the first kind
    ],
)
def test_best_kind_prefers_more_within_tolerance_then_less_error(
    monkeypatch: pytest.MonkeyPatch,
    learned: dict[str, float],
    table: dict[str, float],
    expected: str,
) -> None:
    monkeypatch.setattr(
        latency_module, "report", lambda *a, **k: {"learned": learned, "table": table}
    )
    chosen, scores = best_kind(ss.get_space("tiny"), "unused")
    assert chosen == expected and set(scores) == {"learned", "table"}


def test_best_kind_without_any_fittable_kind_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(latency_module, "report", lambda *a, **k: {})
    with pytest.raises(UserError, match="none of learned, table can be fitted"):
        best_kind(ss.get_space("tiny"), "somewhere")


def test_an_int8_space_profiles_operators_chooses_once_and_reuses_the_choice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    space = precision_space()  # a first stage in fp32 or int8; 109 operators in all
    workdir = Workdir(tmp_path, space.name)
    predictor = ensure_latency_predictor(space, FAST, workdir, subnets=10, seed=0)
    choice = latency_choice(workdir, FAST)
    assert choice is not None and _kind(predictor) == choice["kind"]
    assert set(choice["scores"]) == {"learned", "table"}  # both were fitted and judged
    folder = workdir.latency / "onnxruntime-t1-b1"
    assert (folder / f"latency-{choice['kind']}.json").exists()
    # Every operator of the space was profiled: the table knows any subnet a search meets.
    assert {r.key for r in read_records(folder / "blocks.jsonl")} >= {
        op.key for op in space_operators(space)
    }
    # What chose it is scored as best_kind scores it, on the same held-out quarter.
    again, scores = best_kind(space, folder, seed=0)
    assert again == choice["kind"] and scores == choice["scores"]

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("profiled again")

    monkeypatch.setattr(workdir_module, "profile", refuse)
    assert _kind(ensure_latency_predictor(space, FAST, workdir, subnets=10)) == choice["kind"]
    # Other measurement settings are profiled and chosen for anew.
    other = dataclasses.replace(FAST, repeats=4)
    assert latency_choice(workdir, other) is None
    with pytest.raises(AssertionError, match="profiled again"):
        ensure_latency_predictor(space, other, workdir, subnets=10)


def test_a_float_space_keeps_the_learned_predictor_without_operators(tmp_path: Path) -> None:
    space = ss.get_space("tiny")
    workdir = Workdir(tmp_path, space.name)
    assert ensure_latency_predictor(space, FAST, workdir, subnets=10).kind == "learned"
    folder = workdir.latency / "onnxruntime-t1-b1"
    assert not (folder / "blocks.jsonl").exists() and not (folder / CHOICE_FILE).exists()
    assert latency_choice(workdir, FAST) is None


def test_a_damaged_choice_file_is_chosen_again(tmp_path: Path) -> None:
    space = precision_space()
    workdir = Workdir(tmp_path, space.name)
    ensure_latency_predictor(space, FAST, workdir, subnets=10)
    file = workdir.latency / "onnxruntime-t1-b1" / CHOICE_FILE
    file.write_text("{not json")
    assert latency_choice(workdir, FAST) is None
    predictor = ensure_latency_predictor(space, FAST, workdir, subnets=10)
    assert json.loads(file.read_text())["kind"] == _kind(predictor)


def test_the_search_names_the_predictor_and_what_it_was_chosen_by() -> None:
    scores = {"learned": _scores(0.6, 0.12), "table": _scores(0.8, 0.06)}
    line = _latency_note("latency_table", {"kind": "table", "scores": scores})
    assert line == (
        "latency predictor: operator lookup table, the better on held-out profiled subnets "
        "(within 10%: learned regressor 60%, operator lookup table 80%)"
    )
    assert _latency_note("learned", None) == "latency predictor: learned regressor"


def test_subnets_a_search_measured_are_kept_and_refit_the_predictor(tmp_path: Path) -> None:
    space = precision_space()
    workdir = Workdir(tmp_path, space.name)
    predictor = ensure_latency_predictor(space, FAST, workdir, subnets=10, seed=0)
    folder = workdir.latency / "onnxruntime-t1-b1"
    profiled = {r.key for r in read_records(folder / "measurements.jsonl")}
    rng = np.random.default_rng(5)
    archs = [a for a in (space.sample(rng) for _ in range(60)) if a.to_json() not in profiled][:4]
    before = predictor.predict(archs)
    slow = [(3.0 * ms, 0.01) for ms in before]  # three times slower than predicted
    refit = refine_latency_predictor(space, predictor, FAST, workdir, archs[:3], slow[:3])
    records = read_records(folder / VERIFIED_FILE)
    assert [r.key for r in records] == [a.to_json() for a in archs[:3]]
    assert records[0].median_ms == slow[0][0] and records[0].settings == settings_of(FAST)
    assert refit is not predictor
    # Nothing new measured: nothing kept again, nothing refit.
    assert refine_latency_predictor(space, refit, FAST, workdir, archs[:3], slow[:3]) is refit
    refit = refine_latency_predictor(space, refit, FAST, workdir, archs, slow)
    assert len(read_records(folder / VERIFIED_FILE)) == len(archs)  # each subnet kept once
    assert (refit.predict(archs) > 1.15 * before).all()  # pulled towards what was measured
    # The next search starts from the refit predictor.
    again = ensure_latency_predictor(space, FAST, workdir, subnets=10, seed=0)
    assert again.predict(archs) == pytest.approx(refit.predict(archs))
    if _kind(refit) == "table":  # the four weigh as much as the ten profiled subnets
        assert refit.to_dict()["train"]["weight"][-4:] == [2.5] * 4
        lines = describe(folder / "latency-table.json")
        assert any(line.startswith("scale       ") for line in lines)  # 14 subnets: a line


def test_a_verified_subnet_of_other_settings_is_not_used(tmp_path: Path) -> None:
    space = precision_space()
    folder = tmp_path / "profile"
    arch = space.largest()
    add_verified(space, folder, [arch], [(1.0, 0.1)], settings_of(FAST))
    other = settings_of(dataclasses.replace(FAST, batch_size=8))
    assert add_verified(space, folder, [arch], [(2.0, 0.1)], other) == 1  # other settings
    assert add_verified(space, folder, [arch], [(3.0, 0.1)], other) == 0  # already there
    kept = read_records(folder / VERIFIED_FILE)
    assert [(r.median_ms, r.settings["batch_size"]) for r in kept] == [(1.0, 1), (2.0, 8)]


def _measured(predicted: dict[str, float], latency: float = 1.0, accuracy: float = 0.5) -> Verified:
    """A subnet a search measured: its predictions, measured latency and validation accuracy."""
    return Verified(
        index=0,
        arch={},
        predicted=predicted,
        measured_latency_ms=latency,
        latency_iqr_ms=0.0,
        val_accuracy=accuracy,
        meets_targets=False,
    )


def test_the_search_says_why_it_runs_again() -> None:
    def point(predicted: float, measured: float) -> Verified:
        return _measured({"latency": predicted}, latency=measured)

    notes: list[str] = []

    class Notes:
        def note(self, text: str) -> None:
            notes.append(text)

    reporter: Any = Notes()
    slow = [point(1.0, 1.2), point(1.0, 1.3), point(1.0, 1.0)]
    # None met: the bound is tightened by the worst error seen.
    margin = _next_round(reporter, slow, 0.0, None, latency_ok=False)
    assert margin == pytest.approx(1 - 1 / 1.3 + 0.02)
    assert len(notes) == 1 and "tightening the predicted latency bound by 25%" in notes[0]
    notes.clear()
    assert _next_round(reporter, slow, 0.1, "off by up to 4.0%", latency_ok=True) == 0.1
    assert notes == [
        "predicted accuracy was off by up to 4.0% on the measured subnets; refitted the "
        "accuracy predictor with them; searching again"
    ]


def test_the_search_refits_the_accuracy_predictor_when_off_or_biased() -> None:
    def point(predicted: float, measured: float) -> Verified:
        return _measured({"accuracy": predicted}, accuracy=measured)

    assert _accuracy_off([point(0.88, 0.875), point(0.88, 0.885), point(0.88, 0.878)]) is None
    assert _accuracy_off([point(0.90, 0.86), point(0.88, 0.88)]) == "off by up to 4.0%"
    high = [point(0.88, 0.865), point(0.88, 0.86), point(0.88, 0.88)]  # 1.5 points at the median
    assert _accuracy_off(high) == "1.5% too high at the median"
    low = [point(0.86, 0.875), point(0.86, 0.88), point(0.86, 0.86)]
    assert _accuracy_off(low) == "1.5% too low at the median"
    assert _accuracy_off([]) is None
