"""Hypothesis strategies shared by the property tests: random valid search spaces."""

from __future__ import annotations

from hypothesis import assume
from hypothesis import strategies as st

from search_spaces import Choice, HeadSpec, Space, SpaceError, StageSpec, StemSpec


def _choice(values: st.SearchStrategy[object], most: int = 3) -> st.SearchStrategy[Choice]:
    return st.lists(values, min_size=1, max_size=most, unique=True).map(
        lambda items: Choice(tuple(items))
    )


@st.composite
def stage_specs(draw: st.DrawFn) -> StageSpec:
    return StageSpec(
        base_channels=draw(st.integers(8, 48)),
        depth=draw(_choice(st.integers(1, 3))),
        width_mult=draw(_choice(st.sampled_from([0.25, 0.5, 0.75, 1.0, 1.25, 1.5]))),
        stride=draw(st.sampled_from([Choice((1,)), Choice((2,)), Choice((1, 2)), Choice((2, 1))])),
        kernel_size=draw(_choice(st.sampled_from([1, 3, 5, 7, 9]))),
        expand_ratio=draw(_choice(st.sampled_from([1, 2, 3, 4, 6]))),
        se=draw(st.booleans()),
        activation=draw(st.sampled_from(["relu", "hswish"])),
    )


@st.composite
def spaces(draw: st.DrawFn, max_stages: int = 4) -> Space:
    """A random valid space: any number of stages, choices and stride patterns, with
    downsampling bounds that every allowed number of stages can meet."""
    stages = tuple(draw(st.lists(stage_specs(), min_size=1, max_size=max_stages)))
    counts = draw(_choice(st.integers(1, len(stages)), most=len(stages)))

    def bounds(count: int) -> tuple[int, int]:
        used = stages[:count]
        return sum(1 for s in used if 1 not in s.stride), sum(1 for s in used if 2 in s.stride)

    lows, highs = zip(*(bounds(count) for count in counts.values), strict=True)
    min_downsamples = draw(st.integers(0, min(highs)))
    max_downsamples = draw(st.integers(max(min_downsamples, max(lows)), len(stages) + 1))
    try:
        return Space(
            name=draw(st.from_regex(r"[a-z][a-z0-9-]{0,11}", fullmatch=True)),
            in_channels=draw(st.sampled_from([1, 3])),
            num_classes=draw(st.integers(2, 20)),
            resolution=draw(_choice(st.integers(8, 64))),
            num_stages=counts,
            min_downsamples=min_downsamples,
            max_downsamples=max_downsamples,
            channel_divisor=draw(st.sampled_from([1, 2])),
            stem=StemSpec(
                channels=draw(st.integers(4, 16)),
                kernel_size=draw(st.sampled_from([1, 3, 5])),
                stride=draw(st.sampled_from([1, 2])),
            ),
            stages=stages,
            head=HeadSpec(
                channels=draw(st.integers(8, 64)),
                feature_channels=draw(st.none() | st.integers(8, 64)),
                dropout=draw(st.sampled_from([0.0, 0.2])),
            ),
        )
    except SpaceError:  # e.g. two width multipliers rounding to one channel count
        assume(False)
        raise
