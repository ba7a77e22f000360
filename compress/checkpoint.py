"""Loading models to compress, safely, with one-line errors for every mismatch.

Accepted inputs (the format is read from the file's content, not only its name):

* a subnet bundle written by ``nas export --format safetensors``: ``point-000.safetensors``
  (weights, metadata ``{"arch": json}``) next to its card ``point-000.safetensors.json``
  holding ``"space"`` and ``"arch"``; the network is rebuilt with
  :func:`nas.supernet.static.build_network`;
* a compressed model written by :func:`compress.save_pruned` (safetensors plus a JSON graph
  description);
* a ``state_dict`` in ``.safetensors`` or ``.pt``/``.pth`` (read with
  ``torch.load(weights_only=True)`` only) plus a model factory ``package.module:function`` or
  ``path/to/file.py:function`` that builds the (unpruned) model without arguments;
* an ONNX graph (for quantization and measurement only);
* a TorchScript archive (``torch.jit.load``; it can be measured and quantized, not pruned);
* a whole pickled model only with ``trust_checkpoint=True``: unpickling runs arbitrary code.

Input files are only ever read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compress.factories import build_from_factory, factory_name, resolve_factory
from nas.errors import UserError, first_line
from nas.measure.qdq import graph_input_shape
from nas.train.checkpoint import load_weights
from search_spaces import Arch, ArchError, Space, SpaceError, get_space, space_from_dict

__all__ = [
    "MODEL_KINDS",
    "LoadedModel",
    "build_from_factory",
    "factory_name",
    "load_model",
    "load_state_dict_strict",
    "read_card",
    "read_state_dict",
    "resolve_factory",
]

logger = logging.getLogger(__name__)

MODEL_KINDS = ("bundle", "pruned", "state_dict", "onnx", "torchscript", "pickle", "module")
_ACCEPTED = (
    "a subnet bundle (.safetensors with its .json card), a state_dict (.safetensors/.pt/.pth) "
    "with --factory, an ONNX file, a TorchScript archive, or a pickled model with "
    "--trust-checkpoint"
)
_STATE_KEYS = ("state_dict", "model_state_dict", "model", "weights", "net")


@dataclass(frozen=True, kw_only=True, eq=False)
class LoadedModel:
    """A loaded model and what is known about how to rebuild it."""

    path: Path
    kind: str
    module: nn.Module | None = None
    onnx: bytes | None = None
    factory: str | None = None
    space: Space | None = None
    arch: Arch | None = None
    input_shape: tuple[int, int, int] | None = None
    card: dict[str, Any] = field(default_factory=dict)

    def torch_module(self, purpose: str) -> nn.Module:
        """The torch module, or a :class:`UserError` saying why ``purpose`` needs one."""
        if self.module is None:
            raise UserError(
                f"{self.path} is an ONNX model; {purpose} needs a torch model (a subnet bundle, "
                "or weights plus --factory)"
            )
        return self.module

    def prunable_module(self, purpose: str) -> nn.Module:
        """The torch module if it can be trained and pruned (TorchScript cannot)."""
        module = self.torch_module(purpose)
        if self.kind == "torchscript" or isinstance(module, torch.jit.ScriptModule):
            raise UserError(
                f"{self.path} is TorchScript, which cannot be {purpose}; give its state_dict "
                "plus --factory instead"
            )
        return module

    @property
    def rebuildable(self) -> bool:
        """Whether pruned weights can be saved without pickling (a factory or an arch is known)."""
        return self.factory is not None or (self.space is not None and self.arch is not None)


# ---------------------------------------------------------------------------------- weights


def _is_safetensors(head: bytes) -> bool:
    if len(head) < 9:
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return 2 <= length < (1 << 32) and head[8:9] == b"{"


def _sniff(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(16)
    if _is_safetensors(head):
        return "safetensors"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile:  # a truncated torch.save archive is still torch's to explain
            return "torch" if path.suffix in (".pt", ".pth", ".bin", ".ckpt") else "unknown"
        if any("/code/" in name or name.endswith("constants.pkl") for name in names):
            return "torchscript"
        if any(name.endswith("data.pkl") for name in names):
            return "torch"
        return "unknown"
    if path.suffix == ".onnx":
        return "onnx"
    if head[:1] == b"\x80" or path.suffix in (".pt", ".pth", ".bin", ".ckpt"):
        return "torch"
    if path.suffix == ".json" or head.lstrip()[:1] in (b"{", b"["):
        return "json"
    return "unknown"


def _tensor_dict(value: Any) -> dict[str, torch.Tensor] | None:
    if (
        isinstance(value, Mapping)
        and value
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())
    ):
        return dict(value)
    return None


def _torch_state_dict(path: Path, loaded: Any) -> dict[str, torch.Tensor]:
    state = _tensor_dict(loaded)
    if state is None and isinstance(loaded, Mapping):
        for key in _STATE_KEYS:
            state = _tensor_dict(loaded.get(key))
            if state is not None:
                logger.info("%s: using the state_dict under %r", path, key)
                break
    if state is None:
        raise UserError(
            f"{path} is not a model: it holds a {type(loaded).__name__}, not a state_dict of "
            "tensors"
        )
    return state


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file or of a ``.pt``/``.pth`` state_dict (weights only)."""
    file = _existing(path)
    kind = _sniff(file)
    if kind == "safetensors":
        return _read_safetensors(file)
    if kind == "torch":
        return _torch_state_dict(file, _torch_load_weights(file, trust=False))
    raise UserError(f"{file} is not a state_dict file (.safetensors, .pt or .pth)")


def _read_safetensors(file: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(file))
    except Exception as exc:  # SafetensorError and friends
        raise UserError(f"{file} is not a readable safetensors file: {first_line(exc)}") from None


def _safetensors_metadata(file: Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except Exception as exc:
        raise UserError(f"{file} is not a readable safetensors file: {first_line(exc)}") from None


def _torch_load_weights(file: Path, *, trust: bool) -> Any:
    import pickle

    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" not in str(exc):
            raise UserError(f"{file} is not a model file: {first_line(exc)}") from None
        if not trust:
            raise UserError(
                f"{file} holds pickled Python objects (a whole model?), and unpickling can run "
                "arbitrary code; pass --trust-checkpoint if you trust its source, or save its "
                "state_dict and pass --factory"
            ) from None
    except Exception as exc:  # corrupt archives, text files, ...
        raise UserError(
            f"{file} is not a model file (corrupt, truncated or another format: "
            f"{type(exc).__name__}: {first_line(exc)}); expected {_ACCEPTED}"
        ) from None
    logger.warning("unpickling %s with weights_only=False (--trust-checkpoint)", file)
    try:
        return torch.load(file, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise UserError(f"{file} cannot be unpickled: {first_line(exc)}") from None


def load_state_dict_strict(
    model: nn.Module, state: Mapping[str, torch.Tensor], source: str
) -> None:
    """Load ``state`` into ``model``; missing, unexpected or reshaped keys are one line each.
    Keys saved from ``DataParallel`` (all prefixed ``module.``) are accepted."""
    keys = dict(state)
    if (
        keys
        and set(keys).isdisjoint(model.state_dict())
        and all(k.startswith("module.") for k in keys)
    ):
        keys = {k[len("module.") :]: v for k, v in keys.items()}
    load_weights(model, keys, source, target="the model")


# ---------------------------------------------------------------------------------- cards


def read_card(path: Path) -> dict[str, Any] | None:
    """The JSON card next to ``path`` (``path + ".json"``), or None when there is none."""
    card = path.with_name(path.name + ".json")
    if not card.is_file():
        return None
    try:
        data = json.loads(card.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{card} is not a readable JSON card: {first_line(exc)}") from None
    if not isinstance(data, dict):
        raise UserError(f"{card} is not a model card (expected a JSON object)")
    return data


def space_of_card(card: Mapping[str, Any], source: Path) -> Space:
    """The search space a card names (a built-in name, a file, or an inline definition)."""
    try:
        if isinstance(card.get("space_definition"), Mapping):
            return space_from_dict(card["space_definition"])
        name = card.get("space")
        if not isinstance(name, str):
            raise UserError(f"{source}: the card does not name its search space ('space')")
        return get_space(name)
    except (SpaceError, ArchError) as exc:
        raise UserError(f"{source}: {first_line(exc)}") from None


def arch_of_card(card: Mapping[str, Any], source: Path) -> Arch:
    try:
        return Arch.from_dict(card["arch"])
    except KeyError:
        raise UserError(f"{source}: the card has no 'arch'") from None
    except (ArchError, TypeError) as exc:
        raise UserError(f"{source}: bad arch in the card: {first_line(exc)}") from None


def _bundle(file: Path, card: Mapping[str, Any], state: dict[str, torch.Tensor]) -> LoadedModel:
    from nas.supernet.static import build_network

    space = space_of_card(card, file)
    arch = arch_of_card(card, file)
    try:
        network = build_network(space, arch)
    except (SpaceError, ArchError) as exc:
        raise UserError(
            f"{file}: arch does not fit space {space.name}: {first_line(exc)}"
        ) from None
    load_state_dict_strict(network, state, str(file))
    return LoadedModel(
        path=file,
        kind="bundle",
        module=network.eval(),
        space=space,
        arch=arch,
        input_shape=(space.in_channels, arch.resolution, arch.resolution),
        card=dict(card),
    )


# ---------------------------------------------------------------------------------- loading


def _existing(path: str | Path) -> Path:
    file = Path(path)
    if not file.exists():
        raise UserError(f"{file} does not exist")
    if file.is_dir():
        raise UserError(f"{file} is a directory; give a model file ({_ACCEPTED})")
    return file


def onnx_input_shape(graph: bytes) -> tuple[int, int, int] | None:
    """``(C, H, W)`` of the first input of an ONNX graph when those dimensions are fixed."""
    return graph_input_shape(graph)


def _load_onnx(file: Path) -> LoadedModel:
    import onnx

    data = file.read_bytes()
    try:
        model = onnx.load_model_from_string(data)
        onnx.checker.check_model(model)
    except Exception as exc:  # DecodeError, ValidationError
        raise UserError(f"{file} is not a valid ONNX model: {first_line(exc)}") from None
    if not model.graph.node:
        raise UserError(f"{file} is not a model: its ONNX graph has no operators")
    return LoadedModel(path=file, kind="onnx", onnx=data, input_shape=onnx_input_shape(data))


def _load_torchscript(file: Path) -> LoadedModel:
    try:
        module = torch.jit.load(str(file), map_location="cpu")
    except Exception as exc:
        raise UserError(
            f"{file} is not a loadable TorchScript archive: {first_line(exc)}"
        ) from None
    return LoadedModel(path=file, kind="torchscript", module=module.eval())


def _with_factory(
    file: Path, state: dict[str, torch.Tensor], factory: str | None, card: Mapping[str, Any]
) -> LoadedModel:
    if factory is None:
        raise UserError(
            f"{file} holds only weights (a state_dict); pass --factory package.module:function "
            "(or path/to/file.py:function) that builds the model"
        )
    model = build_from_factory(factory)
    load_state_dict_strict(model, state, f"{file} with factory {factory}")
    return LoadedModel(
        path=file, kind="state_dict", module=model.eval(), factory=factory, card=dict(card)
    )


def load_model(
    path: str | Path, *, factory: str | None = None, trust_checkpoint: bool = False
) -> LoadedModel:
    """Load any accepted model file (see the module docstring); never modifies it."""
    file = _existing(path)
    kind = _sniff(file)
    card = read_card(file) or {}
    if kind == "safetensors":
        if card.get("format") == "pruned":
            from compress.serialization import load_pruned

            module = load_pruned(file, factory=factory)
            shape = card.get("input_shape")
            return LoadedModel(
                path=file,
                kind="pruned",
                module=module.eval(),
                factory=card.get("factory") or factory,
                space=space_of_card(card, file) if card.get("arch") else None,
                arch=arch_of_card(card, file) if card.get("arch") else None,
                input_shape=tuple(shape[-3:]) if isinstance(shape, list) else None,
                card=card,
            )
        state = _read_safetensors(file)
        if factory is None and "arch" in card:
            return _bundle(file, card, state)
        if factory is None and "arch" in _safetensors_metadata(file):
            raise UserError(
                f"{file} is a subnet without its card {file.name}.json (which names the space); "
                "keep the card next to the weights"
            )
        return _with_factory(file, state, factory, card)
    if kind == "torchscript":
        return _load_torchscript(file)
    if kind == "onnx":
        return _load_onnx(file)
    if kind == "torch":
        loaded = _torch_load_weights(file, trust=trust_checkpoint)
        if isinstance(loaded, nn.Module):
            return LoadedModel(path=file, kind="pickle", module=loaded.eval(), factory=factory)
        if isinstance(loaded, torch.jit.ScriptModule):  # pragma: no cover - routed above
            return LoadedModel(path=file, kind="torchscript", module=loaded)
        return _with_factory(file, _torch_state_dict(file, loaded), factory, card)
    if kind == "json":
        raise UserError(
            f"{file} is a JSON file, not a model; pass the model file it describes ({_ACCEPTED})"
        )
    with contextlib.suppress(UserError):  # an ONNX graph under another name?
        return _load_onnx(file)
    raise UserError(f"{file}: unknown model format; expected {_ACCEPTED}")
