from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import search_spaces as ss
from compress import load_model, prune, read_state_dict, resolve_factory, save_pruned
from nas.errors import UserError
from nas.export import export_model
from nas.files import file_digest
from nas.measure import export_onnx
from nas.supernet import Supernet
from tests.compress import models
from tests.compress.conftest import one_line

FACTORY = "tests.compress.models:plain_cnn"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A subnet exported by `nas export --format safetensors` (weights plus card)."""
    space = ss.get_space("tiny")
    torch.manual_seed(0)
    supernet = Supernet(space).eval()
    path = tmp_path_factory.mktemp("bundle") / "point-000.safetensors"
    export_model(supernet, space, space.smallest(), path, fmt="safetensors", card={"point": 0})
    return path


def _fails(path: Path, match: str, **options: object) -> str:
    digest = file_digest(path) if path.is_file() else None
    with pytest.raises(UserError, match=match) as info:
        load_model(path, **options)  # type: ignore[arg-type]
    if digest is not None:
        assert file_digest(path) == digest  # never modified, even on failure
    return one_line(info.value)


def test_subnet_bundle_loads(bundle: Path) -> None:
    digest = file_digest(bundle)
    loaded = load_model(bundle)
    assert loaded.kind == "bundle" and loaded.arch is not None and loaded.space is not None
    assert loaded.input_shape == (1, loaded.arch.resolution, loaded.arch.resolution)
    assert loaded.module is not None
    assert loaded.module(torch.randn(1, *loaded.input_shape)).shape == (1, 10)
    assert file_digest(bundle) == digest


def test_bundle_without_its_card_is_explained(bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "lonely.safetensors"
    copy.write_bytes(bundle.read_bytes())
    _fails(copy, "without its card")


def test_state_dict_with_factory(state_dict_file: Path, tmp_path: Path) -> None:
    loaded = load_model(state_dict_file, factory=FACTORY)
    assert loaded.kind == "state_dict" and loaded.factory == FACTORY
    expected = torch.load(state_dict_file, weights_only=True)
    assert torch.equal(
        loaded.module.state_dict()["classifier.weight"], expected["classifier.weight"]
    )  # type: ignore[union-attr]
    tensors = tmp_path / "plain.safetensors"
    save_file(expected, str(tensors))
    by_file = load_model(tensors, factory="tests/compress/models.py:plain_cnn")
    assert by_file.kind == "state_dict"
    assert set(read_state_dict(tensors)) == set(expected)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"epoch": 3, "state_dict": expected}, wrapped)
    assert load_model(wrapped, factory=FACTORY).kind == "state_dict"


def test_state_dict_without_factory(state_dict_file: Path) -> None:
    _fails(state_dict_file, "--factory")


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        ("tests.compress.no_such_module:plain_cnn", "cannot import factory"),
        ("tests.compress.models:no_such_function", "has no"),
        ("tests/compress/missing.py:plain_cnn", "does not exist"),
        ("no_colon_here", "package.module:function"),
        ("tests.compress.models:not_a_model", "not a torch nn.Module"),
        ("tests.compress.models:broken_factory", "always fails"),
        ("tests.compress.models:IN_CHANNELS", "not callable"),
    ],
)
def test_bad_factories_are_named(state_dict_file: Path, factory: str, match: str) -> None:
    message = _fails(state_dict_file, match, factory=factory)
    assert factory.split(":")[0] in message or "factory" in message


def test_weight_mismatches_name_an_example(state_dict_file: Path, tmp_path: Path) -> None:
    state = torch.load(state_dict_file, weights_only=True)
    missing = dict(state)
    del missing["classifier.bias"]
    torch.save(missing, tmp_path / "missing.pt")
    assert "'classifier.bias'" in _fails(tmp_path / "missing.pt", "missing", factory=FACTORY)
    extra = {**state, "extra.weight": torch.zeros(1)}
    torch.save(extra, tmp_path / "extra.pt")
    assert "'extra.weight'" in _fails(tmp_path / "extra.pt", "unexpected", factory=FACTORY)
    wrong = {**state, "classifier.weight": torch.zeros(3, 3)}
    torch.save(wrong, tmp_path / "wrong.pt")
    message = _fails(tmp_path / "wrong.pt", "wrong shape", factory=FACTORY)
    assert "(3, 3)" in message and "(10, 32)" in message


def test_pickled_model_needs_trust(tmp_path: Path) -> None:
    path = tmp_path / "whole.pt"
    torch.save(models.plain_cnn(), path)
    _fails(path, "--trust-checkpoint")
    digest = file_digest(path)
    loaded = load_model(path, trust_checkpoint=True)
    assert loaded.kind == "pickle" and isinstance(loaded.module, models.PlainCNN)
    assert file_digest(path) == digest


def test_torchscript_loads_but_cannot_be_pruned(tmp_path: Path) -> None:
    path = tmp_path / "scripted.pt"
    model = models.plain_cnn().eval()
    torch.jit.save(torch.jit.trace(model, torch.randn(1, 1, 16, 16)), str(path))
    loaded = load_model(path)
    assert loaded.kind == "torchscript"
    with pytest.raises(UserError, match="TorchScript") as info:
        loaded.prunable_module("pruned")
    one_line(info.value)
    with pytest.raises(UserError, match="TorchScript"):
        prune(loaded.module, torch.randn(1, 1, 16, 16), ratio=0.5)  # type: ignore[arg-type]


def test_onnx_loads_and_bad_onnx_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(export_onnx(models.plain_cnn(), torch.randn(1, 1, 16, 16)))
    loaded = load_model(path)
    assert loaded.kind == "onnx" and loaded.input_shape == (1, 16, 16)
    with pytest.raises(UserError, match="ONNX"):
        loaded.torch_module("pruning")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"definitely not protobuf \x00\xff")
    _fails(bad, "not a valid ONNX model")


def test_files_that_are_not_models(tmp_path: Path) -> None:
    text = tmp_path / "notes.pt"
    text.write_text("hello, I am not a checkpoint")
    _fails(text, "not a model file")
    numbers = tmp_path / "numbers.pt"
    torch.save([1, 2, 3], numbers)
    _fails(numbers, "not a model")
    unknown = tmp_path / "model.xyz"
    unknown.write_bytes(b"\x01\x02\x03 random bytes")
    _fails(unknown, "unknown model format")
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"arch": {}}))
    _fails(card, "JSON file, not a model")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    _fails(broken, "safetensors", factory=FACTORY)
    _fails(tmp_path / "absent.pt", "does not exist")
    _fails(tmp_path, "is a directory")


def test_pruned_models_load_through_load_model(example: torch.Tensor, tmp_path: Path) -> None:
    pruned = prune(models.se_cnn(), example, ratio=0.5).eval()
    path = save_pruned(pruned, tmp_path / "se.safetensors", factory="tests.compress.models:se_cnn")
    loaded = load_model(path)
    assert loaded.kind == "pruned" and loaded.factory == "tests.compress.models:se_cnn"
    assert torch.equal(loaded.module(example), pruned(example))  # type: ignore[misc]


def test_resolve_factory_from_a_file() -> None:
    assert resolve_factory("tests/compress/models.py:resnet_style")().__class__.__name__ == (
        "ResNetStyle"
    )


def test_onnx_under_another_name_is_recognised(tmp_path: Path) -> None:
    path = tmp_path / "model.bin2"
    path.write_bytes(export_onnx(models.plain_cnn(), torch.randn(1, 1, 16, 16)))
    assert load_model(path).kind == "onnx"
