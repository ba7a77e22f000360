"""The largest channel counts and the kernel choices every supernet module must hold.

A module of the supernet is allocated once, at the largest size any subnet of the space can ask
of it; subnets use leading slices of it. The sizes here follow the same rules as
:func:`search_spaces.layer_shapes` (``stage_channels``, ``expanded_channels``, ``se_channels``),
taken over every choice that can reach the module.
"""

from __future__ import annotations

from dataclasses import dataclass

from search_spaces import Space

__all__ = ["BlockLimits", "block_limits", "head_in_channel_choices", "stage_channel_choices"]


@dataclass(frozen=True, kw_only=True)
class BlockLimits:
    """Allocation sizes of one elastic inverted-residual block."""

    stage: int
    index: int
    max_in_channels: int
    max_out_channels: int
    max_expanded_channels: int
    max_se_channels: int  # 0 when no subnet's blocks of the stage have squeeze-excitation
    kernel_sizes: tuple[int, ...]
    has_expand: bool  # whether its mbconv form has a 1x1 expand conv
    activations: tuple[str, ...]  # the activations a subnet may give the block
    block_types: tuple[str, ...] = ("mbconv",)  # the forms it computes: mbconv and/or fused

    @property
    def has_mbconv(self) -> bool:
        return "mbconv" in self.block_types

    @property
    def has_fused(self) -> bool:
        return "fused" in self.block_types


def stage_channel_choices(space: Space, stage: int) -> tuple[int, ...]:
    """The possible output channels of ``stage`` (``-1`` means the stem), ascending."""
    if stage < 0:
        return (space.stem.channels,)
    spec = space.stages[stage]
    return tuple(sorted({space.stage_channels(stage, w) for w in spec.width_mult.values}))


def head_in_channel_choices(space: Space) -> tuple[int, ...]:
    """The possible input channels of the head: those of every stage that can be the last."""
    channels: set[int] = set()
    for count in space.num_stages.values:
        channels.update(stage_channel_choices(space, int(count) - 1))
    return tuple(sorted(channels))


def _check_expand_choices(space: Space, stage: int) -> bool:
    """Whether the blocks of ``stage`` have an expand conv; mixing 1 with others is rejected."""
    ratios = space.stages[stage].expand_ratio.values
    if 1 in ratios and len(ratios) > 1:
        raise ValueError(
            f"stages[{stage}].expand_ratio {list(ratios)} mixes 1 (no expand conv) with other "
            "ratios; the supernet does not support this: use only 1 or only ratios > 1"
        )
    return 1 not in ratios


def block_limits(space: Space) -> tuple[tuple[BlockLimits, ...], ...]:
    """The limits of every block of the first ``max(num_stages)`` stages, stage by stage.

    Raises ``ValueError`` when a stage's expand choices mix 1 with other values.
    """
    stages: list[tuple[BlockLimits, ...]] = []
    for s in range(int(space.num_stages.max)):
        spec = space.stages[s]
        has_expand = _check_expand_choices(space, s)
        out_choices = stage_channel_choices(space, s)
        blocks = []
        for b in range(spec.max_depth):
            in_choices = stage_channel_choices(space, s - 1 if b == 0 else s)
            if has_expand:
                hidden = {
                    space.expanded_channels(c, e)
                    for c in in_choices
                    for e in spec.expand_ratio.values
                }
            else:
                hidden = set(in_choices)
            blocks.append(
                BlockLimits(
                    stage=s,
                    index=b,
                    max_in_channels=max(in_choices),
                    max_out_channels=max(out_choices),
                    max_expanded_channels=max(hidden),
                    max_se_channels=(
                        max(space.se_channels(h) for h in hidden) if spec.may_have_se else 0
                    ),
                    kernel_sizes=tuple(sorted(int(k) for k in spec.kernel_size.values)),
                    has_expand=has_expand,
                    activations=tuple(spec.activation.values),
                    block_types=tuple(spec.block_type.values),
                )
            )
        stages.append(tuple(blocks))
    return tuple(stages)
