"""nas export --format openvino: the IR runs each stage at its searched precision when
compiled with the hint its card names, float, int8 and bf16 points alike."""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import search_spaces as ss
from nas.errors import UserError
from nas.export import export_model
from nas.measure.timing import openvino_precision
from nas.supernet import Supernet
from tests.search_spaces.conftest import bf16_space, with_precisions

ov = pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def space() -> ss.Space:
    return bf16_space()


@pytest.fixture(scope="module")
def supernet(space: ss.Space) -> Supernet:
    torch.manual_seed(0)
    return Supernet(space).eval()


_with = with_precisions


def _compiled(path: Path) -> tuple[object, dict[str, object]]:
    card = json.loads(path.with_name(path.name + ".json").read_text())
    assert (path.parent / card["weights_file"]).exists()
    compiled = ov.Core().compile_model(str(path), "CPU", card["openvino_config"])
    return compiled, card


def _convolution_precisions(compiled: object) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():  # type: ignore[attr-defined]
        info = op.get_rt_info()
        if info["layerType"].astype(str) == "Convolution":
            counts[info["runtimePrecision"].astype(str)] += 1
    return counts


def test_a_float_point_runs_in_float32_as_torch_computes_it(
    space: ss.Space, supernet: Supernet, tmp_path: Path
) -> None:
    arch = _with(space.largest(), ["fp32"] * len(space.largest().stages))
    path = export_model(supernet, space, arch, tmp_path / "p.xml", fmt="openvino", card={})
    assert path.suffix == ".xml" and path.with_suffix(".bin").stat().st_size > 0
    compiled, card = _compiled(path)
    assert card["openvino_config"] == {"INFERENCE_PRECISION_HINT": "f32"}
    assert set(_convolution_precisions(compiled)) == {"f32"}
    x = torch.randn(4, space.in_channels, arch.resolution, arch.resolution)
    with torch.no_grad():
        expected = supernet.extract(arch).eval()(x).numpy()
    got = compiled(x.numpy())[0]  # type: ignore[operator]
    assert np.allclose(got, expected, atol=1e-4)
    # Measured with openvino-bf16 (the whole model in bf16), the card says so.
    again = export_model(
        supernet,
        space,
        arch,
        tmp_path / "h.xml",
        fmt="openvino",
        card={},
        openvino_precision=openvino_precision("openvino-bf16"),
    )
    assert _compiled(again)[1]["openvino_config"] == {"INFERENCE_PRECISION_HINT": "bf16"}
    assert openvino_precision("openvino") == openvino_precision("onnxruntime") == "f32"


def test_an_int8_point_runs_its_int8_stages_quantized(
    space: ss.Space, supernet: Supernet, tmp_path: Path
) -> None:
    from nas.data import load_dataset

    data = load_dataset("digits", resolution=max(space.resolution.values), seed=0)
    arch = _with(space.largest(), ["int8"] + ["fp32"] * (len(space.largest().stages) - 1))
    with pytest.raises(UserError, match="use --format onnx or openvino with the run's data"):
        export_model(supernet, space, arch, tmp_path / "q.xml", fmt="openvino", card={})
    assert not list(tmp_path.iterdir())
    path = export_model(
        supernet, space, arch, tmp_path / "q.xml", fmt="openvino", dataset=data, card={}
    )
    compiled, card = _compiled(path)
    assert card["openvino_config"] == {"INFERENCE_PRECISION_HINT": "f32"}
    precisions = _convolution_precisions(compiled)
    assert precisions["u8"] + precisions["i8"] > 0 and precisions["f32"] > 0
    assert set(precisions) <= {"u8", "i8", "f32"}


def test_a_bf16_point_runs_exactly_its_bf16_stages_in_bfloat16(
    space: ss.Space, supernet: Supernet, tmp_path: Path
) -> None:
    if "BF16" not in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        pytest.skip("needs a CPU with bfloat16 instructions")
    arch = _with(space.largest(), ["bf16"] + ["fp32"] * (len(space.largest().stages) - 1))
    bf16_blocks = len(ss.precision_blocks(space, arch, "bf16"))
    path = export_model(supernet, space, arch, tmp_path / "b.xml", fmt="openvino", card={})
    compiled, card = _compiled(path)
    assert card["openvino_config"] == {"INFERENCE_PRECISION_HINT": "bf16"}
    precisions = _convolution_precisions(compiled)
    assert 0 < precisions["bf16"] <= 3 * bf16_blocks and precisions["f32"] > 0
    assert set(precisions) == {"bf16", "f32"}


def test_without_openvino_the_export_says_how_to_install_it_and_writes_nothing(
    space: ss.Space, supernet: Supernet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(UserError, match=r"format openvino needs OpenVINO.*pip install"):
        export_model(supernet, space, space.largest(), tmp_path / "p.xml", fmt="openvino", card={})
    assert not list(tmp_path.iterdir())
