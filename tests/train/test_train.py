from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import search_spaces as ss
from nas.data import Dataset, load_dataset
from nas.errors import UserError
from nas.train import (
    EpochResult,
    StepResult,
    TrainConfig,
    accuracy,
    cross_entropy,
    evaluate,
    load_checkpoint,
    load_supernet,
    make_schedule,
    recalibrate_batch_norm,
    recalibrated,
    train_supernet,
)


@pytest.fixture(scope="module")
def small_digits() -> Dataset:
    data = load_dataset("digits", resolution=20, seed=0)
    return dataclasses.replace(data, x_train=data.x_train[:512], y_train=data.y_train[:512])


@pytest.fixture(autouse=True)
def one_thread():  # type: ignore[no-untyped-def]
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


SPACE = ss.get_space("tiny")
CONFIG = TrainConfig(batch_size=64, num_random=1, calibration_size=64, threads=1)


def _schedule():  # type: ignore[no-untyped-def]
    return make_schedule("all", epochs=3, lr=0.1, warmup=1)


class _Kill(Exception):
    """Stands for the process being killed."""


def test_schedules_are_data() -> None:
    schedule = make_schedule("progressive", epochs=10, lr=0.05, warmup=2)
    assert [p.name for p in schedule.phases] == ["full", "kernel", "depth", "width", "pyramid"]
    assert schedule.total_epochs == 10
    assert schedule.phases[0].elastic == frozenset()
    assert schedule.phases[1].elastic == {"kernel_size", "block_type", "se", "activation"}
    assert schedule.phases[-1].elastic == set(ss.DIMENSIONS)
    assert [p.reorder_channels for p in schedule.phases] == [False, False, False, True, False]
    assert schedule.phase_at(0) == (schedule.phases[0], 0)
    assert schedule.phase_at(9)[0].name == "pyramid"
    assert type(schedule).from_dict(json.loads(json.dumps(schedule.to_dict()))) == schedule
    with pytest.raises(UserError, match="at least 6 epochs"):
        make_schedule("progressive", epochs=5, lr=0.1, warmup=2)
    with pytest.raises(UserError, match="unknown schedule"):
        make_schedule("cyclic", epochs=5, lr=0.1)


def test_training_learns_checkpoints_and_reports(tmp_path: Path, small_digits: Dataset) -> None:
    steps: list[StepResult] = []
    epochs: list[EpochResult] = []
    supernet = train_supernet(
        SPACE,
        small_digits,
        _schedule(),
        CONFIG,
        tmp_path / "run",
        on_step=steps.append,
        on_epoch=epochs.append,
    )
    assert [e.epoch for e in epochs] == [1, 2, 3]
    assert [e.phase for e in epochs] == ["full", "all", "all"]
    assert len(steps) == 3 * 8 and steps[-1].step == steps[-1].steps == 8
    assert epochs[-1].largest_accuracy > 0.5  # ten classes: chance is 0.1
    checkpoint = load_checkpoint(tmp_path / "run")
    assert checkpoint.epoch == 3 and len(checkpoint.metadata["history"]) == 3
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert files == ["checkpoint.json", "optimizer-0003.safetensors", "weights-0003.safetensors"]
    loaded, _ = load_supernet(tmp_path / "run")
    weights = load_file(str(tmp_path / "run" / "weights-0003.safetensors"))
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, weights[key])
    x = torch.as_tensor(small_digits.x_val[:8])
    supernet.set_max()
    assert torch.allclose(loaded(x), supernet.eval()(x))


def _final_weights(directory: Path) -> dict[str, torch.Tensor]:
    checkpoint = load_checkpoint(directory)
    return checkpoint.weights()


@pytest.mark.parametrize("kill_at", ["epoch", "step"])
def test_killed_run_resumes_to_the_same_weights(
    tmp_path: Path, small_digits: Dataset, kill_at: str
) -> None:
    train_supernet(SPACE, small_digits, _schedule(), CONFIG, tmp_path / "straight")

    def kill_after_epoch(result: EpochResult) -> None:
        if result.epoch == 2:
            raise _Kill

    def kill_mid_epoch(step: StepResult) -> None:
        if step.epoch == 2 and step.step == 2:  # third epoch, second step
            raise _Kill

    with pytest.raises(_Kill):
        train_supernet(
            SPACE,
            small_digits,
            _schedule(),
            CONFIG,
            tmp_path / "killed",
            on_epoch=kill_after_epoch if kill_at == "epoch" else None,
            on_step=kill_mid_epoch if kill_at == "step" else None,
        )
    assert load_checkpoint(tmp_path / "killed").epoch == 2
    train_supernet(SPACE, small_digits, _schedule(), CONFIG, tmp_path / "killed", resume=True)
    straight, resumed = _final_weights(tmp_path / "straight"), _final_weights(tmp_path / "killed")
    assert load_checkpoint(tmp_path / "killed").epoch == 3
    for key in straight:
        assert torch.allclose(straight[key], resumed[key], atol=1e-6), key


def test_channels_last_is_only_a_layout(tmp_path: Path, small_digits: Dataset) -> None:
    schedule = make_schedule("all", epochs=1, lr=0.1)
    losses: dict[str, list[float]] = {"nhwc": [], "nchw": []}
    nhwc = train_supernet(
        SPACE,
        small_digits,
        schedule,
        CONFIG,
        tmp_path / "nhwc",
        on_step=lambda step: losses["nhwc"].append(step.loss),
    )
    nchw_config = dataclasses.replace(CONFIG, channels_last=False)
    nchw = train_supernet(
        SPACE,
        small_digits,
        schedule,
        nchw_config,
        tmp_path / "nchw",
        on_step=lambda step: losses["nchw"].append(step.loss),
    )
    assert nhwc.stem[0].weight.is_contiguous()  # handed back in the usual layout
    # the first step sees the same weights: the same loss up to float rounding; later steps
    # amplify rounding differences, but the runs stay close
    assert losses["nhwc"][0] == pytest.approx(losses["nchw"][0], abs=1e-5)
    assert losses["nhwc"][-1] == pytest.approx(losses["nchw"][-1], abs=0.05)
    for (name, a), b in zip(nhwc.state_dict().items(), nchw.state_dict().values(), strict=True):
        if a.is_floating_point():
            assert (a - b).abs().max() <= 0.05 * max(1.0, float(b.abs().max())), name

    # the layout is how a run computes, not what it trains: a resumed run may switch it
    def kill(result: EpochResult) -> None:
        raise _Kill

    two = make_schedule("all", epochs=2, lr=0.1)
    with pytest.raises(_Kill):
        train_supernet(SPACE, small_digits, two, CONFIG, tmp_path / "switch", on_epoch=kill)
    train_supernet(SPACE, small_digits, two, nchw_config, tmp_path / "switch", resume=True)
    assert load_checkpoint(tmp_path / "switch").epoch == 2


def test_resume_refuses_mismatches(tmp_path: Path, small_digits: Dataset) -> None:
    out = tmp_path / "run"
    schedule = make_schedule("all", epochs=1, lr=0.1)
    train_supernet(SPACE, small_digits, schedule, CONFIG, out)
    with pytest.raises(UserError, match="already holds a checkpoint"):
        train_supernet(SPACE, small_digits, schedule, CONFIG, out)
    with pytest.raises(UserError, match="another schedule"):
        train_supernet(SPACE, small_digits, _schedule(), CONFIG, out, resume=True)
    with pytest.raises(UserError, match=r"other settings.*seed"):
        train_supernet(
            SPACE, small_digits, schedule, dataclasses.replace(CONFIG, seed=3), out, resume=True
        )
    other = dataclasses.replace(SPACE, name="tiny-copy")
    with pytest.raises(UserError, match="trained on space 'tiny'"):
        train_supernet(other, small_digits, schedule, CONFIG, out, resume=True)


def test_bad_checkpoints_are_one_line_errors(tmp_path: Path, small_digits: Dataset) -> None:
    with pytest.raises(UserError, match="no checkpoint in"):
        load_supernet(tmp_path / "nothing")
    out = tmp_path / "run"
    train_supernet(SPACE, small_digits, make_schedule("all", epochs=1, lr=0.1), CONFIG, out)
    weights = out / "weights-0001.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(UserError, match="not a readable safetensors file") as error:
        load_supernet(out)
    assert "\n" not in str(error.value)
    weights.write_bytes(original)
    metadata = json.loads((out / "checkpoint.json").read_text())
    metadata["space"] = ss.space_to_dict(ss.get_space("mbv3-small"))
    (out / "checkpoint.json").write_text(json.dumps(metadata))
    with pytest.raises(UserError, match="weights do not match"):
        load_supernet(out)
    (out / "checkpoint.json").write_text("{not json")
    with pytest.raises(UserError, match="corrupt checkpoint description"):
        load_supernet(out)


def test_data_must_fit_the_space(small_digits: Dataset, tmp_path: Path) -> None:
    low = small_digits.at_resolution(16)
    with pytest.raises(UserError, match="needs up to 20px"):
        train_supernet(SPACE, low, _schedule(), CONFIG, tmp_path / "x")
    imagenet = ss.get_space("mbv3-imagenet")
    with pytest.raises(UserError, match="expects 3"):
        train_supernet(imagenet, small_digits, _schedule(), CONFIG, tmp_path / "x")


def test_batch_norm_recalibration_uses_the_given_images(small_digits: Dataset) -> None:
    from nas.supernet.static import build_network

    network = build_network(SPACE, SPACE.smallest())
    images = small_digits.x_train[:64]
    recalibrate_batch_norm(network, images)
    stem_conv, stem_bn = network.stem[0], network.stem[1]
    with torch.no_grad():
        activations = stem_conv(torch.as_tensor(images))
    expected_mean = activations.mean(dim=(0, 2, 3))
    assert torch.allclose(stem_bn.running_mean, expected_mean, atol=1e-5)
    assert stem_bn.momentum == 0.1 and network.training  # settings restored


def test_cross_entropy_is_the_mean_negative_log_likelihood() -> None:
    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    network.train()
    x = np.random.default_rng(0).normal(size=(10, 1, 2, 2)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    with torch.no_grad():
        logits = network(torch.as_tensor(x))
    picked = torch.log_softmax(logits, dim=1)[torch.arange(10), torch.as_tensor(y)]
    # batches of 4 do not divide 10: the mean is over images, not over batches
    assert cross_entropy(network, x, y, batch_size=4) == pytest.approx(float(-picked.mean()))
    with torch.no_grad():  # all-zero logits: every class equally likely
        network[1].weight.zero_()
        network[1].bias.zero_()
    uniform = cross_entropy(network, x, y)
    assert uniform == pytest.approx(float(np.log(3)), abs=1e-6)
    assert network.training  # mode restored
    assert accuracy(network, x, y) == pytest.approx(0.4)  # ties: argmax is class 0, 4 of 10


def test_evaluate_does_not_touch_the_supernet(tmp_path: Path, small_digits: Dataset) -> None:
    supernet = train_supernet(
        SPACE, small_digits, make_schedule("all", epochs=1, lr=0.1), CONFIG, tmp_path / "r"
    )
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    rng = np.random.default_rng(0)
    scores = [
        evaluate(supernet, SPACE.sample(rng), small_digits, calibration_size=64) for _ in range(3)
    ]
    assert all(0.0 <= s <= 1.0 for s in scores)
    arch = SPACE.sample(np.random.default_rng(1))
    network = recalibrated(supernet, arch, small_digits, calibration_size=64)
    from nas.data import resize_images

    x_val = resize_images(small_digits.x_val, arch.resolution)
    assert accuracy(network, x_val, small_digits.y_val) == evaluate(
        supernet, arch, small_digits, calibration_size=64
    )
    for key, value in supernet.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_train_config_validation() -> None:
    with pytest.raises(UserError, match="num_random"):
        TrainConfig(sandwich=False, num_random=0)
    with pytest.raises(UserError, match="unknown device"):
        TrainConfig(device="tpu9")
    with pytest.raises(UserError, match="batch size"):
        TrainConfig(batch_size=0)


def test_resolution_per_step_gives_every_subnet_of_a_step_one_resolution() -> None:
    from nas.train.sampling import step_subnets as _subnets

    space = ss.get_space("mbv3-28")
    phase = make_schedule("all", epochs=3, lr=0.1, warmup=1).phases[-1]
    rng = np.random.default_rng(0)
    per_step = dataclasses.replace(CONFIG, num_random=3, resolution_per_step=True)
    drawn = set()
    for _ in range(20):
        subnets = _subnets(space, phase, per_step, rng)
        assert len(subnets) == 5 and len({a.resolution for a in subnets}) == 1
        drawn.add(subnets[0].resolution)
        largest = dataclasses.replace(space.largest(), resolution=subnets[0].resolution)
        assert subnets[0] == largest  # the teacher is the largest at the step's resolution
    assert drawn == set(space.resolution.values)
    # By default the largest is at the largest resolution and the smallest at the smallest.
    default = _subnets(space, phase, dataclasses.replace(CONFIG, num_random=3), rng)
    assert default[0] == space.largest() and default[1].resolution == min(space.resolution.values)


def test_a_pyramid_per_step_is_shared_by_every_subnet_of_the_step() -> None:
    """--per-step resolution,num_stages,stride: the subnets of a step share one resolution,
    number of stages and stride pattern (each drawn afresh per step), while the other
    dimensions still differ: the first is the largest of that pyramid, the second its
    smallest."""
    from nas.train.sampling import step_subnets as _subnets

    space = ss.get_space("mbv3-28")
    phase = make_schedule("all", epochs=3, lr=0.1, warmup=1).phases[-1]
    rng = np.random.default_rng(0)
    config = dataclasses.replace(
        CONFIG, num_random=3, per_step=("stride", "resolution", "num_stages")
    )
    assert config.per_step == ("num_stages", "resolution", "stride")
    pyramids = set()
    for _ in range(30):
        subnets = _subnets(space, phase, config, rng)
        shapes = {(a.resolution, a.num_stages, tuple(s.stride for s in a.stages)) for a in subnets}
        assert len(shapes) == 1
        pyramids |= shapes
        assert space.flops(subnets[0]) >= max(space.flops(a) for a in subnets[1:])
        assert space.flops(subnets[1]) <= min(space.flops(a) for a in subnets[2:])
    assert len(pyramids) >= 5
    with pytest.raises(UserError, match="unknown per-step dimension"):
        TrainConfig(per_step=("colour",))


def test_a_per_step_checkpoint_resumes(tmp_path: Path) -> None:
    """The per-step dimensions are saved with the checkpoint (a JSON list) and a stopped run
    resumes with the same ones."""

    class Stop(Exception):
        pass

    def stop(result: EpochResult) -> None:
        raise Stop

    space = ss.get_space("tiny")
    data = load_dataset("digits", resolution=20, seed=0)
    data = dataclasses.replace(data, x_train=data.x_train[:128], y_train=data.y_train[:128])
    config = dataclasses.replace(CONFIG, per_step=("resolution", "stride"))
    schedule = make_schedule("all", epochs=2, lr=0.1)
    with pytest.raises(Stop):
        train_supernet(space, data, schedule, config, tmp_path, on_epoch=stop)
    train_supernet(space, data, schedule, config, tmp_path, resume=True)
    assert load_checkpoint(tmp_path).epoch == 2
    assert load_checkpoint(tmp_path).metadata["config"]["per_step"] == ["resolution", "stride"]
    with pytest.raises(UserError, match="per_step"):
        train_supernet(space, data, schedule, CONFIG, tmp_path, resume=True)


def test_a_checkpoint_from_before_a_dimension_existed_resumes(tmp_path: Path) -> None:
    """Checkpoints list each phase's elastic dimensions; one written before the block type
    (or precision) was a dimension lacks it, and still resumes in a space without that
    choice, while a real change of the schedule is refused."""
    data = load_dataset("digits", resolution=20, seed=0)
    data = dataclasses.replace(data, x_train=data.x_train[:128], y_train=data.y_train[:128])
    schedule = make_schedule("all", epochs=2, lr=0.1)
    train_supernet(SPACE, data, make_schedule("all", epochs=1, lr=0.1), CONFIG, tmp_path)
    path = tmp_path / "checkpoint.json"
    metadata = json.loads(path.read_text())
    metadata["schedule"] = schedule.to_dict()
    for phase in metadata["schedule"]["phases"]:
        phase["elastic"] = [d for d in phase["elastic"] if d not in ("block_type", "precision")]
    path.write_text(json.dumps(metadata))
    train_supernet(SPACE, data, schedule, CONFIG, tmp_path, resume=True)
    assert load_checkpoint(tmp_path).epoch == 2
    with pytest.raises(UserError, match="another schedule"):
        train_supernet(
            SPACE, data, make_schedule("all", epochs=3, lr=0.2), CONFIG, tmp_path, resume=True
        )
