"""How a step's random subnets are drawn: uniform over the genome (the default, unchanged),
uniform over log multiply-adds, and the worst of several candidates of about one size."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import search_spaces as ss
from nas.errors import UserError
from nas.predictors import arch_genomes, genome_costs
from nas.supernet import Supernet
from nas.train import TrainConfig, make_schedule
from nas.train import step as step_module
from nas.train.sampling import draw_step, step_subnets
from nas.train.step import train_step

SPACE = ss.get_space("mbv3-28")
PHASE = make_schedule("all", epochs=3, lr=0.1, warmup=1).phases[-1]


def _log_flops(archs: list[ss.Arch]) -> np.ndarray:
    return np.log(genome_costs(SPACE, arch_genomes(SPACE, archs)).flops)


def _randoms(config: TrainConfig, steps: int) -> list[ss.Arch]:
    rng = np.random.default_rng(0)
    drawn: list[ss.Arch] = []
    for _ in range(steps):
        draw = draw_step(SPACE, PHASE, config, rng)
        drawn += [arch for group in draw.candidates for arch in group] or draw.subnets[2:]
    return drawn


def test_uniform_sampling_draws_what_it_drew_before() -> None:
    """The default draws the same subnets from the same generator as before sampling became
    a choice, so a run started before resumes to the same weights."""
    config = TrainConfig(num_random=2)
    rng, again = np.random.default_rng(7), np.random.default_rng(7)
    for _ in range(5):
        subnets = step_subnets(SPACE, PHASE, config, rng)
        genomes = ss.sample_genomes(SPACE, again, 2, PHASE.elastic)
        expected = [SPACE.largest(), ss.smallest_in(SPACE, PHASE.elastic)]
        expected += [ss.decode_genome(SPACE, genome) for genome in genomes]
        assert subnets == expected


def test_flops_sampling_trains_every_size_alike() -> None:
    """Uniform over the genome most draws are mid-size; over log multiply-adds each third of
    the range between the smallest and the largest gets about a third of the draws."""
    low, high = _log_flops([ss.smallest_in(SPACE, PHASE.elastic), SPACE.largest()])
    thirds = np.linspace(low, high, 4)

    def shares(sampling: str) -> np.ndarray:
        drawn = _log_flops(_randoms(TrainConfig(num_random=2, sampling=sampling), 150))
        return np.histogram(drawn, bins=thirds)[0] / len(drawn)

    uniform, flops = shares("uniform"), shares("flops")
    assert flops.min() > 0.2, flops
    assert flops[2] > 2 * uniform[2], (flops, uniform)


def test_worst_of_groups_hold_candidates_of_about_one_size() -> None:
    config = TrainConfig(num_random=2, sampling="flops", worst_of=3, resolution_per_step=True)
    rng = np.random.default_rng(1)
    low, high = _log_flops([ss.smallest_in(SPACE, PHASE.elastic), SPACE.largest()])
    spreads = []
    for _ in range(40):
        draw = draw_step(SPACE, PHASE, config, rng)
        assert len(draw.subnets) == 2 and [len(group) for group in draw.candidates] == [3, 3]
        resolutions = {arch.resolution for arch in draw.subnets}
        resolutions |= {arch.resolution for group in draw.candidates for arch in group}
        assert len(resolutions) == 1
        spreads += [np.ptp(_log_flops(group)) for group in draw.candidates]
    assert np.median(spreads) < 0.1 * (high - low)
    assert draw.first_choices() == draw.subnets + [group[0] for group in draw.candidates]


def test_the_worst_candidate_is_trained(monkeypatch: pytest.MonkeyPatch) -> None:
    """Of each group the candidate with the highest loss joins the step (here the loss is
    replaced by each candidate's size, so the largest of each group must be chosen)."""
    space = ss.get_space("tiny")
    supernet = Supernet(space).train()
    optimizer = torch.optim.SGD(supernet.parameters(), lr=0.01)
    config = TrainConfig(num_random=2, worst_of=3, channels_last=False)
    draw = draw_step(space, PHASE, config, np.random.default_rng(3))
    trained: list[ss.Arch] = []
    set_active = supernet.set_active

    def spy(arch: ss.Arch) -> None:
        trained.append(arch)
        set_active(arch)

    monkeypatch.setattr(supernet, "set_active", spy)
    monkeypatch.setattr(
        step_module, "_candidate_loss", lambda supernet, arch, *rest: float(space.flops(arch))
    )
    images = np.random.default_rng(0).random((8, 1, 20, 20), dtype=np.float32)
    labels = torch.arange(8) % space.num_classes
    loss = train_step(
        supernet,
        optimizer,
        draw.subnets,
        images,
        labels,
        config,
        torch.device("cpu"),
        candidates=draw.candidates,
    )
    assert np.isfinite(loss)
    expected = [max(group, key=space.flops) for group in draw.candidates]
    assert trained == draw.subnets + expected


def test_sampling_settings_are_checked() -> None:
    with pytest.raises(UserError, match="unknown sampling"):
        TrainConfig(sampling="loss")
    with pytest.raises(UserError, match="worst-of"):
        TrainConfig(worst_of=0)
    assert dataclasses.replace(TrainConfig(), worst_of=2).worst_of == 2


def test_worst_of_is_refused_on_data_parallel_workers(tmp_path: object) -> None:
    """Workers see different parts of a batch and would choose different candidates."""
    from nas.data import load_dataset
    from nas.distributed import Backend, train_supernet_on_ray

    data = load_dataset("digits", resolution=20, seed=0)
    with pytest.raises(UserError, match="worst-of"):
        train_supernet_on_ray(
            ss.get_space("tiny"),
            data,
            make_schedule("all", epochs=1, lr=0.1),
            TrainConfig(worst_of=2),
            f"{tmp_path}/out",
            backend=Backend(kind="ray", workers=2),
        )


def test_corners_join_the_fixed_subnets_of_every_step() -> None:
    """A corner is the largest subnet with one dimension at its smallest; it is trained every
    step after the sandwich, whatever the random draws (worst-of groups left as they were)."""
    config = TrainConfig(num_random=2, sampling="flops", worst_of=3, corners=("depth",))
    plain = dataclasses.replace(config, corners=())
    shallow = ss.smallest_in(SPACE, ["depth"])
    assert all(len(stage.kernel_size) == 1 for stage in shallow.stages)
    assert shallow.stages == tuple(
        dataclasses.replace(
            stage, kernel_size=stage.kernel_size[:1], expand_ratio=stage.expand_ratio[:1]
        )
        for stage in SPACE.largest().stages
    )
    draw = draw_step(SPACE, PHASE, config, np.random.default_rng(4))
    before = draw_step(SPACE, PHASE, plain, np.random.default_rng(4))
    assert draw.subnets == [*before.subnets, shallow]
    assert draw.candidates == before.candidates
    # a corner of a dimension the phase keeps fixed, or one equal to a sandwich member, is
    # not trained twice
    fixed = dataclasses.replace(PHASE, elastic=tuple(d for d in PHASE.elastic if d != "depth"))
    assert len(draw_step(SPACE, fixed, config, np.random.default_rng(4)).subnets) == 2
    tiny = ss.get_space("tiny")
    assert ss.smallest_in(tiny, ["precision"]) == tiny.largest()
    subnets = step_subnets(
        tiny, PHASE, TrainConfig(corners=("precision",)), np.random.default_rng(0)
    )
    assert len(subnets) == 4 and subnets[:2] == [
        tiny.largest(),
        ss.smallest_in(tiny, PHASE.elastic),
    ]
    with pytest.raises(UserError, match="unknown corner"):
        TrainConfig(corners=("height",))
    assert TrainConfig(corners=("width_mult", "depth", "depth")).corners == ("depth", "width_mult")
