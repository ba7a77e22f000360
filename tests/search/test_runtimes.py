"""``nas search --runtime a,b``: one search per runtime, the choice among their choices."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

import nas.search.runtimes
import search_spaces as ss
from nas.data import load_dataset
from nas.errors import NoSubnetMeets, UserError
from nas.measure import MeasureConfig
from nas.search import SearchConfig
from nas.search.run import SearchOutcome, SearchRequest
from nas.search.runtimes import CHOICE_FILE, runtime_requests, search_runtimes
from nas.search.targets import parse_constraints
from nas.search.verify import Verified

SPACE = ss.get_space("tiny")


class _Quiet:
    def note(self, message: str) -> None: ...

    def stage(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def _request(tmp_path: Path) -> SearchRequest:
    return SearchRequest(
        space=SPACE,
        dataset=load_dataset("digits", resolution=20, seed=0),
        constraints=parse_constraints(["latency<1s"]),
        measure=MeasureConfig(),
        search=SearchConfig(evaluations=100),
        workdir=tmp_path / "work",
        out=tmp_path / "out",
    )


def _verified(arch: ss.Arch, ms: float, val: float) -> Verified:
    return Verified(
        index=0,
        arch=arch.to_dict(),
        predicted={},
        measured_latency_ms=ms,
        latency_iqr_ms=0.0,
        val_accuracy=val,
        meets_targets=True,
        test_accuracy=val,
    )


def _fake_searches(
    monkeypatch: pytest.MonkeyPatch, choices: dict[str, Verified | None]
) -> list[str]:
    """``search`` replaced: each runtime's choice from ``choices`` (None: no subnet meets the
    targets there); returns the runtimes searched, in order."""
    searched: list[str] = []

    def fake(request: SearchRequest, reporter: Any) -> SearchOutcome:
        runtime = request.measure.runtime
        searched.append(runtime)
        chosen = choices[runtime]
        if chosen is None:
            raise NoSubnetMeets(f"no subnet of tiny meets latency<1s on {runtime}")
        model = request.out / "chosen.onnx"
        return SearchOutcome(result=None, verified=[chosen], chosen=chosen, margin=0.0, model=model)  # type: ignore[arg-type]

    monkeypatch.setattr(nas.search.runtimes, "search", fake)
    return searched


def test_one_subnet_on_two_runtimes_goes_to_the_faster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arch = SPACE.largest()
    searched = _fake_searches(
        monkeypatch,
        {"onnxruntime": _verified(arch, 2.0, 0.9), "openvino": _verified(arch, 1.5, 0.9)},
    )
    out = tmp_path / "out"
    requests = runtime_requests(_request(tmp_path), ["onnxruntime", "openvino"], out)
    assert [r.out for r in requests] == [out / "onnxruntime", out / "openvino"]
    assert [r.measure.runtime for r in requests] == ["onnxruntime", "openvino"]
    pooled = search_runtimes(requests, out, _Quiet())
    assert searched == ["onnxruntime", "openvino"]
    assert pooled.runtime == "openvino" and pooled.chosen.measured_latency_ms == 1.5
    choice = json.loads((out / CHOICE_FILE).read_text())
    assert choice["runtime"] == "openvino" and set(choice["choices"]) == {"onnxruntime", "openvino"}
    assert choice["model"] == str(out / "openvino" / "chosen.onnx")


def test_the_more_accurate_choice_wins_beyond_a_standard_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_searches(
        monkeypatch,
        {
            "onnxruntime": _verified(SPACE.largest(), 2.0, 0.95),
            "openvino": _verified(SPACE.smallest(), 0.5, 0.80),
        },
    )
    out = tmp_path / "out"
    requests = runtime_requests(_request(tmp_path), ["onnxruntime", "openvino"], out)
    assert search_runtimes(requests, out, _Quiet()).runtime == "onnxruntime"


def test_a_runtime_where_nothing_fits_is_skipped_and_none_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_searches(
        monkeypatch, {"onnxruntime": None, "openvino": _verified(SPACE.largest(), 1.0, 0.9)}
    )
    out = tmp_path / "out"
    requests = runtime_requests(_request(tmp_path), ["onnxruntime", "openvino"], out)
    pooled = search_runtimes(requests, out, _Quiet())
    assert pooled.runtime == "openvino" and "onnxruntime" in pooled.skipped
    assert "onnxruntime" in json.loads((out / CHOICE_FILE).read_text())["skipped"]

    _fake_searches(monkeypatch, {"onnxruntime": None, "openvino": None})
    out = tmp_path / "none"
    requests = runtime_requests(_request(tmp_path), ["onnxruntime", "openvino"], out)
    with pytest.raises(NoSubnetMeets, match="no runtime has a subnet"):
        search_runtimes(requests, out, _Quiet())
    assert not (out / CHOICE_FILE).exists()


def test_every_runtime_is_checked_before_the_first_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    searched = _fake_searches(monkeypatch, {"onnxruntime": None, "openvino": None})
    out = tmp_path / "out"
    request = _request(tmp_path)
    (out / "openvino" / "round-0").mkdir(parents=True)  # another search's run directory
    requests = runtime_requests(request, ["onnxruntime", "openvino"], out)
    with pytest.raises(UserError, match="already holds a search"):
        search_runtimes(requests, out, _Quiet())
    assert searched == []
    # resumed: only the run directory a search started in resumes
    resumed = runtime_requests(
        dataclasses.replace(request, resume=True), ["onnxruntime", "openvino"], out
    )
    assert [r.resume for r in resumed] == [False, True]
    with pytest.raises(UserError, match="each runtime once"):
        runtime_requests(request, ["onnxruntime", "onnxruntime"], out)
