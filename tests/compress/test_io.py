"""What the compression commands share: input shape, data, output paths, saving."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from compress import load_model
from compress.checkpoint import LoadedModel
from compress.io import (
    DEFAULT_RESOLUTION,
    check_report_directory,
    load_data,
    model_channels,
    model_resolution,
    output_path,
    save_model,
)
from nas.errors import UserError
from tests.compress import models

FACTORY = "tests.compress.models:plain_cnn"


def test_channels_and_resolution_of_a_model(tmp_path: Path) -> None:
    module = models.plain_cnn()
    plain = LoadedModel(path=tmp_path / "m.pt", kind="module", module=module)
    assert model_channels(plain) == models.IN_CHANNELS
    assert model_resolution(plain, None) == DEFAULT_RESOLUTION
    assert model_resolution(plain, 24) == 24
    onnx = LoadedModel(path=tmp_path / "m.onnx", kind="onnx", input_shape=(3, 16, 16))
    assert model_channels(onnx) == 3 and model_resolution(onnx, None) == 16
    with pytest.raises(UserError, match="takes 16x16 inputs"):
        model_resolution(onnx, 24)
    assert model_channels(LoadedModel(path=tmp_path / "x", kind="onnx")) is None


def test_load_data_matches_the_channels() -> None:
    grey = load_data("digits", 12, 0, 1)
    assert grey.in_channels == 1 and grey.resolution == 12
    colour = load_data("digits", 12, 0, 3)
    assert colour.in_channels == 3


def test_output_paths_never_overwrite_an_input(tmp_path: Path) -> None:
    source = tmp_path / "model.safetensors"
    source.write_bytes(b"weights")
    (tmp_path / "model.safetensors.json").write_text("{}")
    assert output_path(None, source, "-pruned.safetensors", [source]) == (
        tmp_path / "model-pruned.safetensors"
    )
    with pytest.raises(UserError, match="overwrite the input"):
        output_path(str(source), source, "-pruned.safetensors", [source])
    report = tmp_path / "report"
    check_report_directory(report, source)
    with pytest.raises(UserError, match="overwrite the input"):
        check_report_directory(source, source)
    inside = report / "pruned.safetensors"
    inside.parent.mkdir()
    inside.write_bytes(b"weights")
    with pytest.raises(UserError, match="overwrite the input"):
        check_report_directory(report, inside)


def test_save_model_writes_weights_and_onnx(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = models.plain_cnn().eval()
    shape = (models.IN_CHANNELS, models.RESOLUTION, models.RESOLUTION)
    loaded = LoadedModel(path=tmp_path / "m.pt", kind="state_dict", module=module, factory=FACTORY)
    out = tmp_path / "out.safetensors"
    written = save_model(module, out, loaded, shape)
    assert written == [out, out.with_suffix(".onnx")]
    assert load_model(out).kind == "pruned"
    bare = LoadedModel(path=tmp_path / "m.pt", kind="module", module=module)
    assert save_model(module, tmp_path / "bare.safetensors", bare, shape) == [
        tmp_path / "bare.onnx"
    ]
