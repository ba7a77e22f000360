"""Models that are not (N, classes) classifiers prune, fine-tune, quantize and compress.

Dense concatenation, grouped convolutions with channel shuffle, squeeze-excitation around
grouped convolutions, an encoder-decoder with skip connections and a per-pixel output on
4-channel non-square inputs, and a model with two outputs (dict and tuple): through the
library functions and through ``nas prune`` / ``nas quantize`` / ``nas compress``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from compress import count_params, finetune, load_pruned, output_layers, prune, save_pruned
from compress.cli import (
    add_compress_arguments,
    add_prune_arguments,
    add_quantize_arguments,
    run_compress,
    run_prune,
    run_quantize,
)
from compress.evaluation import compare_models
from compress.images import Images, random_images
from compress.io import load_data
from compress.outputs import output_distillation_loss, output_leaves, output_shapes
from compress.quantization import onnx_outputs, quantize_onnx
from nas.cli import main
from nas.data import Dataset
from nas.errors import UserError
from nas.files import file_digest
from nas.measure import MeasureConfig, export_onnx
from tests.compress import foreign_models as fm
from tests.compress.conftest import one_line

NAMES = sorted(fm.FACTORIES)
CLASSIFIERS = ("densenet_block", "shufflenet_style")  # (N, 10) logits: accuracy applies
FAST = ["--warmup", "1", "--repeats", "3", "--rounds", "1"]
MEASURE = MeasureConfig(warmup=1, repeats=3, rounds=1)


def _shape_text(name: str) -> str:
    return ",".join(map(str, fm.INPUT_SHAPES[name]))


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return fm.FACTORIES[name]().eval()


@pytest.fixture(scope="module")
def colour_digits() -> Dataset:
    return load_data("digits", 16, 0, 3)


def _data(name: str, colour_digits: Dataset) -> Dataset | Images:
    """Digits (in colour) where the input shape fits them, else random images."""
    shape = fm.INPUT_SHAPES[name]
    return colour_digits if shape == colour_digits.image_shape else random_images(shape, seed=0)


def _args(add: Callable[[argparse.ArgumentParser], None], argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add(parser)
    return parser.parse_args(argv)


def _state_dict(name: str, directory: Path) -> tuple[Path, str]:
    path = directory / f"{name}.pt"
    torch.save(_model(name).state_dict(), path)
    return path, f"tests.compress.foreign_models:{name}"


# ---------------------------------------------------------------------------------- library


@pytest.mark.parametrize("name", NAMES)
def test_library_prunes_and_reports(name: str, colour_digits: Dataset, tmp_path: Path) -> None:
    model = _model(name)
    data = _data(name, colour_digits)
    example = torch.as_tensor(data.x_train[:2])
    reference = output_shapes(model(example))
    pruned = prune(model, example, ratio=0.5).eval()
    assert count_params(pruned) < 0.75 * count_params(model)
    assert output_shapes(pruned(example)) == reference
    report = compare_models(model, pruned, data, measure=MEASURE)
    assert report.after.params < report.before.params
    assert report.after.macs < report.before.macs
    assert report.before.latency_ms > 0 and report.after.latency_ms > 0
    assert report.before.outputs == report.after.outputs
    if name in CLASSIFIERS:
        assert report.accuracy_note == "" and report.after.accuracy is not None
    else:
        assert report.before.accuracy is None and report.after.accuracy is None
        assert report.accuracy_note.startswith("not applicable: ")
    assert set(report.to_dict()) >= {"before", "after", "accuracy_note", "input_shape"}
    path = save_pruned(
        pruned,
        tmp_path / f"{name}.safetensors",
        factory=f"tests.compress.foreign_models:{name}",
        input_shape=fm.INPUT_SHAPES[name],
    )
    reloaded = load_pruned(path)
    assert type(reloaded) is type(model)
    again, expected = output_leaves(reloaded(example)), output_leaves(pruned(example))
    assert list(again) == list(expected)
    assert all(torch.equal(again[key], expected[key]) for key in expected)


def test_every_head_of_a_two_output_model_is_kept() -> None:
    model = _model("two_heads")
    example = torch.randn(2, *fm.INPUT_SHAPES["two_heads"])
    assert output_layers(model, example) == [model.classify, model.boxes[1]]
    pruned = prune(model, example, ratio=0.5)
    assert pruned.classify.out_features == fm.NUM_CLASSES
    assert pruned.classify.in_features < model.classify.in_features


@pytest.mark.parametrize("name", NAMES)
def test_taylor_importance_needs_no_labels(name: str) -> None:
    model = _model(name)
    images = torch.randn(4, *fm.INPUT_SHAPES[name])
    pruned = prune(model, images, ratio=0.4, importance="taylor", calibration=images)
    assert count_params(pruned) < count_params(model)
    assert output_shapes(pruned(images)) == output_shapes(model(images))
    assert all(p.grad is None for p in pruned.parameters())


@pytest.mark.parametrize("name", ["tiny_unet", "two_heads", "se_grouped"])
def test_finetuning_without_labels_distils_every_output(name: str) -> None:
    images = random_images(fm.INPUT_SHAPES[name], train=64, test=16, seed=1)
    teacher = _model(name)
    for module in teacher.modules():  # batch-norm statistics of these images, as if trained
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    with torch.no_grad():
        teacher.train()(torch.as_tensor(images.x_train))
    teacher.eval()
    student = prune(teacher, torch.as_tensor(images.x_train[:2]), ratio=0.5)
    test = torch.as_tensor(images.x_test)

    def gap() -> float:
        with torch.no_grad():
            return float(output_distillation_loss(student.eval()(test), teacher(test)))

    before = gap()
    finetune(student, images, epochs=3, lr=0.01, teacher=teacher, batch_size=16, seed=0)
    assert gap() < before
    with pytest.raises(UserError, match="no task loss") as info:
        finetune(student, images, epochs=1)
    assert "teacher" in one_line(info.value)


@pytest.mark.parametrize("name", ["tiny_unet", "two_heads", "two_heads_tuple"])
def test_onnx_export_and_int8_keep_every_output(name: str) -> None:
    model = _model(name)
    shape = fm.INPUT_SHAPES[name]
    graph = export_onnx(model, torch.zeros(1, *shape))
    names = [output.name for output in onnx.load_model_from_string(graph).graph.output]
    expected = {"tiny_unet": ["logits"], "two_heads": ["logits", "boxes"]}
    assert names == expected.get(name, ["output_0", "output_1"])
    images = random_images(shape, train=32, test=8, seed=0)
    quantized = quantize_onnx(graph, images.x_train, batch_size=8)
    outputs = onnx_outputs(quantized, images.x_test)
    with torch.no_grad():
        reference = output_shapes(model(torch.as_tensor(images.x_test)))
    assert [v.shape for v in outputs.values()] == list(reference.values())
    assert all(np.isfinite(v).all() for v in outputs.values())


def test_an_output_that_cannot_be_traced_is_one_line() -> None:
    with pytest.raises(UserError, match="ndarray, not a tensor") as info:
        prune(fm.numpy_output(), torch.randn(2, 3, 8, 8), ratio=0.5)
    one_line(info.value)


# ---------------------------------------------------------------------------------- CLI


@pytest.mark.parametrize("name", NAMES)
def test_nas_prune_a_state_dict(name: str, tmp_path: Path) -> None:
    path, factory = _state_dict(name, tmp_path)
    digest = file_digest(path)
    fits = fm.INPUT_SHAPES[name] == (3, 16, 16)
    data = ["--data", "digits"] if fits else ["--data", "random"]
    argv = [str(path), "--factory", factory, "--input-shape", _shape_text(name), *data, *FAST]
    assert run_prune(_args(add_prune_arguments, argv)) == 0
    assert file_digest(path) == digest
    out = tmp_path / f"{name}-pruned.safetensors"
    report = json.loads((tmp_path / f"{name}-pruned.report.json").read_text())
    before, after = report["before"], report["after"]
    for key in ("params", "macs", "latency_ms", "accuracy", "outputs"):
        assert key in before and key in after
    assert after["params"] < before["params"] and after["macs"] < before["macs"]
    assert report["input_shape"] == list(fm.INPUT_SHAPES[name])
    if name in CLASSIFIERS:
        assert report["accuracy_note"] == "" and after["accuracy"] is not None
    else:
        assert report["accuracy_note"].startswith("not applicable")
        assert after["accuracy"] is None
    model, reloaded = _model(name), load_pruned(out)
    example = torch.randn(2, *fm.INPUT_SHAPES[name])
    assert output_shapes(reloaded(example)) == output_shapes(model(example))
    graph = (tmp_path / f"{name}-pruned.onnx").read_bytes()
    assert len(onnx_outputs(graph, example.numpy())) == len(output_shapes(model(example)))


@pytest.mark.parametrize("name", ["tiny_unet", "two_heads"])
def test_nas_prune_a_pickled_model_with_finetuning(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / f"{name}.pth"
    torch.save(_model(name), path)
    data = "random" if name == "tiny_unet" else "digits"
    argv = ["prune", str(path), "--trust-checkpoint", "--input-shape", _shape_text(name)]
    argv += ["--data", data, "--finetune", "1", "--ratio", "0.4", *FAST]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "accuracy: not applicable: " in printed and "latency" in printed
    assert (tmp_path / f"{name}-pruned.onnx").is_file()  # no factory: ONNX only
    report = json.loads((tmp_path / f"{name}-pruned.report.json").read_text())
    assert report["settings"]["finetune_epochs"] == 1


def test_nas_prune_eval_none_and_shape_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, factory = _state_dict("densenet_block", tmp_path)
    argv = ["prune", str(path), "--factory", factory, "--data", "digits", "--eval", "none"]
    assert main([*argv, "--input-shape", "3,16,16", *FAST]) == 0
    assert "accuracy: not measured" in capsys.readouterr().out
    unet, unet_factory = _state_dict("tiny_unet", tmp_path)
    base = ["prune", str(unet), "--factory", unet_factory, *FAST]
    cases = [
        (["--input-shape", "4,16,24", "--data", "digits"], "--data random"),
        (["--input-shape", "4,16", "--data", "random"], "three positive integers"),
        (["--data", "digits"], "4x32x32 inputs"),  # channels from the first conv, 32 px
        (["--input-shape", "4,16,24", "--resolution", "8"], "contradicts"),
    ]
    for extra, match in cases:
        assert main([*base, *extra]) == 2
        error = capsys.readouterr().err.strip()
        assert match in error and error.count("\n") == 0, error
    numpy_model = tmp_path / "numpy.pth"
    torch.save(fm.numpy_output(), numpy_model)
    bad = ["prune", str(numpy_model), "--trust-checkpoint", "--data", "random", *FAST]
    assert main([*bad, "--input-shape", "3,8,8"]) == 2
    error = capsys.readouterr().err.strip()
    assert "not a tensor" in error and error.count("\n") == 0


@pytest.mark.parametrize("name", ["tiny_unet", "two_heads"])
def test_nas_quantize(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, factory = _state_dict(name, tmp_path)
    data = "random" if name == "tiny_unet" else "digits"
    out = tmp_path / "int8.onnx"
    argv = [str(path), "--factory", factory, "--input-shape", _shape_text(name)]
    argv += ["--calib", data, "--calib-batches", "2", "--batch-size", "16", "--out", str(out)]
    assert run_quantize(_args(add_quantize_arguments, argv)) == 0
    printed = capsys.readouterr().out
    assert "accuracy: not applicable" in printed and "differ from float by" in printed
    example = np.random.default_rng(0).standard_normal((3, *fm.INPUT_SHAPES[name]))
    outputs = onnx_outputs(out.read_bytes(), example.astype(np.float32))
    with torch.no_grad():
        expected = output_shapes(_model(name)(torch.as_tensor(example, dtype=torch.float32)))
    assert [v.shape for v in outputs.values()] == list(expected.values())


@pytest.mark.parametrize("name", ["tiny_unet", "two_heads"])
def test_nas_compress(name: str, tmp_path: Path) -> None:
    path, factory = _state_dict(name, tmp_path)
    data = "random" if name == "tiny_unet" else "digits"
    out = tmp_path / "report"
    argv = [str(path), "--factory", factory, "--input-shape", _shape_text(name)]
    argv += ["--data", data, "--finetune", "1", "--calib-batches", "1", "--out", str(out), *FAST]
    assert run_compress(_args(add_compress_arguments, argv)) == 0
    report = json.loads((out / "report.json").read_text())
    stages = report["stages"]
    assert [s["stage"] for s in stages] == ["original", "pruned", "int8"]
    assert all(s["accuracy"] is None for s in stages)
    assert report["settings"]["accuracy_note"].startswith("not applicable")
    assert stages[1]["params"] < stages[0]["params"]
    assert all(s["output_error"] is not None for s in stages[1:])
    assert "n/a" in (out / "report.md").read_text()
    assert load_pruned(out / "pruned.safetensors") is not None
