"""The model a search deploys: ONNX always, and OpenVINO IR too when it was measured there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import search_spaces as ss
from nas.data import load_dataset
from nas.measure import MeasureConfig
from nas.search import SearchConfig
from nas.search.run import SearchRequest, _export_chosen
from nas.search.targets import parse_constraints
from nas.search.verify import Verified
from nas.supernet import Supernet

pytest.importorskip("openvino")


def test_a_search_measured_on_openvino_also_writes_its_choice_as_openvino_ir(
    tmp_path: Path,
) -> None:
    space = ss.get_space("tiny")
    torch.manual_seed(0)
    supernet = Supernet(space).eval()
    data = load_dataset("digits", resolution=max(space.resolution.values), seed=0)
    chosen = Verified(
        index=0,
        arch=space.smallest().to_dict(),
        predicted={"latency_ms": 0.1},
        measured_latency_ms=0.1,
        latency_iqr_ms=0.01,
        val_accuracy=0.5,
        meets_targets=True,
        test_accuracy=0.25,
    )
    expected = {
        "onnxruntime": {"chosen.onnx"},
        "openvino": {"chosen.onnx", "chosen.xml", "chosen.bin"},
    }
    for runtime, files in expected.items():
        out = tmp_path / runtime
        out.mkdir()
        request = SearchRequest(
            space=space,
            dataset=data,
            constraints=parse_constraints(["latency<1s"]),
            measure=MeasureConfig(runtime=runtime),
            search=SearchConfig(),
            workdir=tmp_path,
            out=out,
        )
        assert _export_chosen(request, supernet, chosen, None) == out / "chosen.onnx"
        assert {p.name for p in out.iterdir() if p.suffix != ".json"} == files
    card = json.loads((tmp_path / "openvino" / "chosen.xml.json").read_text())
    assert card["format"] == "openvino" and card["test_accuracy"] == 0.25
    assert card["latency_settings"]["runtime"] == "openvino"
    assert card["openvino_config"] == {"INFERENCE_PRECISION_HINT": "f32"}
