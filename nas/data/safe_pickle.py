"""A restricted unpickler for data files such as the CIFAR python batches.

Plain :func:`pickle.load` runs whatever callables a file names, so a crafted data file could
run arbitrary code. :class:`SafeUnpickler` only resolves the few globals that numpy arrays and
plain containers need; any other global is refused with a :class:`DataError`.
"""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path
from typing import Any

from nas.data.raw import describe_exception
from nas.errors import DataError

__all__ = ["ALLOWED_GLOBALS", "SafeUnpickler", "load_pickle"]

ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("__builtin__", "set"),
        ("__builtin__", "frozenset"),
    }
)

# numpy 2 renamed numpy.core to numpy._core; the old name still imports but warns.
_HAS_NUMPY_PRIVATE_CORE = importlib.util.find_spec("numpy._core") is not None


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ALLOWED_GLOBALS`."""

    def __init__(self, file: Any, *, location: str, encoding: str = "bytes") -> None:
        super().__init__(file, encoding=encoding)
        self.location = location

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise DataError(
                f"{self.location}: refused to load the global {module}.{name} from this "
                f"pickle; data files may only hold numpy arrays, lists, dicts, numbers and "
                f"strings (is this really a data file? re-save it or check where it came from)"
            )
        if _HAS_NUMPY_PRIVATE_CORE and module.startswith("numpy.core."):
            module = "numpy._core." + module.removeprefix("numpy.core.")
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise DataError(
            f"{self.location}: the pickle refers to a persistent object, which data files "
            f"never need; re-save the file with plain numpy arrays"
        )


def load_pickle(path: Path, *, encoding: str = "bytes") -> Any:
    """Load ``path`` with :class:`SafeUnpickler`, wrapping every failure in :class:`DataError`.

    ``encoding="bytes"`` reads Python 2 ``str`` objects (as in the CIFAR batches) as bytes.
    """
    location = str(path)
    try:
        with path.open("rb") as handle:
            return SafeUnpickler(handle, location=location, encoding=encoding).load()
    except DataError:
        raise
    except OSError as exc:
        raise DataError(f"{location}: cannot read the file ({describe_exception(exc)})") from exc
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        ImportError,
        MemoryError,
        RecursionError,
    ) as exc:
        raise DataError(
            f"{location}: corrupt or truncated pickle ({describe_exception(exc)}); "
            f"replace the file with a fresh copy"
        ) from exc
