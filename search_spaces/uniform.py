"""The uniformly scaled networks of a space: what an engineer scales by hand, MobileNetV3-style.

One width multiplier and one depth step for every stage, at each resolution and number of
stages, with MobileNetV3's conventions for the rest. They are the obvious alternative a search
must beat, and ``nas search`` measures the largest of them that its predictors say meet the
targets beside its own front, so its choice is never one the obvious scaling beats on the
supernet's own ratings."""

from __future__ import annotations

import dataclasses
import itertools

from search_spaces.arch import Arch, StageArch
from search_spaces.errors import ArchError
from search_spaces.spec import BLOCK_TYPES, PRECISIONS, Space

__all__ = ["corner_family", "uniform_family"]


def uniform_family(space: Space) -> list[Arch]:
    """Uniform width and depth multipliers over every stage, at each resolution and number of
    stages, smallest multiply-adds first: the first stage that may keep its size does when
    there is room for it (every other stage downsamples, as MobileNetV3 does after its stem);
    the smallest kernel in the first two stages and the largest after (MobileNetV3 uses 3 then
    5), the expand ratio closest to 4 (MobileNetV3's typical 4-6), and where a stage chooses its
    squeeze-excitation and activation, the first of each (the space's reference form). Members
    the space does not allow (a stage that must not run in float32, say) are left out."""
    family = []
    expand = min(space.stages[0].expand_ratio.values, key=lambda e: abs(e - 4))
    for count, resolution in itertools.product(space.num_stages.values, space.resolution.values):
        low, _ = space.downsample_range(count)
        keep_first = count > max(low, space.min_downsamples)
        # The first stage that may keep its size does (stage 0 unless the space forbids it).
        keeping = [i for i, spec in enumerate(space.stages[:count]) if 1 in spec.stride]
        keep = keeping[0] if keep_first and keeping else None
        for width in space.stages[0].width_mult.values:
            for depth_index in range(max(len(s.depth.values) for s in space.stages[:count])):
                stages = []
                for index, spec in enumerate(space.stages[:count]):
                    depth = spec.depth.values[min(depth_index, len(spec.depth.values) - 1)]
                    kernel = spec.kernel_size.min if index < 2 else spec.kernel_size.max
                    stages.append(
                        StageArch(
                            width_mult=width,
                            stride=1 if index == keep else 2,
                            kernel_size=(kernel,) * depth,
                            expand_ratio=(expand,) * depth,
                            # Where a stage chooses them, the reference squeeze-excitation
                            # and activation (the first values, as search_spaces.float_view).
                            se=spec.se.values[0] if spec.has_se_choice else None,
                            activation=(
                                spec.activation.values[0] if spec.has_activation_choice else None
                            ),
                        )
                    )
                arch = Arch(resolution=resolution, stages=tuple(stages))
                try:
                    space.validate(arch)
                except ArchError:
                    continue
                family.append(arch)
    return sorted(family, key=space.flops)


def corner_family(space: Space) -> list[Arch]:
    """The largest subnet and, where stages choose a block type, the largest with each block
    type in every stage that allows it; each also in every precision that all its stages allow
    (int8, bf16): smallest multiply-adds first. The supernet trains the largest at every step,
    and the largest of each block type with ``nas train --corners block_type``, so its ratings
    are surest there; the obvious networks to try beside a search whose predictors may not
    reach them (a joint search that rates the quantized top of the inverted residuals by its
    neighbours, say)."""
    largest = space.largest()
    tops = [largest]
    for block_type in BLOCK_TYPES:
        stages = tuple(
            dataclasses.replace(stage, block_type=block_type)
            if block_type in spec.block_type
            else stage
            for spec, stage in zip(space.stages, largest.stages, strict=False)
        )
        tops.append(dataclasses.replace(largest, stages=stages))
    family: list[Arch] = []
    for top in tops:
        for precision in PRECISIONS:
            if not all(precision in spec.precision for spec in space.stages[: top.num_stages]):
                continue
            stages = tuple(dataclasses.replace(s, precision=precision) for s in top.stages)
            arch = dataclasses.replace(top, stages=stages)
            try:
                space.validate(arch)
            except ArchError:
                continue
            if arch not in family:
                family.append(arch)
    return sorted(family, key=space.flops)
