"""The operators a latency lookup table is made of, and their keys.

A subnet runs a stem, a chain of inverted-residual blocks and a head; each is an
:class:`Operator` whose ``key`` (a readable string such as ``block(in=16, out=24, ...)``) holds
every field that changes its cost, and nothing else (not the stage or block position), so equal
configurations share one table entry. One more operator, ``overhead()``, is an identity graph:
the fixed cost of one call of the runtime, which every standalone measurement includes once.

A block that runs in int8 has its own key (``precision=int8``) and is timed with a quantize of
its input and a dequantize of its output. Where two int8 blocks meet, the whole network has
neither, so :func:`arch_operators` lists a ``boundary`` operator (a quantize-dequantize pair on
the tensor between them) with ``sign`` -1: the table subtracts it. A fused block (one dense
kxk convolution in place of the expansion and the depthwise one) has its own key too
(``type=fused``); keys of fp32 inverted residuals are as before either choice existed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from search_spaces import Arch, BlockShape, LayerShapes, Space, conv_output_size, layer_shapes

__all__ = [
    "OVERHEAD_KEY",
    "Operator",
    "arch_operators",
    "block_operator",
    "boundary_operator",
    "head_operator",
    "overhead_operator",
    "space_operators",
    "stem_operator",
]

OVERHEAD_KEY = "overhead()"


def _key(kind: str, **fields: object) -> str:
    return f"{kind}(" + ", ".join(f"{name}={value}" for name, value in fields.items()) + ")"


@dataclass(frozen=True, kw_only=True)
class Operator:
    """One standalone piece of a network to measure: its kind, key and (C, H, W) input."""

    kind: str  # "stem", "block", "head", "boundary" or "overhead"
    key: str
    input_shape: tuple[int, int, int]
    block: BlockShape | None = None  # the block's shape, for kind "block"
    channels: int = 0  # stem output channels, or head input channels
    sign: int = 1  # -1 for a boundary a network saves: its time is subtracted


def stem_operator(space: Space, resolution: int) -> Operator:
    stem = space.stem
    return Operator(
        kind="stem",
        key=_key(
            "stem",
            in_channels=space.in_channels,
            out=stem.channels,
            kernel=stem.kernel_size,
            stride=stem.stride,
            input=resolution,
            activation=stem.activation,
        ),
        input_shape=(space.in_channels, resolution, resolution),
        channels=stem.channels,
    )


def block_operator(block: BlockShape) -> Operator:
    return Operator(
        kind="block",
        key=_key(
            "block",
            in_channels=block.in_channels,
            out=block.out_channels,
            expanded=block.expanded_channels,
            expand=block.has_expand,
            kernel=block.kernel_size,
            stride=block.stride,
            input=block.input_size,
            se=block.se_channels,
            activation=block.activation,
            residual=block.residual,
            **({} if block.precision == "fp32" else {"precision": block.precision}),
            **({"type": block.block_type} if block.fused else {}),
        ),
        input_shape=(block.in_channels, block.input_size, block.input_size),
        block=block,
    )


def boundary_operator(channels: int, size: int) -> Operator:
    """The quantize-dequantize pair a network does not run where two int8 blocks meet on a
    ``channels`` x ``size`` x ``size`` tensor (subtracted: ``sign`` -1)."""
    return Operator(
        kind="boundary",
        key=_key("boundary", channels=channels, input=size),
        input_shape=(channels, size, size),
        channels=channels,
        sign=-1,
    )


def head_operator(space: Space, channels: int, size: int) -> Operator:
    head = space.head
    return Operator(
        kind="head",
        key=_key(
            "head",
            in_channels=channels,
            out=head.channels,
            input=size,
            features=head.feature_channels,
            classes=space.num_classes,
            activation=head.activation,
        ),
        input_shape=(channels, size, size),
        channels=channels,
    )


def overhead_operator(space: Space) -> Operator:
    """An identity graph on the smallest network input: the fixed cost of one runtime call."""
    resolution = int(space.resolution.min)
    return Operator(
        kind="overhead",
        key=OVERHEAD_KEY,
        input_shape=(space.in_channels, resolution, resolution),
    )


def _shape_operators(space: Space, shapes: LayerShapes) -> list[Operator]:
    operators = [stem_operator(space, shapes.resolution)]
    operators += [block_operator(block) for block in shapes.blocks]
    for before, after in zip(shapes.blocks, shapes.blocks[1:], strict=False):
        if before.precision == after.precision == "int8":
            operators.append(boundary_operator(before.out_channels, before.output_size))
    operators.append(head_operator(space, shapes.head_in_channels, shapes.head_input_size))
    return operators


def arch_operators(space: Space, arch: Arch) -> list[Operator]:
    """The stem, every block, the int8 junctions and the head of ``arch`` (repeats kept)."""
    return _shape_operators(space, layer_shapes(space, arch))


def _can_finish(space: Space, done: int, downsampled: int) -> bool:
    """Whether a subnet whose first ``done`` stages downsampled ``downsampled`` times can end
    with a valid number of downsamples."""
    for count in space.num_stages.values:
        if count < done:
            continue
        rest = space.stages[done:count]
        low = downsampled + sum(1 for spec in rest if 1 not in spec.stride)
        high = downsampled + sum(1 for spec in rest if 2 in spec.stride)
        if low <= space.max_downsamples and high >= space.min_downsamples:
            return True
    return False


def _junction(space: Space, s: int, block: BlockShape) -> Operator | None:
    """The boundary after ``block`` when an int8 block may follow it (in its stage or the
    next one)."""
    if block.precision != "int8":
        return None
    following = space.stages[s : s + 2]
    if not any("int8" in spec.precision for spec in following):
        return None
    return boundary_operator(block.out_channels, block.output_size)


# A state at a stage's entry: (spatial size, channels, downsamples so far).
_State = tuple[int, int, int]


def _block_paths(
    space: Space,
    s: int,
    entry: tuple[int, int, int],
    out: int,
    count: int,
    found: dict[str, Operator],
) -> set[_State]:
    """Add to ``found`` the block operators of stage ``s`` entered at ``entry`` (in_channels,
    size, stride) with ``out`` channels; return the states after the stage at each depth."""
    spec = space.stages[s]
    following: set[_State] = set()
    # Entry (in_channels, size, stride) of the block at each depth position.
    entries = {entry}
    for b in range(spec.max_depth):
        exits: set[tuple[int, int, int]] = set()
        for in_channels, in_size, block_stride in sorted(entries):
            for kernel, expand, precision, block_type, se, act in itertools.product(
                spec.kernel_size.values,
                spec.expand_ratio.values,
                spec.precision.values,
                spec.block_type.values,
                spec.se.values,
                spec.activation.values,
            ):
                hidden = (
                    in_channels if expand == 1 else space.expanded_channels(in_channels, expand)
                )
                block = BlockShape(
                    stage=s,
                    index=b,
                    in_channels=in_channels,
                    out_channels=out,
                    expanded_channels=hidden,
                    expand_ratio=expand,
                    kernel_size=kernel,
                    stride=block_stride,
                    input_size=in_size,
                    se_channels=space.se_channels(hidden) if se else 0,
                    activation=act,
                    precision=precision,
                    block_type=block_type,
                )
                for operator in (block_operator(block), _junction(space, s, block)):
                    if operator is not None:
                        found.setdefault(operator.key, operator)
                exits.add((out, block.output_size, 1))
                if b + 1 in spec.depth.values:
                    following.add((block.output_size, out, count))
        entries = exits
    return following


def _stage_operators(
    space: Space, s: int, states: set[_State], found: dict[str, Operator]
) -> set[_State]:
    """Add to ``found`` the block operators of stage ``s`` from every entry state; return the
    states at the next stage's entry."""
    spec = space.stages[s]
    following: set[_State] = set()
    for size, channels, downsampled in sorted(states):
        for width in spec.width_mult.values:
            out = space.stage_channels(s, width)
            for stride in spec.stride.values:
                count = downsampled + (stride == 2)
                if not _can_finish(space, s + 1, count):
                    continue
                following |= _block_paths(space, s, (channels, size, stride), out, count, found)
    return following


def space_operators(space: Space, archs: Iterable[Arch] | None = None) -> list[Operator]:
    """The distinct operators of ``archs``, or of every subnet of ``space`` when ``archs`` is
    None, in a deterministic order (stems, then blocks stage by stage, then heads) with the
    overhead operator first."""
    found: dict[str, Operator] = {}
    if archs is not None:
        for arch in archs:
            for operator in arch_operators(space, arch):
                found.setdefault(operator.key, operator)
        kinds = ("stem", "block", "boundary", "head")
        ordered = sorted(found.values(), key=lambda op: kinds.index(op.kind))
        return [overhead_operator(space), *ordered]
    heads: dict[str, Operator] = {}
    states: set[_State] = set()
    for resolution in space.resolution.values:
        stem = stem_operator(space, resolution)
        found.setdefault(stem.key, stem)
        size = conv_output_size(resolution, space.stem.kernel_size, space.stem.stride)
        states.add((size, space.stem.channels, 0))
    for s in range(len(space.stages)):
        if s + 1 > space.num_stages.max:
            break
        states = _stage_operators(space, s, states, found)
        if s + 1 in space.num_stages.values:
            for size, channels, downsampled in sorted(states):
                if space.min_downsamples <= downsampled <= space.max_downsamples:
                    head = head_operator(space, channels, size)
                    heads.setdefault(head.key, head)
    return [overhead_operator(space), *found.values(), *heads.values()]
