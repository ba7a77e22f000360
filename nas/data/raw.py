"""What a format reader returns, and helpers the readers share.

A reader turns a file or directory into :class:`RawData`: images scaled to [0, 1] as float32
NCHW arrays (not yet resized, split or normalised) and int64 labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nas.data.dataset import FloatArray, LabelArray
from nas.errors import DataError

__all__ = ["RawData", "describe_exception", "labels_from", "one_line", "scale_to_unit"]


def one_line(text: str) -> str:
    """Collapse all whitespace (newlines included) to single spaces."""
    return " ".join(text.split())


def describe_exception(exc: BaseException) -> str:
    """A one-line description of a low-level exception, for wrapping into :class:`DataError`."""
    message = one_line(str(exc))
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


@dataclass(frozen=True, kw_only=True, eq=False)
class RawData:
    """Images in [0, 1] (float32 NCHW) and labels (int64) as read from a source.

    ``x_test``/``y_test`` are None when the source has no test split (then everything in
    ``x_train`` is split by seed); ``x_val``/``y_val`` are None when validation images must be
    carved from the train split. ``class_names`` is None when the source does not name its
    classes (then classes are ``"0"``, ``"1"``, ... up to the largest label).
    """

    format: str
    location: str
    x_train: FloatArray = field(repr=False)
    y_train: LabelArray = field(repr=False)
    x_val: FloatArray | None = field(default=None, repr=False)
    y_val: LabelArray | None = field(default=None, repr=False)
    x_test: FloatArray | None = field(default=None, repr=False)
    y_test: LabelArray | None = field(default=None, repr=False)
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        pairs = (
            ("train", self.x_train, self.y_train),
            ("val", self.x_val, self.y_val),
            ("test", self.x_test, self.y_test),
        )
        for split, images, labels in pairs:
            if (images is None) != (labels is None):
                raise DataError(
                    f"{self.location}: {split} images and labels must be given together"
                )
            if images is None or labels is None:
                continue
            if images.ndim != 4:
                raise DataError(
                    f"{self.location}: {split} images must be NCHW, got shape {images.shape}"
                )
            if images.shape[0] != labels.shape[0]:
                raise DataError(
                    f"{self.location}: {images.shape[0]} {split} images but {labels.shape[0]} "
                    f"{split} labels; every image needs exactly one label"
                )
            if images.shape[0] == 0:
                raise DataError(
                    f"{self.location}: the {split} split holds no images; "
                    f"add images or use another source"
                )
            if images.shape[1:] != self.x_train.shape[1:]:
                raise DataError(
                    f"{self.location}: {split} images have shape {images.shape[1:]} but train "
                    f"images have {self.x_train.shape[1:]}; all splits must match"
                )

    def splits(self) -> list[tuple[str, FloatArray, LabelArray]]:
        """The splits that are present, as ``(name, images, labels)``."""
        found: list[tuple[str, FloatArray, LabelArray]] = [("train", self.x_train, self.y_train)]
        if self.x_val is not None and self.y_val is not None:
            found.append(("val", self.x_val, self.y_val))
        if self.x_test is not None and self.y_test is not None:
            found.append(("test", self.x_test, self.y_test))
        return found


def scale_to_unit(
    images: np.ndarray, *, location: str, values_up_to_255: bool = False
) -> FloatArray:
    """Scale uint8 (or integer 0..255) images by 1/255; float images in [0, 1] are kept.

    Float images whose maximum is above 1 (but at most 255) are scaled by 1/255 too, as are
    all float images when ``values_up_to_255`` is set (used to treat several arrays alike).
    """
    if images.dtype == np.bool_ or not (
        np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)
    ):
        raise DataError(
            f"{location}: images must be uint8 or float, got dtype {images.dtype}; "
            f"store pixel values as uint8 0..255 or float 0..1"
        )
    if images.size == 0:
        return images.astype(np.float32)
    low, high = float(images.min()), float(images.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        raise DataError(f"{location}: images contain NaN or infinite values; fix the data")
    if low < 0 or high > 255:
        raise DataError(
            f"{location}: pixel values range from {low:g} to {high:g}; expected 0..255 "
            f"(uint8) or 0..1 (float), not already-normalised values"
        )
    if np.issubdtype(images.dtype, np.integer) or high > 1 or values_up_to_255:
        scaled = images.astype(np.float32)
        scaled /= np.float32(255.0)
        return scaled
    return images.astype(np.float32, copy=False)


def labels_from(values: object, *, location: str, what: str = "labels") -> LabelArray:
    """Convert ``values`` to a 1-D int64 array of non-negative class indices, or raise."""
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"{location}: {what} are not an array of class indices ({describe_exception(exc)})"
        ) from exc
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise DataError(
            f"{location}: {what} must be a 1-D array of class indices, got shape {array.shape}"
        )
    if array.dtype == np.bool_ or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise DataError(
            f"{location}: {what} must be integer class indices, got dtype {array.dtype}"
        )
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise DataError(
                f"{location}: {what} must be whole numbers (class indices), "
                f"found fractional or non-finite values"
            )
    labels = array.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise DataError(
            f"{location}: {what} out of range: found {int(labels.min())}; "
            f"class indices must be 0 or greater"
        )
    return labels
