from __future__ import annotations

import pytest

from search_spaces import Choice, HeadSpec, Space, StageSpec, StemSpec


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


@pytest.fixture
def micro() -> Space:
    return micro_space()
