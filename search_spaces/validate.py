"""Membership of an arch in a space, and the exact number of subnets a space holds."""

from __future__ import annotations

from search_spaces.arch import Arch, StageArch
from search_spaces.errors import ArchError
from search_spaces.spec import Choice, Space

__all__ = ["downsamples", "size", "validate"]


def _check(where: str, value: object, choice: Choice) -> None:
    if value not in choice:
        raise ArchError(f"{where}={value!r} is not one of {list(choice.values)}")


def downsamples(arch: Arch) -> int:
    """The number of stages of ``arch`` that have stride 2."""
    return sum(1 for stage in arch.stages if stage.stride == 2)


def validate(space: Space, arch: Arch) -> None:
    """Raise :class:`ArchError`, naming the field, unless ``arch`` is a subnet of ``space``."""
    if not isinstance(arch, Arch):
        raise ArchError(f"expected an Arch, got {type(arch).__name__}")
    _check("resolution", arch.resolution, space.resolution)
    if arch.num_stages not in space.num_stages:
        raise ArchError(
            f"stages lists {arch.num_stages} stages; space {space.name!r} allows "
            f"{list(space.num_stages.values)}"
        )
    for s, stage in enumerate(arch.stages):
        if not isinstance(stage, StageArch):
            raise ArchError(f"stages[{s}] must be a StageArch, got {type(stage).__name__}")
        spec = space.stages[s]
        _check(f"stages[{s}].depth", stage.depth, spec.depth)
        _check(f"stages[{s}].width_mult", stage.width_mult, spec.width_mult)
        _check(f"stages[{s}].stride", stage.stride, spec.stride)
        _check(f"stages[{s}].precision", stage.precision, spec.precision)
        _check(f"stages[{s}].block_type", stage.block_type, spec.block_type)
        for name, choice in (("se", spec.se), ("activation", spec.activation)):
            value = getattr(stage, name)
            if len(choice) > 1 and value is None:
                raise ArchError(
                    f"stages[{s}].{name} must be given: the space chooses it from "
                    f"{list(choice.values)}"
                )
            if len(choice) == 1 and value is not None:
                raise ArchError(
                    f"stages[{s}].{name}={value!r} is fixed by the space to "
                    f"{choice.values[0]!r}; leave it out"
                )
            if value is not None:
                _check(f"stages[{s}].{name}", value, choice)
        for b, kernel in enumerate(stage.kernel_size):
            _check(f"stages[{s}].kernel_size[{b}]", kernel, spec.kernel_size)
        for b, expand in enumerate(stage.expand_ratio):
            _check(f"stages[{s}].expand_ratio[{b}]", expand, spec.expand_ratio)
    count = downsamples(arch)
    if not space.min_downsamples <= count <= space.max_downsamples:
        raise ArchError(
            f"stages have {count} stride-2 stages; space {space.name!r} needs between "
            f"{space.min_downsamples} and {space.max_downsamples}"
        )


def size(space: Space) -> int:
    """The exact number of distinct subnets in ``space``.

    For each number of stages, a polynomial in the number of downsamples is built stage by
    stage (each stage contributes its width, precision, block type, squeeze-excitation,
    activation and block choices once per stride value),
    and the coefficients inside the allowed downsample range are summed.
    """
    total = 0
    for num_stages in space.num_stages.values:
        by_downsamples = [1]
        for spec in space.stages[:num_stages]:
            blocks = len(spec.kernel_size) * len(spec.expand_ratio)
            stage_count = len(spec.width_mult) * len(spec.precision) * len(spec.block_type)
            stage_count *= len(spec.se) * len(spec.activation)
            stage_count *= sum(blocks**d for d in spec.depth.values)
            grown = [0] * (len(by_downsamples) + 1)
            for k, ways in enumerate(by_downsamples):
                if 1 in spec.stride:
                    grown[k] += ways * stage_count
                if 2 in spec.stride:
                    grown[k + 1] += ways * stage_count
            by_downsamples = grown
        total += sum(
            ways
            for k, ways in enumerate(by_downsamples)
            if space.min_downsamples <= k <= space.max_downsamples
        )
    return total * len(space.resolution)
