from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

import search_spaces as ss
from search_spaces import (
    Arch,
    ArchError,
    Choice,
    HeadSpec,
    Space,
    StageArch,
    StageSpec,
    StemSpec,
)


def micro_space(**overrides: object) -> Space:
    """A space small enough to enumerate: two stages, few choices."""
    stage = dict(
        depth=Choice((1, 2)),
        width_mult=Choice((0.5, 1.0)),
        stride=Choice((1, 2)),
        kernel_size=Choice((3, 5)),
        expand_ratio=Choice((3,)),
    )
    fields: dict[str, object] = dict(
        name="micro",
        resolution=Choice((8, 12)),
        num_stages=Choice((1, 2)),
        min_downsamples=1,
        max_downsamples=1,
        channel_divisor=4,
        stem=StemSpec(channels=4, stride=1),
        stages=(
            StageSpec(base_channels=8, **stage),  # type: ignore[arg-type]
            StageSpec(base_channels=16, se=True, activation="hswish", **stage),  # type: ignore[arg-type]
        ),
        head=HeadSpec(channels=16),
    )
    fields.update(overrides)
    return Space(**fields)  # type: ignore[arg-type]


def precision_space(**overrides: object) -> Space:
    """:func:`micro_space` whose first stage may run in fp32 or int8 (the second stays fp32)."""
    micro = micro_space()
    first = dataclasses.replace(micro.stages[0], precision=Choice(("fp32", "int8")))
    fields: dict[str, object] = {"name": "micro-precision", "stages": (first, micro.stages[1])}
    fields.update(overrides)
    return micro_space(**fields)


def bf16_space() -> Space:
    """``tiny`` with every stage free to run in fp32, bf16 or int8."""
    tiny = ss.get_space("tiny")
    choice = ss.Choice(("fp32", "bf16", "int8"))
    stages = tuple(dataclasses.replace(s, precision=choice) for s in tiny.stages)
    return dataclasses.replace(tiny, name="tiny-bf16", stages=stages)


def with_precisions(arch: Arch, precisions: list[str]) -> Arch:
    """``arch`` with each stage at the given precision."""
    stages = tuple(
        dataclasses.replace(stage, precision=p)
        for stage, p in zip(arch.stages, precisions, strict=True)
    )
    return dataclasses.replace(arch, stages=stages)


def block_type_space(**overrides: object) -> Space:
    """:func:`precision_space` whose stages may also be fused (the first) or are fused only
    (the second)."""
    precise = precision_space()
    first = dataclasses.replace(precise.stages[0], block_type=Choice(("mbconv", "fused")))
    second = dataclasses.replace(precise.stages[1], block_type=Choice(("fused",)))
    fields: dict[str, object] = {"name": "micro-fused", "stages": (first, second)}
    fields.update(overrides)
    return micro_space(**fields)


def form_space(**overrides: object) -> Space:
    """:func:`micro_space` whose second stage chooses its squeeze-excitation and activation
    (reference values first: SE on, hard-swish)."""
    micro = micro_space()
    second = dataclasses.replace(
        micro.stages[1], se=Choice((True, False)), activation=Choice(("hswish", "relu"))
    )
    fields: dict[str, object] = {"name": "micro-forms", "stages": (micro.stages[0], second)}
    fields.update(overrides)
    return micro_space(**fields)


def enumerate_by_hand(space: Space) -> set[Arch]:
    """Every arch of ``space``, built independently of the genome code, then validated."""
    found: set[Arch] = set()
    for resolution in space.resolution.values:
        for num_stages in space.num_stages.values:
            per_stage = []
            for spec in space.stages[:num_stages]:
                options = []
                for depth in spec.depth.values:
                    # se and activation are given only where the stage chooses them
                    ses = spec.se.values if len(spec.se) > 1 else (None,)
                    acts = spec.activation.values if len(spec.activation) > 1 else (None,)
                    for width, stride, precision, block_type, se, act in itertools.product(
                        spec.width_mult.values,
                        spec.stride.values,
                        spec.precision.values,
                        spec.block_type.values,
                        ses,
                        acts,
                    ):
                        for kernels in itertools.product(spec.kernel_size.values, repeat=depth):
                            for expands in itertools.product(
                                spec.expand_ratio.values, repeat=depth
                            ):
                                options.append(
                                    StageArch(
                                        width_mult=width,
                                        stride=stride,
                                        kernel_size=kernels,
                                        expand_ratio=expands,
                                        precision=precision,
                                        block_type=block_type,
                                        se=se,
                                        activation=act,
                                    )
                                )
                per_stage.append(options)
            for stages in itertools.product(*per_stage):
                arch = Arch(resolution=resolution, stages=stages)
                try:
                    space.validate(arch)
                except ArchError:
                    continue
                found.add(arch)
    return found


@pytest.fixture
def micro() -> Space:
    return micro_space()


@pytest.fixture
def precise() -> Space:
    return precision_space()


@pytest.fixture
def fused() -> Space:
    return block_type_space()


def check_size_by_enumeration(space: Space) -> None:
    """``space.size()`` equals the number of archs built by hand and of canonical valid
    genomes, and those genomes decode to exactly the archs built by hand."""
    by_hand = enumerate_by_hand(space)
    assert space.size() == len(by_hand)
    layout = ss.genome_layout(space)
    every = np.array(list(itertools.product(*(range(c) for c in layout.cardinalities))))
    counts = ss.downsample_counts(space, every)
    valid = every[(counts >= space.min_downsamples) & (counts <= space.max_downsamples)]
    canonical = np.unique(ss.canonicalize(space, valid), axis=0)
    assert len(canonical) == space.size()
    assert {ss.decode_genome(space, g) for g in canonical} == by_hand
