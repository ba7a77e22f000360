from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import search_spaces as ss
from compress import load_model, load_pruned
from compress.cli import (
    add_compress_arguments,
    add_distill_arguments,
    add_prune_arguments,
    add_quantize_arguments,
    run_compress,
    run_distill,
    run_prune,
    run_quantize,
)
from nas.errors import UserError
from nas.export import export_model
from nas.files import file_digest
from nas.measure import export_onnx
from nas.supernet import Supernet
from tests.compress import models
from tests.compress.conftest import one_line
from tests.search.fake_run import fake_search_run

FACTORY = "tests.compress.models:plain_cnn"
FAST = ["--warmup", "1", "--repeats", "3"]


def _args(add: Callable[[argparse.ArgumentParser], None], argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add(parser)
    return parser.parse_args(argv)


def _fails(
    run: Callable[[argparse.Namespace], int],
    add: Callable[[argparse.ArgumentParser], None],
    argv: list[str],
    match: str,
) -> None:
    with pytest.raises(UserError, match=match) as info:
        run(_args(add, argv))
    one_line(info.value)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    space = ss.get_space("tiny")
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("bundle") / "point-000.safetensors"
    export_model(Supernet(space), space, space.smallest(), path, fmt="safetensors", card={})
    return path


def test_prune_a_state_dict_and_fine_tune(state_dict_file: Path, tmp_path: Path) -> None:
    digest = file_digest(state_dict_file)
    out = tmp_path / "pruned.safetensors"
    argv = [str(state_dict_file), "--factory", FACTORY, "--ratio", "0.5", "--resolution", "16"]
    code = run_prune(_args(add_prune_arguments, [*argv, "--finetune", "1", "--out", str(out)]))
    assert code == 0
    assert file_digest(state_dict_file) == digest
    description = json.loads((tmp_path / "pruned.safetensors.json").read_text())
    assert description["factory"] == FACTORY and description["input_shape"] == [1, 16, 16]
    model = load_pruned(out)
    assert model.features[0][0].out_channels == 8
    assert (tmp_path / "pruned.onnx").is_file()


def test_prune_a_subnet_bundle_to_a_target(bundle: Path, tmp_path: Path) -> None:
    digest = file_digest(bundle)
    out = tmp_path / "subnet.safetensors"
    argv = [str(bundle), "--target", "params<15K", "--importance", "l1", "--out", str(out)]
    assert run_prune(_args(add_prune_arguments, argv)) == 0
    assert file_digest(bundle) == digest
    loaded = load_model(out)
    assert loaded.kind == "pruned" and loaded.arch is not None
    assert sum(p.numel() for p in loaded.module.parameters()) < 15_000  # type: ignore[union-attr]


def test_prune_refuses_bad_input(state_dict_file: Path, tmp_path: Path) -> None:
    model = str(state_dict_file)
    pickled = tmp_path / "whole.pt"
    torch.save(models.plain_cnn(), pickled)
    digest = file_digest(pickled)
    _fails(run_prune, add_prune_arguments, [str(pickled)], "--trust-checkpoint")
    assert file_digest(pickled) == digest
    _fails(run_prune, add_prune_arguments, [model, "--factory", FACTORY, "--ratio", "1.2"], "ratio")
    _fails(run_prune, add_prune_arguments, [model], "--factory")
    _fails(run_prune, add_prune_arguments, [str(tmp_path / "nope.pt")], "does not exist")
    _fails(
        run_prune,
        add_prune_arguments,
        [model, "--factory", FACTORY, "--target", "accuracy>0.5", "--resolution", "16"],
        "cannot be reached",
    )
    _fails(
        run_prune,
        add_prune_arguments,
        [model, "--factory", FACTORY, "--out", model],
        "overwrite the input",
    )
    _fails(
        run_prune,
        add_prune_arguments,
        [model, "--factory", "tests.compress.models:missing"],
        "tests.compress.models:missing",
    )


def test_quantize_an_onnx_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "model.onnx"
    source.write_bytes(export_onnx(models.PlainCNN(width=32).eval(), torch.zeros(1, 1, 16, 16)))
    digest = file_digest(source)
    argv = [str(source), "--calib-batches", "2", "--batch-size", "16"]
    assert run_quantize(_args(add_quantize_arguments, argv)) == 0
    # what ONNX Runtime runs in float is named: here nothing (test_quantization: hard-swish)
    assert "every operator runs in int8 on ONNX Runtime;" in capsys.readouterr().out
    assert file_digest(source) == digest
    quantized = tmp_path / "model-int8.onnx"
    assert quantized.is_file() and quantized.stat().st_size < source.stat().st_size / 3
    _fails(
        run_quantize,
        add_quantize_arguments,
        [str(source), "--resolution", "8"],
        "does not fit",
    )


def _runs_int8_convolutions(xml: Path) -> bool:
    """Whether OpenVINO, compiled in f32, runs some convolution of the IR ``xml`` in int8."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return any(
        op.get_rt_info()["runtimePrecision"].astype(str) in ("u8", "i8")
        for op in compiled.get_runtime_model().get_ordered_ops()
        if op.get_rt_info()["layerType"].astype(str) == "Convolution"
    )


def test_quantize_to_openvino_ir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("openvino")
    source = tmp_path / "model.onnx"
    source.write_bytes(export_onnx(models.PlainCNN(width=32).eval(), torch.zeros(1, 1, 16, 16)))
    argv = [str(source), "--calib-batches", "2", "--batch-size", "16"]
    _fails(
        run_quantize,
        add_quantize_arguments,
        [*argv, "--format", "openvino-int8", "--out", str(tmp_path / "m.onnx")],
        "name the .xml file",
    )
    capsys.readouterr()
    argv += ["--format", "openvino-int8", "--runtime", "openvino", *FAST]
    assert run_quantize(_args(add_quantize_arguments, argv)) == 0
    assert " ms (" in (printed := capsys.readouterr().out) and "faster) on openvino" in printed
    assert "compile with {'INFERENCE_PRECISION_HINT': 'f32'}" in printed
    assert "int8 on ONNX Runtime" in printed and " on OpenVINO" in printed  # float layers named
    assert not (tmp_path / "model-int8.onnx").exists()
    xml, weights = tmp_path / "model-int8.xml", tmp_path / "model-int8.bin"
    assert weights.stat().st_size < source.stat().st_size / 3
    assert _runs_int8_convolutions(xml)


def test_quantize_refuses_openvino_options_without_openvino_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # import fails as if not installed
    source = tmp_path / "model.onnx"
    source.write_bytes(export_onnx(models.PlainCNN(width=8).eval(), torch.zeros(1, 1, 16, 16)))
    for option in (["--runtime", "openvino"], ["--format", "openvino-int8"]):
        _fails(run_quantize, add_quantize_arguments, [str(source), *option], "pip install")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_quantize_a_state_dict(state_dict_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "q.onnx"
    argv = [str(state_dict_file), "--factory", FACTORY, "--resolution", "16", "--out", str(out)]
    assert run_quantize(_args(add_quantize_arguments, [*argv, "--calib-batches", "1"])) == 0
    assert out.is_file()


def test_quantize_without_data_from_batch_norm(
    state_dict_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "q.onnx"
    argv = [str(state_dict_file), "--factory", FACTORY, "--resolution", "16", "--out", str(out)]
    argv += ["--calib", "batch-norm", "--calib-batches", "1", "--batch-size", "8"]
    assert run_quantize(_args(add_quantize_arguments, argv)) == 0
    printed = capsys.readouterr().out
    assert "on 8 images of batch-norm synthesis" in printed and "no labels" in printed
    assert out.is_file()
    onnx_file = tmp_path / "model.onnx"
    onnx_file.write_bytes(export_onnx(models.plain_cnn().eval(), torch.zeros(1, 1, 16, 16)))
    _fails(
        run_quantize,
        add_quantize_arguments,
        [str(onnx_file), "--calib", "batch-norm"],
        "ONNX model; data-free calibration",
    )
    _fails(
        run_quantize,
        add_quantize_arguments,
        [*argv, "--qat-epochs", "1"],
        "--qat-epochs needs labelled training images",
    )
    assert not (tmp_path / "model-int8.onnx").exists()


def test_quantize_fine_tunes_with_qat_where_ptq_loses_too_much(
    state_dict_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "q.onnx"
    argv = [str(state_dict_file), "--factory", FACTORY, "--resolution", "16", "--out", str(out)]
    argv += ["--calib", "digits", "--calib-batches", "1", "--qat-epochs", "1"]
    assert run_quantize(_args(add_quantize_arguments, [*argv, "--max-loss", "100"])) == 0
    assert "within --max-loss 100: no QAT" in capsys.readouterr().out
    _fails(run_quantize, add_quantize_arguments, [*argv, "--max-loss", "-1"], "--max-loss")
    _fails(run_quantize, add_quantize_arguments, [*argv, "--qat-lr", "0"], "--qat-lr")
    assert run_quantize(_args(add_quantize_arguments, argv)) == 0
    printed = capsys.readouterr().out
    assert "QAT (1 epochs)" in printed and "kept" in printed
    assert out.is_file()


def test_distill_a_fresh_student_from_a_teacher(state_dict_file: Path, tmp_path: Path) -> None:
    digest = file_digest(state_dict_file)
    out = tmp_path / "student.safetensors"
    argv = [
        "tests.compress.models:se_cnn",
        "--teacher",
        str(state_dict_file),
        "--teacher-factory",
        FACTORY,
        "--epochs",
        "1",
        "--resolution",
        "8",
        "--out",
        str(out),
    ]
    assert run_distill(_args(add_distill_arguments, argv)) == 0
    assert file_digest(state_dict_file) == digest
    assert isinstance(load_pruned(out), models.SECNN)
    _fails(
        run_distill,
        add_distill_arguments,
        [*argv[:5], "--alpha", "2"],
        "alpha",
    )


def test_compress_a_subnet_bundle(bundle: Path, tmp_path: Path) -> None:
    digest = file_digest(bundle)
    out = tmp_path / "report"
    argv = [str(bundle), "--finetune", "1", "--calib-batches", "2", "--out", str(out), *FAST]
    assert run_compress(_args(add_compress_arguments, argv)) == 0
    assert file_digest(bundle) == digest
    report = json.loads((out / "report.json").read_text())
    assert [s["stage"] for s in report["stages"]] == ["original", "pruned", "int8"]
    original, pruned, int8 = report["stages"]
    assert "on ONNX Runtime" in int8["note"] and "Conv" not in report["settings"]["float_operators"]
    assert pruned["params"] < original["params"] and pruned["flops"] < original["flops"]
    assert int8["flops"] == pruned["flops"] and int8["size_bytes"] > 0  # (tiny: names outweigh)
    assert "| int8 |" in (out / "report.md").read_text()
    assert (out / "report.png").read_bytes().startswith(b"\x89PNG")
    assert load_model(out / "pruned.safetensors").kind == "pruned"
    _fails(
        run_compress, add_compress_arguments, [str(bundle), "--distill-epochs", "2"], "--teacher"
    )
    _fails(run_compress, add_compress_arguments, [str(bundle), "--out", str(bundle)], "overwrite")
    pruned_input = str(out / "pruned.safetensors")
    _fails(run_compress, add_compress_arguments, [pruned_input, "--out", str(out)], "overwrite")


def test_compress_measured_on_openvino_writes_the_int8_model_as_openvino_ir_too(
    bundle: Path, tmp_path: Path
) -> None:
    pytest.importorskip("openvino")
    base = [str(bundle), "--finetune", "0", "--calib-batches", "2", *FAST]
    out = tmp_path / "report"
    argv = [*base, "--out", str(out), "--runtime", "openvino"]
    assert run_compress(_args(add_compress_arguments, argv)) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["measure"]["runtime"] == "openvino"
    assert report["files"]["int8_openvino"] == str(out / "int8.xml")
    assert report["settings"]["openvino_config"] == {"INFERENCE_PRECISION_HINT": "f32"}
    assert _runs_int8_convolutions(out / "int8.xml")  # the quantized graph, not the float one
    plain = tmp_path / "plain"
    assert run_compress(_args(add_compress_arguments, [*base, "--out", str(plain)])) == 0
    assert not (plain / "int8.xml").exists()


def test_compress_a_search_run(tmp_path: Path) -> None:
    run = fake_search_run(tmp_path)
    out = tmp_path / "compressed"
    argv = [str(run), "--finetune", "0", "--calib-batches", "1", "--out", str(out), *FAST]
    assert run_compress(_args(add_compress_arguments, argv)) == 0
    stages = [s["stage"] for s in json.loads((out / "report.json").read_text())["stages"]]
    assert stages == ["original", "distilled", "pruned", "int8"]
    _fails(run_compress, add_compress_arguments, [str(run), "--point", "7"], "not on the front")
    _fails(run_compress, add_compress_arguments, [str(tmp_path)], "not a search run")


def test_compress_keeps_the_searched_precision(tmp_path: Path) -> None:
    import dataclasses

    import onnx

    space = ss.get_space("mbv3-28-int8")
    smallest = space.smallest()  # every stage int8
    stages = (dataclasses.replace(smallest.stages[0], precision="fp32"), *smallest.stages[1:])
    arch = dataclasses.replace(smallest, stages=stages)
    torch.manual_seed(0)
    path = tmp_path / "point-000.safetensors"
    export_model(Supernet(space), space, arch, path, fmt="safetensors", card={})
    out = tmp_path / "report"
    argv = [str(path), "--finetune", "0", "--calib-batches", "1", "--out", str(out), *FAST]
    assert run_compress(_args(add_compress_arguments, argv)) == 0
    report = json.loads((out / "report.json").read_text())
    assert "only the searched int8 stages [1, 2, 3]" in report["stages"][-1]["note"]
    graph = onnx.load(str(out / "int8.onnx")).graph
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}

    def int8_convs(prefix: str) -> list[bool]:
        return [
            any(name in dequantized for name in n.input)
            for n in graph.node
            if n.op_type == "Conv" and n.name.startswith(prefix)
        ]

    assert int8_convs("/blocks/blocks.0/") and not any(int8_convs("/blocks/blocks.0/"))
    assert int8_convs("/blocks/blocks.1/") and all(int8_convs("/blocks/blocks.1/"))


def test_compress_a_searched_int8_point_of_a_run(tmp_path: Path) -> None:
    import dataclasses

    space = ss.get_space("mbv3-28-int8")
    smallest = space.smallest()
    stages = (dataclasses.replace(smallest.stages[0], precision="fp32"), *smallest.stages[1:])
    run = fake_search_run(
        tmp_path, space_name=space.name, chosen=dataclasses.replace(smallest, stages=stages)
    )
    out = tmp_path / "compressed"
    argv = [str(run), "--finetune", "0", "--calib-batches", "1", "--out", str(out), *FAST]
    assert run_compress(_args(add_compress_arguments, argv)) == 0
    report = json.loads((out / "report.json").read_text())
    assert "only the searched int8 stages [1, 2, 3]" in report["stages"][-1]["note"]
    assert load_model(out / "pruned.safetensors").kind == "pruned"
