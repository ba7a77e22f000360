"""Which latency predictor a search uses: the learned one for float spaces, and for spaces whose
stages may run in int8 the learned one or the operator table, whichever predicts held-out
profiled subnets better, chosen once per work directory and measurement settings."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import nas.measure.latency as latency_module
import nas.search.workdir as workdir_module
import search_spaces as ss
from nas.errors import UserError
from nas.measure import MeasureConfig
from nas.measure.latency import best_kind, latency_kind
from nas.predictors import Predictor, read_records, space_operators
from nas.search.run import _latency_note
from nas.search.workdir import (
    CHOICE_FILE,
    Workdir,
    ensure_latency_predictor,
    latency_choice,
    latency_predictor_kind,
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
