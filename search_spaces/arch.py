"""One subnetwork of a space, as plain data with a JSON form.

An :class:`Arch` lists only what is used: its stages are the first ``num_stages`` stages of the
space, and each stage lists one kernel size and one expand ratio per block, so two different
``Arch`` values are always two different networks. A stage's ``precision`` is written to JSON
only when it is not the default fp32, and its ``block_type`` only when it is not the default
mbconv, so the JSON of an fp32 mbconv arch is as before either existed. ``se`` and
``activation`` are given (and written) only for stages whose space lets a subnet choose them;
elsewhere they are None and the stage's one value applies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from search_spaces.errors import ArchError
from search_spaces.spec import ACTIVATIONS, BLOCK_TYPES, PRECISIONS

__all__ = ["Arch", "StageArch"]


def _number(where: str, value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else kind):
        expected = "an integer" if kind is int else "a number"
        raise ArchError(f"{where} must be {expected}, got {value!r}")
    return value


def _name(where: str, value: Any, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ArchError(f"{where} must be one of {list(allowed)}, got {value!r}")


def _se(where: str, value: Any) -> None:
    if value is not None and not isinstance(value, bool):
        raise ArchError(f"{where} must be true or false, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class StageArch:
    """The chosen values of one stage; its depth is the number of blocks listed."""

    width_mult: float
    stride: int
    kernel_size: tuple[int, ...]
    expand_ratio: tuple[float, ...]
    precision: str = "fp32"
    block_type: str = "mbconv"
    se: bool | None = None  # None: the stage's one value (see the module docstring)
    activation: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kernel_size", tuple(self.kernel_size))
        object.__setattr__(self, "expand_ratio", tuple(self.expand_ratio))
        _name("precision", self.precision, PRECISIONS)
        _name("block_type", self.block_type, BLOCK_TYPES)
        _se("se", self.se)
        if self.activation is not None:
            _name("activation", self.activation, ACTIVATIONS)
        if not self.kernel_size:
            raise ArchError("a stage needs at least one block (kernel_size is empty)")
        if len(self.kernel_size) != len(self.expand_ratio):
            raise ArchError(
                f"kernel_size lists {len(self.kernel_size)} blocks but expand_ratio lists "
                f"{len(self.expand_ratio)}; give one value per block in both"
            )

    @property
    def depth(self) -> int:
        return len(self.kernel_size)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "width_mult": self.width_mult,
            "stride": self.stride,
            "kernel_size": list(self.kernel_size),
            "expand_ratio": list(self.expand_ratio),
        }
        if self.precision != "fp32":  # so fp32 archs keep their JSON, digests and cache keys
            data["precision"] = self.precision
        if self.block_type != "mbconv":
            data["block_type"] = self.block_type
        if self.se is not None:
            data["se"] = self.se
        if self.activation is not None:
            data["activation"] = self.activation
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "stage") -> StageArch:
        if not isinstance(data, Mapping):
            raise ArchError(f"{where} must be an object, got {type(data).__name__}")
        expected = {"width_mult", "stride", "kernel_size", "expand_ratio"}
        missing = sorted(expected - set(data))
        if missing:
            raise ArchError(f"{where} is missing {', '.join(missing)}")
        unknown = sorted(set(data) - expected - {"precision", "block_type", "se", "activation"})
        if unknown:
            raise ArchError(f"{where} has unknown keys {', '.join(unknown)}")
        precision = data.get("precision", "fp32")
        _name(f"{where}.precision", precision, PRECISIONS)
        block_type = data.get("block_type", "mbconv")
        _name(f"{where}.block_type", block_type, BLOCK_TYPES)
        se = data.get("se")
        _se(f"{where}.se", se)
        activation = data.get("activation")
        if activation is not None:
            _name(f"{where}.activation", activation, ACTIVATIONS)
        kernels = data["kernel_size"]
        expands = data["expand_ratio"]
        for key, values in (("kernel_size", kernels), ("expand_ratio", expands)):
            if not isinstance(values, (list, tuple)):
                raise ArchError(f"{where}.{key} must be a list with one value per block")
        try:
            return cls(
                width_mult=_number(f"{where}.width_mult", data["width_mult"], float),
                stride=_number(f"{where}.stride", data["stride"], int),
                kernel_size=tuple(
                    _number(f"{where}.kernel_size[{i}]", k, int) for i, k in enumerate(kernels)
                ),
                expand_ratio=tuple(
                    _number(f"{where}.expand_ratio[{i}]", e, float) for i, e in enumerate(expands)
                ),
                precision=precision,
                block_type=block_type,
                se=se,
                activation=activation,
            )
        except ArchError as exc:
            message = str(exc)
            if not message.startswith(where):
                message = f"{where}: {message}"
            raise ArchError(message) from None


@dataclass(frozen=True, kw_only=True)
class Arch:
    """A subnetwork: the input resolution and the used stages, in order."""

    resolution: int
    stages: tuple[StageArch, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        if not self.stages:
            raise ArchError("an arch needs at least one stage")

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(stage.depth for stage in self.stages)

    def to_dict(self) -> dict[str, Any]:
        return {"resolution": self.resolution, "stages": [s.to_dict() for s in self.stages]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Arch:
        if not isinstance(data, Mapping):
            raise ArchError(f"an arch must be a JSON object, got {type(data).__name__}")
        missing = sorted({"resolution", "stages"} - set(data))
        if missing:
            raise ArchError(f"arch is missing {', '.join(missing)}")
        unknown = sorted(set(data) - {"resolution", "stages"})
        if unknown:
            raise ArchError(f"arch has unknown keys {', '.join(unknown)}")
        stages = data["stages"]
        if not isinstance(stages, (list, tuple)):
            raise ArchError("arch.stages must be a list of stage objects")
        return cls(
            resolution=_number("resolution", data["resolution"], int),
            stages=tuple(StageArch.from_dict(s, f"stages[{i}]") for i, s in enumerate(stages)),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Arch:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ArchError(f"arch is not valid JSON: {exc}") from None
        return cls.from_dict(data)
