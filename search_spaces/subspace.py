"""Whether one space is a sub-space of another whose trained supernet it can use.

A supernet's modules are sized by the space's widths, expand ratios, kernels and depths; a
stage's precision changes nothing in them and its block type only adds the fused convolution.
So a space equal to another but for fewer precision or block-type choices (a float-only or
inverted-residual-only view of a joint space) holds a subset of its subnets and of its
weights: it can be searched on the other's supernet.
"""

from __future__ import annotations

import dataclasses

from search_spaces.spec import Choice, Space

__all__ = ["float_view", "subspace_problem"]


def subspace_problem(space: Space, parent: Space) -> str | None:
    """Why ``space`` cannot use the supernet of ``parent`` (None when it can: equal but for a
    subset of each stage's precision and block-type choices; names and descriptions aside)."""
    if len(space.stages) != len(parent.stages):
        return f"{len(space.stages)} stages against {len(parent.stages)}"
    for index, (mine, theirs) in enumerate(zip(space.stages, parent.stages, strict=True)):
        for name in ("precision", "block_type"):
            extra = set(getattr(mine, name).values) - set(getattr(theirs, name).values)
            if extra:
                return f"stages[{index}].{name} {sorted(extra)} is not a choice of {parent.name!r}"
    stages = tuple(
        dataclasses.replace(
            mine,
            precision=Choice(theirs.precision.values),
            block_type=Choice(theirs.block_type.values),
        )
        for mine, theirs in zip(space.stages, parent.stages, strict=True)
    )
    aligned = dataclasses.replace(
        space, name=parent.name, description=parent.description, stages=stages
    )
    if aligned != parent:
        differing = [
            field.name
            for field in dataclasses.fields(Space)
            if getattr(aligned, field.name) != getattr(parent, field.name)
        ]
        return f"it differs from {parent.name!r} in {', '.join(differing)}"
    return None


def float_view(space: Space) -> Space:
    """The sub-space of ``space`` with only fp32 and inverted-residual (mbconv) choices, named
    ``NAME-float``: what a search that knows nothing of int8 or fused blocks explores."""
    stages = tuple(
        dataclasses.replace(stage, precision=Choice(("fp32",)), block_type=Choice(("mbconv",)))
        for stage in space.stages
    )
    return dataclasses.replace(space, name=f"{space.name}-float", stages=stages)
