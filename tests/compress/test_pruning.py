from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import search_spaces as ss
from compress import (
    IMPORTANCES,
    count_flops,
    count_params,
    load_pruned,
    prune,
    prune_to_target,
    save_pruned,
)
from nas.errors import UserError
from nas.search.targets import parse_constraint
from nas.supernet.static import build_network
from tests.compress import models
from tests.compress.conftest import one_line


@pytest.mark.parametrize("name", sorted(models.FACTORIES))
def test_every_test_model_prunes_and_round_trips(
    name: str, example: torch.Tensor, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    model = models.FACTORIES[name]().eval()
    reference = model(example)
    pruned = prune(model, example, ratio=0.5).eval()
    assert count_params(pruned) < 0.6 * count_params(model)
    output = pruned(example)
    assert output.shape == reference.shape
    assert torch.isfinite(output).all()
    assert torch.equal(model(example), reference)  # the input model is left unchanged
    path = save_pruned(
        pruned, tmp_path / f"{name}.safetensors", factory=f"tests.compress.models:{name}"
    )
    assert (tmp_path / f"{name}.safetensors.json").is_file()
    reloaded = load_pruned(path)
    assert torch.equal(reloaded(example), output)


def test_searched_subnet_prunes_and_round_trips(tmp_path: Path) -> None:
    space = ss.get_space("tiny")
    arch = space.largest()
    torch.manual_seed(0)
    network = build_network(space, arch).eval()
    example = torch.randn(2, space.in_channels, arch.resolution, arch.resolution)
    pruned = prune(network, example, ratio=0.5).eval()
    assert count_params(pruned) < count_params(network)
    path = save_pruned(pruned, tmp_path / "subnet.safetensors", arch=arch, space=space)
    assert torch.equal(load_pruned(path)(example), pruned(example))


@pytest.mark.parametrize("importance", IMPORTANCES)
def test_each_importance_prunes(importance: str, example: torch.Tensor) -> None:
    torch.manual_seed(0)
    model = models.resnet_style().eval()
    calibration = (example, torch.tensor([1, 3]))
    pruned = prune(model, example, ratio=0.3, importance=importance, calibration=calibration)
    assert count_params(pruned) < count_params(model)
    assert pruned(example).shape == (2, models.NUM_CLASSES)


def test_taylor_needs_calibration(example: torch.Tensor) -> None:
    with pytest.raises(UserError, match="calibration") as info:
        prune(models.plain_cnn(), example, ratio=0.5, importance="taylor")
    one_line(info.value)


def test_taylor_takes_a_loss_for_per_pixel_outputs(example: torch.Tensor) -> None:
    labels = torch.randint(0, models.NUM_CLASSES, (2, models.RESOLUTION, models.RESOLUTION))
    pruned = prune(
        models.unet_style(),
        example,
        ratio=0.5,
        importance="taylor",
        calibration=[(example, labels)],
        loss_fn=nn.functional.cross_entropy,
    )
    assert pruned(example).shape == (2, models.NUM_CLASSES, models.RESOLUTION, models.RESOLUTION)


def test_global_pruning_round_to_and_iterative_steps(example: torch.Tensor) -> None:
    model = models.plain_cnn()
    pruned = prune(model, example, ratio=0.5, global_pruning=True, round_to=4, iterative_steps=2)
    for module in pruned.modules():
        if isinstance(module, nn.Conv2d):
            assert module.out_channels % 4 == 0
    assert count_params(pruned) < count_params(model)


def test_ignored_layers_by_module_or_name(example: torch.Tensor) -> None:
    model = models.plain_cnn()
    first = model.features[0][0]
    pruned = prune(model, example, ratio=0.5, ignored_layers=[first, "classifier"])
    assert pruned.features[0][0].out_channels == first.out_channels
    assert pruned.features[1][0].out_channels < model.features[1][0].out_channels


@pytest.mark.parametrize("ratio", [0, 1, -0.2, 1.5, float("nan"), True])
def test_ratio_outside_zero_one_is_refused(ratio: float, example: torch.Tensor) -> None:
    with pytest.raises(UserError, match="ratio") as info:
        prune(models.plain_cnn(), example, ratio=ratio)
    one_line(info.value)


def test_unknown_importance_is_refused(example: torch.Tensor) -> None:
    with pytest.raises(UserError, match="importance"):
        prune(models.plain_cnn(), example, ratio=0.5, importance="l3")


def test_untraceable_layer_is_named(example: torch.Tensor) -> None:
    with pytest.raises(UserError, match="'conv'") as info:
        prune(models.untraceable(), example, ratio=0.5)
    assert "autograd" in one_line(info.value)


def test_layer_broken_by_pruning_is_named(example: torch.Tensor) -> None:
    with pytest.raises(UserError, match="'fc'") as info:
        prune(models.hard_coded_reshape(), example, ratio=0.5)
    one_line(info.value)


def test_model_failing_on_the_example_is_named() -> None:
    wrong = torch.randn(2, 3, 16, 16)  # three channels for a one-channel model
    with pytest.raises(UserError, match=r"features\.0\.0") as info:
        prune(models.plain_cnn(), wrong, ratio=0.5)
    one_line(info.value)


def test_prune_to_target_reaches_a_flops_target(example: torch.Tensor) -> None:
    model = models.resnet_style().eval()
    flops = count_flops(model, example[:1])
    target = parse_constraint(f"flops<{flops * 0.5:.0f}")
    result = prune_to_target(model, example[:1], target, step=0.1)
    assert result.value < flops * 0.5
    assert count_flops(result.model, example[:1]) == result.value
    assert 0 < result.ratio < 0.9
    assert [ratio for ratio, _ in result.history] == sorted(r for r, _ in result.history)


def test_prune_to_target_refuses_what_pruning_cannot_do(example: torch.Tensor) -> None:
    model = models.plain_cnn()
    with pytest.raises(UserError, match="cannot be reached"):
        prune_to_target(model, example, parse_constraint("accuracy>0.9"))
    with pytest.raises(UserError, match="cannot reach") as info:
        prune_to_target(model, example, parse_constraint("params<10"), step=0.3)
    one_line(info.value)


def test_load_pruned_refuses_a_mismatched_factory(example: torch.Tensor, tmp_path: Path) -> None:
    pruned = prune(models.plain_cnn(), example, ratio=0.5)
    path = save_pruned(
        pruned, tmp_path / "p.safetensors", factory="tests.compress.models:plain_cnn"
    )
    with pytest.raises(UserError, match="another model") as info:
        load_pruned(path, factory="tests.compress.models:resnet_style")
    one_line(info.value)
    copy = tmp_path / "copy.safetensors"  # the weights without their description
    copy.write_bytes(path.read_bytes())
    with pytest.raises(UserError, match="no pruned-model description"):
        load_pruned(copy)
    with pytest.raises(UserError, match="does not exist"):
        load_pruned(tmp_path / "missing.safetensors")


def test_save_pruned_needs_a_way_to_rebuild(example: torch.Tensor, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="exactly one"):
        save_pruned(models.plain_cnn(), tmp_path / "x.safetensors")
    with pytest.raises(UserError, match="cannot be named"):
        save_pruned(models.plain_cnn(), tmp_path / "x.safetensors", factory=lambda: None)
    assert not (tmp_path / "x.safetensors").exists()


def test_layers_that_never_run_are_left_alone(example: torch.Tensor, tmp_path: Path) -> None:
    model = models.with_unused_head()
    pruned = prune(model, example, ratio=0.5)
    assert count_params(pruned.body) < count_params(model.body)
    assert pruned.aux.weight.shape == model.aux.weight.shape
    path = save_pruned(
        pruned, tmp_path / "aux.safetensors", factory="tests.compress.models:with_unused_head"
    )
    assert torch.equal(load_pruned(path)(example), pruned.eval()(example))
