"""Model factories named by ``package.module:function`` or ``path/to/file.py:function``.

A factory builds the original (unpruned) model without arguments; it is how a ``state_dict``
becomes a model again, and how a pruned model is rebuilt before its layers are reshaped.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from nas.errors import UserError, first_line

__all__ = ["build_from_factory", "factory_name", "resolve_factory"]


def _load_file_module(file: Path, spec: str) -> Any:
    if not file.is_file():
        raise UserError(f"cannot import factory {spec!r}: {file} does not exist")
    name = f"_compress_factory_{abs(hash(str(file.resolve())))}"
    module_spec = importlib.util.spec_from_file_location(name, file)
    if module_spec is None or module_spec.loader is None:
        raise UserError(f"cannot import factory {spec!r}: {file} is not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # the user's file may raise anything
        sys.modules.pop(name, None)
        raise UserError(f"cannot import factory {spec!r}: {first_line(exc)}") from None
    return module


def resolve_factory(spec: str) -> Callable[[], Any]:
    """The callable named by ``package.module:function`` or ``path/to/file.py:function``."""
    if not isinstance(spec, str) or ":" not in spec:
        raise UserError(
            f"factory {spec!r} must be package.module:function or path/to/file.py:function"
        )
    location, _, attribute = spec.rpartition(":")
    if not location or not attribute:
        raise UserError(
            f"factory {spec!r} must be package.module:function or path/to/file.py:function"
        )
    if location.endswith(".py") or "/" in location or "\\" in location:
        module = _load_file_module(Path(location), spec)
    else:
        try:
            module = importlib.import_module(location)
        except Exception as exc:  # ImportError, or anything the module raises on import
            raise UserError(f"cannot import factory {spec!r}: {first_line(exc)}") from None
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise UserError(f"cannot import factory {spec!r}: {location} has no {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise UserError(f"factory {spec!r} is not callable")
    return target


def build_from_factory(spec: str) -> nn.Module:
    """Call the factory ``spec`` without arguments; it must return an ``nn.Module``."""
    function = resolve_factory(spec)
    try:
        model = function()
    except Exception as exc:  # the user's code may raise anything
        raise UserError(f"factory {spec!r} failed: {first_line(exc)}") from None
    if not isinstance(model, nn.Module):
        raise UserError(f"factory {spec!r} returned {type(model).__name__}, not a torch nn.Module")
    return model


def factory_name(factory: str | Callable[[], Any]) -> str:
    """The ``module:qualname`` string of a factory given as a string or a callable."""
    if isinstance(factory, str):
        return factory
    module = getattr(factory, "__module__", None)
    qualname = getattr(factory, "__qualname__", None)
    if not module or not qualname or "<" in qualname or module == "__main__":
        raise UserError(
            f"factory {factory!r} cannot be named for reloading; pass it as "
            "'package.module:function' instead"
        )
    return f"{module}:{qualname}"
