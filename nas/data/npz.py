"""Reader for ``.npz`` archives of images and labels.

Accepted layouts: ``x_train, y_train, x_test, y_test`` (optionally ``x_val, y_val``), or ``x, y``
(split by seed). An optional ``class_names`` string array names the classes. Images may be NHW
(one channel), NHWC or NCHW with 1 or 3 channels; uint8 (0..255) or float (0..1, or 0..255).
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib.npyio import NpzFile

from nas.data.raw import RawData, describe_exception, labels_from, scale_to_unit
from nas.errors import DataError

__all__ = ["read_npz", "to_nchw"]

logger = logging.getLogger(__name__)

_CHANNEL_COUNTS = (1, 3)
_SPLIT_KEYS = ("x_train", "y_train", "x_test", "y_test")
_VAL_KEYS = ("x_val", "y_val")
_WHOLE_KEYS = ("x", "y")
_NAMES_KEY = "class_names"


def to_nchw(images: np.ndarray, *, location: str, key: str) -> np.ndarray:
    """Reshape NHW, NHWC or NCHW images (1 or 3 channels) to NCHW; NCHW wins ties."""
    if images.ndim == 3:
        return images[:, np.newaxis, :, :]
    if images.ndim == 4:
        if images.shape[1] in _CHANNEL_COUNTS:
            return images
        if images.shape[3] in _CHANNEL_COUNTS:
            return images.transpose(0, 3, 1, 2)
    raise DataError(
        f"{location}: '{key}' has shape {images.shape}; expected NHW, NHWC or NCHW images "
        f"with 1 or 3 channels"
    )


def _load_arrays(path: Path) -> dict[str, np.ndarray]:
    location = str(path)
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, NpzFile):
            raise DataError(
                f"{location}: holds a single array, not an .npz archive of named arrays; "
                f"save it with numpy.savez(path, x_train=..., y_train=..., ...)"
            )
        with loaded as archive:
            return {key: np.asarray(archive[key]) for key in archive.files}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise DataError(
            f"{location}: cannot read the .npz archive ({describe_exception(exc)}); "
            f"re-save it with numpy.savez without object arrays"
        ) from exc


def _class_names(arrays: dict[str, np.ndarray], location: str) -> tuple[str, ...] | None:
    if _NAMES_KEY not in arrays:
        return None
    names = arrays[_NAMES_KEY]
    if names.ndim != 1 or names.size == 0 or names.dtype.kind not in "US":
        raise DataError(
            f"{location}: '{_NAMES_KEY}' must be a non-empty 1-D array of strings, "
            f"got {names.dtype} with shape {names.shape}"
        )
    return tuple(
        name.decode("utf-8", errors="replace") if isinstance(name, bytes) else str(name)
        for name in names.tolist()
    )


def read_npz(path: Path) -> RawData:
    """Read images and labels from the ``.npz`` archive at ``path``."""
    location = str(path)
    arrays = _load_arrays(path)
    if all(key in arrays for key in _SPLIT_KEYS):
        image_keys = ["x_train", "x_test"]
        has_val = any(key in arrays for key in _VAL_KEYS)
        if has_val:
            missing_val = [key for key in _VAL_KEYS if key not in arrays]
            if missing_val:
                raise DataError(
                    f"{location}: has {'x_val' if 'x_val' in arrays else 'y_val'} but not "
                    f"{missing_val[0]}; store both x_val and y_val, or neither"
                )
            image_keys.insert(1, "x_val")
        layout = "split"
    elif all(key in arrays for key in _WHOLE_KEYS):
        image_keys = ["x"]
        layout = "whole"
    else:
        found = ", ".join(sorted(arrays)) or "nothing"
        raise DataError(
            f"{location}: .npz must hold x_train, y_train, x_test, y_test (optionally x_val, "
            f"y_val) or x, y; found {found}"
        )
    shaped = {key: to_nchw(arrays[key], location=location, key=key) for key in image_keys}
    # One scale decision for the whole file, so no split ends up scaled differently.
    float_maxima = [
        float(images.max())
        for images in shaped.values()
        if images.size and np.issubdtype(images.dtype, np.floating)
    ]
    values_up_to_255 = bool(float_maxima) and max(float_maxima) > 1
    scaled = {
        key: scale_to_unit(images, location=location, values_up_to_255=values_up_to_255)
        for key, images in shaped.items()
    }
    labels = {
        key: labels_from(arrays["y" + key[1:]], location=location, what=f"'y{key[1:]}'")
        for key in image_keys
    }
    class_names = _class_names(arrays, location)
    logger.info(
        "read %s from %s: %s",
        "split arrays" if layout == "split" else "arrays x, y",
        location,
        ", ".join(f"{key} {images.shape}" for key, images in shaped.items()),
    )
    if layout == "whole":
        return RawData(
            format="npz",
            location=location,
            x_train=scaled["x"],
            y_train=labels["x"],
            class_names=class_names,
        )
    return RawData(
        format="npz",
        location=location,
        x_train=scaled["x_train"],
        y_train=labels["x_train"],
        x_val=scaled.get("x_val"),
        y_val=labels.get("x_val"),
        x_test=scaled["x_test"],
        y_test=labels["x_test"],
        class_names=class_names,
    )
