"""Whether one space is a sub-space of another whose trained supernet it can use.

A supernet's modules are sized by the space's widths, expand ratios, kernels and depths; a
stage's precision and activation change nothing in them, its block type only adds the fused
convolution and its squeeze-excitation only the SE module. So a space equal to another but for
fewer of those choices (a float-only or inverted-residual-only view of a joint space) holds a
subset of its subnets and of its weights: it can be searched on the other's supernet.
"""

from __future__ import annotations

import dataclasses

from search_spaces.spec import Choice, Space

__all__ = ["float_view", "subspace_problem"]

# The per-stage choices a sub-space may narrow.
_FORM_CHOICES = ("precision", "block_type", "se", "activation")


def subspace_problem(space: Space, parent: Space) -> str | None:
    """Why ``space`` cannot use the supernet of ``parent`` (None when it can: equal but for a
    subset of each stage's precision, block-type, squeeze-excitation and activation choices;
    names and descriptions aside)."""
    if len(space.stages) != len(parent.stages):
        return f"{len(space.stages)} stages against {len(parent.stages)}"
    for index, (mine, theirs) in enumerate(zip(space.stages, parent.stages, strict=True)):
        for name in _FORM_CHOICES:
            extra = set(getattr(mine, name).values) - set(getattr(theirs, name).values)
            if extra:
                return f"stages[{index}].{name} {sorted(extra)} is not a choice of {parent.name!r}"
    stages = tuple(
        dataclasses.replace(mine, **{name: getattr(theirs, name) for name in _FORM_CHOICES})
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
    """The sub-space of ``space`` with only fp32 and inverted-residual (mbconv) choices, and
    each stage's squeeze-excitation and activation fixed to their first (reference) value, named
    ``NAME-float``: what a search that knows nothing of int8, fused blocks or those choices
    explores."""
    stages = tuple(
        dataclasses.replace(
            stage,
            precision=Choice(("fp32",)),
            block_type=Choice(("mbconv",)),
            se=Choice(stage.se.values[:1]),
            activation=Choice(stage.activation.values[:1]),
        )
        for stage in space.stages
    )
    return dataclasses.replace(space, name=f"{space.name}-float", stages=stages)
