"""Frozen dataclasses that define an elastic search space, by data only.

A :class:`Space` is a MobileNetV3-style network: a stem convolution, up to ``len(stages)``
stages of inverted-residual blocks, and a head. Every elastic dimension is a :class:`Choice`:

- ``resolution``: the input resolution;
- ``num_stages``: how many of the stages are used (always the first ones);
- per stage: ``depth`` (blocks), ``width_mult`` (output channels = ``base_channels`` times it),
  ``stride`` (1 or 2: whether the stage downsamples), ``precision`` (the numeric format its
  blocks run in, one of :data:`PRECISIONS`), ``block_type`` (the kind of its blocks, one of
  :data:`BLOCK_TYPES`), ``se`` (whether its blocks have squeeze-excitation), ``activation``
  (relu or hswish), and per block ``kernel_size`` and ``expand_ratio``. ``se`` and
  ``activation`` are usually fixed (one value, written as a scalar); a list makes them choices
  too, the first value being the stage's reference form.

``min_downsamples``/``max_downsamples`` bound how many of the used stages may have stride 2, so
that every subnet has a valid total downsampling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from search_spaces.errors import SpaceError

if TYPE_CHECKING:
    from collections.abc import Collection

    import numpy as np

    from search_spaces.arch import Arch, StageArch

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_CODES",
    "BLOCK_TYPES",
    "BLOCK_TYPE_CODES",
    "PRECISIONS",
    "PRECISION_BITS",
    "Choice",
    "HeadSpec",
    "Space",
    "StageSpec",
    "StemSpec",
    "make_divisible",
]

ACTIVATIONS = ("relu", "hswish")
# What predictors see for an activation, and what orders them (the largest subnet, the teacher of
# the sandwich rule, takes hard-swish where a stage may choose).
ACTIVATION_CODES = {"relu": 0, "hswish": 1}
# The numeric formats a stage may run in, and their bit widths (what predictors see, and what
# orders them: "int8" > "fp32" as strings, but an int8 stage is the smaller one). A bf16 stage
# runs its convolutions in bfloat16 (OpenVINO on a CPU with bfloat16 instructions).
PRECISIONS = ("fp32", "bf16", "int8")
PRECISION_BITS = {"fp32": 32, "bf16": 16, "int8": 8}
_DEFAULT_PRECISION = ("fp32",)
# The kinds of block a stage may use: "mbconv", the inverted residual (1x1 expansion, depthwise
# kxk, projection), or "fused" (one dense kxk convolution in place of the expansion and the
# depthwise one, as in EfficientNetV2's Fused-MBConv): more multiply-adds, but dense
# convolutions are the ones int8 runs 2-3x faster than float on CPUs (depthwise ones slower).
# The codes are what predictors see and what orders them (a fused block is the larger).
BLOCK_TYPES = ("mbconv", "fused")
BLOCK_TYPE_CODES = {"mbconv": 0, "fused": 1}
_DEFAULT_BLOCK_TYPE = ("mbconv",)


def make_divisible(value: float, divisor: int) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never below 90% of it."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


@dataclass(frozen=True)
class Choice:
    """The candidate values of one elastic dimension, in a fixed order."""

    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.values, tuple):
            object.__setattr__(self, "values", tuple(self.values))
        if not self.values:
            raise SpaceError("a choice needs at least one value")
        if len(set(self.values)) != len(self.values):
            raise SpaceError(f"choice {list(self.values)} repeats a value")

    def __len__(self) -> int:
        return len(self.values)

    def __contains__(self, value: object) -> bool:
        return value in self.values

    def index(self, value: Any) -> int:
        return self.values.index(value)

    @property
    def min(self) -> Any:
        return min(self.values)

    @property
    def max(self) -> Any:
        return max(self.values)


def _choice(
    name: str, value: Any, kind: type, minimum: float, allowed: tuple[Any, ...] = ()
) -> None:
    if not isinstance(value, Choice):
        raise SpaceError(f"{name} must be a Choice, got {type(value).__name__}")
    numeric: tuple[type[int] | type[float], ...] = (int, float) if kind is float else (int,)
    for item in value.values:
        if isinstance(item, bool) or not isinstance(item, numeric):
            expected = "an integer" if kind is int else "a number"
            raise SpaceError(f"{name} value {item!r} must be {expected}")
        if item < minimum:
            raise SpaceError(f"{name} value {item!r} must be >= {minimum}")
        if allowed and item not in allowed:
            raise SpaceError(f"{name} value {item!r} must be one of {list(allowed)}")


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpaceError(f"{name} must be a positive integer, got {value!r}")


def _named_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    """A :class:`Choice` whose values are names from ``allowed``."""
    if not isinstance(value, Choice):
        raise SpaceError(f"{name} must be a Choice, got {type(value).__name__}")
    for item in value.values:
        if not isinstance(item, str) or item not in allowed:
            raise SpaceError(f"{name} value {item!r} must be one of {list(allowed)}")


def _activation(name: str, value: str) -> None:
    if value not in ACTIVATIONS:
        raise SpaceError(f"{name} must be one of {list(ACTIVATIONS)}, got {value!r}")


def _se(name: str, value: Any) -> None:
    if not isinstance(value, Choice):
        raise SpaceError(f"{name} must be a Choice, got {type(value).__name__}")
    for item in value.values:
        if not isinstance(item, bool):
            raise SpaceError(f"{name} value {item!r} must be true or false")


@dataclass(frozen=True, kw_only=True)
class StemSpec:
    """The first, fixed convolution: ``kernel_size`` x ``kernel_size``, BN, activation."""

    channels: int
    kernel_size: int = 3
    stride: int = 2
    activation: str = "hswish"

    def __post_init__(self) -> None:
        _positive_int("stem.channels", self.channels)
        if self.kernel_size not in (1, 3, 5, 7):
            raise SpaceError(f"stem.kernel_size must be 1, 3, 5 or 7, got {self.kernel_size!r}")
        if self.stride not in (1, 2):
            raise SpaceError(f"stem.stride must be 1 or 2, got {self.stride!r}")
        _activation("stem.activation", self.activation)


@dataclass(frozen=True, kw_only=True)
class StageSpec:
    """One stage of inverted-residual blocks and the choices each of its dimensions has."""

    base_channels: int
    depth: Choice
    width_mult: Choice = field(default_factory=lambda: Choice((1.0,)))
    stride: Choice = field(default_factory=lambda: Choice((2,)))
    kernel_size: Choice = field(default_factory=lambda: Choice((3, 5, 7)))
    expand_ratio: Choice = field(default_factory=lambda: Choice((3, 4, 6)))
    # Squeeze-excitation and activation: one value (fixed) or several (searched). A bare bool or
    # string is taken as the one value.
    se: Choice = field(default_factory=lambda: Choice((False,)))
    activation: Choice = field(default_factory=lambda: Choice(("relu",)))
    precision: Choice = field(default_factory=lambda: Choice(_DEFAULT_PRECISION))
    block_type: Choice = field(default_factory=lambda: Choice(_DEFAULT_BLOCK_TYPE))

    def __post_init__(self) -> None:
        for name in ("se", "activation"):
            value = getattr(self, name)
            if not isinstance(value, Choice):
                object.__setattr__(self, name, Choice((value,)))

    def validate(self, prefix: str) -> None:
        _positive_int(f"{prefix}.base_channels", self.base_channels)
        _choice(f"{prefix}.depth", self.depth, int, 1)
        _choice(f"{prefix}.width_mult", self.width_mult, float, 0.0)
        if any(w <= 0 for w in self.width_mult.values):
            raise SpaceError(f"{prefix}.width_mult values must be > 0")
        _choice(f"{prefix}.stride", self.stride, int, 1, allowed=(1, 2))
        _choice(f"{prefix}.kernel_size", self.kernel_size, int, 1, allowed=(1, 3, 5, 7, 9))
        _choice(f"{prefix}.expand_ratio", self.expand_ratio, float, 1.0)
        _se(f"{prefix}.se", self.se)
        _named_choice(f"{prefix}.activation", self.activation, ACTIVATIONS)
        _named_choice(f"{prefix}.precision", self.precision, PRECISIONS)
        _named_choice(f"{prefix}.block_type", self.block_type, BLOCK_TYPES)

    @property
    def has_precision(self) -> bool:
        """Whether the precision differs from the default fp32-only choice."""
        return self.precision.values != _DEFAULT_PRECISION

    @property
    def has_block_type(self) -> bool:
        """Whether the block type differs from the default mbconv-only choice."""
        return self.block_type.values != _DEFAULT_BLOCK_TYPE

    @property
    def has_se_choice(self) -> bool:
        """Whether a subnet chooses if this stage's blocks have squeeze-excitation."""
        return len(self.se) > 1

    @property
    def has_activation_choice(self) -> bool:
        """Whether a subnet chooses this stage's activation."""
        return len(self.activation) > 1

    @property
    def may_have_se(self) -> bool:
        """Whether any subnet's blocks of this stage have squeeze-excitation."""
        return True in self.se.values

    def se_of(self, stage: StageArch) -> bool:
        """Whether ``stage`` (a subnet's stage here) has squeeze-excitation: its own choice,
        else the stage's one value."""
        return self.se.values[0] if stage.se is None else stage.se

    def activation_of(self, stage: StageArch) -> str:
        """The activation of ``stage``: its own choice, else the stage's one value."""
        return str(self.activation.values[0] if stage.activation is None else stage.activation)

    @property
    def max_depth(self) -> int:
        return int(self.depth.max)


@dataclass(frozen=True, kw_only=True)
class HeadSpec:
    """The end of the network.

    A 1x1 convolution to ``channels`` (BN, activation), global average pooling, then, when
    ``feature_channels`` is set, a 1x1 convolution to it (activation; no BN, no bias) as in
    MobileNetV3, then dropout and the linear classifier.
    """

    channels: int
    feature_channels: int | None = None
    activation: str = "hswish"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        _positive_int("head.channels", self.channels)
        if self.feature_channels is not None:
            _positive_int("head.feature_channels", self.feature_channels)
        _activation("head.activation", self.activation)
        if not 0.0 <= self.dropout < 1.0:
            raise SpaceError(f"head.dropout must be in [0, 1), got {self.dropout!r}")


@dataclass(frozen=True, kw_only=True)
class Space:
    """An elastic search space: every subnetwork it holds is an :class:`~search_spaces.Arch`."""

    name: str
    description: str = ""
    in_channels: int = 1
    num_classes: int = 10
    resolution: Choice
    num_stages: Choice
    min_downsamples: int = 0
    max_downsamples: int
    channel_divisor: int = 8
    stem: StemSpec
    stages: tuple[StageSpec, ...]
    head: HeadSpec

    def __post_init__(self) -> None:
        if not isinstance(self.stages, tuple):
            object.__setattr__(self, "stages", tuple(self.stages))
        if not self.name or not isinstance(self.name, str):
            raise SpaceError("space.name must be a non-empty string")
        _positive_int("in_channels", self.in_channels)
        if (
            isinstance(self.num_classes, bool)
            or not isinstance(self.num_classes, int)
            or (self.num_classes < 2)
        ):
            raise SpaceError(f"num_classes must be an integer >= 2, got {self.num_classes!r}")
        _choice("resolution", self.resolution, int, 4)
        if not self.stages:
            raise SpaceError("stages must list at least one stage")
        for index, stage in enumerate(self.stages):
            if not isinstance(stage, StageSpec):
                raise SpaceError(f"stages[{index}] must be a StageSpec")
            stage.validate(f"stages[{index}]")
        _choice("num_stages", self.num_stages, int, 1)
        if self.num_stages.max > len(self.stages):
            raise SpaceError(
                f"num_stages allows {self.num_stages.max} stages but only "
                f"{len(self.stages)} are defined in stages"
            )
        _positive_int("channel_divisor", self.channel_divisor)
        for key in ("min_downsamples", "max_downsamples"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int):
                raise SpaceError(f"{key} must be an integer, got {value!r}")
        if self.min_downsamples < 0 or self.max_downsamples < self.min_downsamples:
            raise SpaceError(
                f"need 0 <= min_downsamples <= max_downsamples, got "
                f"{self.min_downsamples} and {self.max_downsamples}"
            )
        for count in self.num_stages.values:
            low, high = self.downsample_range(count)
            if high < self.min_downsamples or low > self.max_downsamples:
                raise SpaceError(
                    f"with num_stages={count} the stage strides allow {low} to {high} "
                    f"downsamples, outside min_downsamples={self.min_downsamples}.."
                    f"max_downsamples={self.max_downsamples}; change the stride choices"
                )
        for index, stage in enumerate(self.stages):
            widths = [self.stage_channels(index, w) for w in stage.width_mult.values]
            if len(set(widths)) != len(widths):
                raise SpaceError(
                    f"stages[{index}].width_mult {list(stage.width_mult.values)} give repeated "
                    f"channel counts {widths} with channel_divisor={self.channel_divisor}; "
                    "use other multipliers or a smaller divisor"
                )

    @property
    def has_precision(self) -> bool:
        """Whether any stage may run in other than fp32 (then genomes carry precision genes)."""
        return any(stage.has_precision for stage in self.stages)

    @property
    def has_block_type(self) -> bool:
        """Whether any stage may use other than mbconv blocks (then genomes carry block-type
        genes)."""
        return any(stage.has_block_type for stage in self.stages)

    @property
    def has_se_choice(self) -> bool:
        """Whether any stage chooses its squeeze-excitation (then genomes carry se genes)."""
        return any(stage.has_se_choice for stage in self.stages)

    @property
    def has_activation_choice(self) -> bool:
        """Whether any stage chooses its activation (then genomes carry activation genes)."""
        return any(stage.has_activation_choice for stage in self.stages)

    def downsample_range(self, num_stages: int) -> tuple[int, int]:
        """The fewest and most stride-2 stages possible among the first ``num_stages``."""
        used = self.stages[:num_stages]
        low = sum(1 for s in used if 1 not in s.stride)
        high = sum(1 for s in used if 2 in s.stride)
        return low, high

    def stage_channels(self, index: int, width_mult: float) -> int:
        """Output channels of stage ``index`` at ``width_mult``."""
        return make_divisible(self.stages[index].base_channels * width_mult, self.channel_divisor)

    def expanded_channels(self, in_channels: int, expand_ratio: float) -> int:
        """Hidden channels of an inverted-residual block."""
        return make_divisible(round(in_channels * expand_ratio), self.channel_divisor)

    def se_channels(self, expanded: int) -> int:
        """Hidden channels of a squeeze-excitation module (reduction 4)."""
        return make_divisible(expanded // 4, self.channel_divisor)

    # Thin methods over the functions of the other modules, for convenience.

    def validate(self, arch: Arch) -> None:
        """Raise :class:`~search_spaces.ArchError` unless ``arch`` is a subnet of this space."""
        from search_spaces.validate import validate

        validate(self, arch)

    def size(self) -> int:
        """The exact number of distinct subnets."""
        from search_spaces.validate import size

        return size(self)

    def sample(self, rng: np.random.Generator, elastic: Collection[str] | None = None) -> Arch:
        """One subnet, each gene uniform over its choices (only ``elastic`` dimensions vary
        when given; see :func:`~search_spaces.sample_genomes`)."""
        from search_spaces.genome import decode_genome, sample_genomes

        return decode_genome(self, sample_genomes(self, rng, 1, elastic)[0])

    def largest(self) -> Arch:
        """The subnet with the largest value of every choice (fewest downsamples, most bits,
        fused blocks, squeeze-excitation and hard-swish where a stage may have them)."""
        return self._extreme(largest=True)

    def smallest(self) -> Arch:
        """The subnet with the smallest value of every choice (most downsamples, fewest bits)."""
        return self._extreme(largest=False)

    def _extreme(self, *, largest: bool) -> Arch:
        from search_spaces.arch import Arch, StageArch

        pick = max if largest else min
        num_stages = int(pick(self.num_stages.values))
        used = self.stages[:num_stages]
        # The largest downsamples as few times and as late as possible; the smallest as many
        # times and as early as possible.
        budget = self.min_downsamples if largest else self.max_downsamples
        optional = max(budget - self.downsample_range(num_stages)[0], 0)
        strides = [2 if 1 not in spec.stride else 1 for spec in used]
        order = range(num_stages - 1, -1, -1) if largest else range(num_stages)
        for index in order:
            if optional and strides[index] == 1 and 2 in used[index].stride:
                strides[index], optional = 2, optional - 1
        stages = []
        for spec, stride in zip(used, strides, strict=True):
            depth = int(pick(spec.depth.values))
            # By bit width: as strings "int8" > "fp32".
            precision = pick(spec.precision.values, key=PRECISION_BITS.__getitem__)
            block_type = pick(spec.block_type.values, key=BLOCK_TYPE_CODES.__getitem__)
            # Squeeze-excitation and hard-swish in the largest, where a stage may choose.
            se = pick(spec.se.values) if spec.has_se_choice else None
            act = spec.activation.values
            chosen = pick(act, key=ACTIVATION_CODES.__getitem__) if len(act) > 1 else None
            stages.append(
                StageArch(
                    width_mult=pick(spec.width_mult.values),
                    stride=stride,
                    kernel_size=(pick(spec.kernel_size.values),) * depth,
                    expand_ratio=(pick(spec.expand_ratio.values),) * depth,
                    precision=precision,
                    block_type=block_type,
                    se=se,
                    activation=chosen,
                )
            )
        return Arch(resolution=pick(self.resolution.values), stages=tuple(stages))

    def encode(self, arch: Arch) -> np.ndarray:
        """Fixed-length numeric features of ``arch`` for predictors."""
        from search_spaces.genome import encode_genomes, to_genome

        return encode_genomes(self, to_genome(self, arch)[None, :])[0]

    def flops(self, arch: Arch) -> int:
        """Multiply-adds of one forward pass at batch 1."""
        from search_spaces.cost import flops

        return flops(self, arch)

    def params(self, arch: Arch) -> int:
        """Number of learnable parameters."""
        from search_spaces.cost import params

        return params(self, arch)

    def weight_bytes(self, arch: Arch) -> int:
        """Bytes of the weights, each block's parameters at its precision's bit width."""
        from search_spaces.cost import weight_bytes

        return weight_bytes(self, arch)
