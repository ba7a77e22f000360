"""The :class:`Dataset` container and image resizing.

A :class:`Dataset` holds the train, validation and test splits as numpy arrays, already
normalised per channel with the train split's statistics, plus what deployment needs to
reproduce that normalisation (``mean`` and ``std`` of the [0, 1]-scaled train images).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as functional

from nas.errors import DataError

__all__ = [
    "MAX_RESOLUTION",
    "MIN_RESOLUTION",
    "Dataset",
    "FloatArray",
    "LabelArray",
    "check_resolution",
    "resize_images",
]

FloatArray = npt.NDArray[np.float32]
LabelArray = npt.NDArray[np.int64]

MIN_RESOLUTION = 4
MAX_RESOLUTION = 1024

# Images resized per chunk, so torch never holds more than one chunk's intermediate tensors.
_RESIZE_CHUNK = 1024


def check_resolution(resolution: int) -> int:
    """Return ``resolution`` if it is an int in [MIN_RESOLUTION, MAX_RESOLUTION], else raise."""
    if (
        isinstance(resolution, bool)
        or not isinstance(resolution, int | np.integer)
        or not MIN_RESOLUTION <= int(resolution) <= MAX_RESOLUTION
    ):
        raise DataError(
            f"resolution must be an integer from {MIN_RESOLUTION} to {MAX_RESOLUTION}, "
            f"got {resolution!r}; pass e.g. resolution=32"
        )
    return int(resolution)


def resize_images(x: np.ndarray, resolution: int) -> FloatArray:
    """Resize NCHW images to ``resolution`` x ``resolution``.

    Uses bilinear interpolation (``align_corners=False``), anti-aliased when downscaling.
    Returns ``x`` itself when it already has that size and is float32.
    """
    resolution = check_resolution(resolution)
    if x.ndim != 4:
        raise DataError(f"resize_images expects NCHW images (4 dimensions), got shape {x.shape}")
    height, width = int(x.shape[2]), int(x.shape[3])
    if height == resolution and width == resolution and x.dtype == np.float32:
        return x
    images = np.ascontiguousarray(x, dtype=np.float32)
    if height == resolution and width == resolution:
        return images
    downscaling = height > resolution or width > resolution
    output = np.empty((images.shape[0], images.shape[1], resolution, resolution), np.float32)
    with torch.no_grad():
        for start in range(0, images.shape[0], _RESIZE_CHUNK):
            chunk = torch.from_numpy(images[start : start + _RESIZE_CHUNK])
            resized = functional.interpolate(
                chunk,
                size=(resolution, resolution),
                mode="bilinear",
                align_corners=False,
                antialias=downscaling,
            )
            output[start : start + _RESIZE_CHUNK] = resized.numpy()
    return output


@dataclass(frozen=True, kw_only=True, eq=False)
class Dataset:
    """Train/validation/test splits of an image classification data set.

    ``x_*`` are float32 NCHW arrays normalised with ``mean`` and ``std`` (per channel, of the
    [0, 1]-scaled train images); ``y_*`` are int64 class indices in ``[0, num_classes)``.
    """

    name: str
    x_train: FloatArray = field(repr=False)
    y_train: LabelArray = field(repr=False)
    x_val: FloatArray = field(repr=False)
    y_val: LabelArray = field(repr=False)
    x_test: FloatArray = field(repr=False)
    y_test: LabelArray = field(repr=False)
    num_classes: int
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.name:
            raise DataError("Dataset.name must not be empty")
        if self.num_classes < 2:
            raise DataError(f"{self.name}: need at least 2 classes, got {self.num_classes}")
        if len(self.class_names) != self.num_classes:
            raise DataError(
                f"{self.name}: {len(self.class_names)} class names for {self.num_classes} classes"
            )
        splits = (
            ("train", self.x_train, self.y_train),
            ("val", self.x_val, self.y_val),
            ("test", self.x_test, self.y_test),
        )
        image_shape = self.x_train.shape[1:] if self.x_train.ndim == 4 else None
        for split, images, labels in splits:
            if images.ndim != 4 or images.dtype != np.float32:
                raise DataError(
                    f"{self.name}: x_{split} must be a float32 NCHW array, "
                    f"got {images.dtype} with shape {images.shape}"
                )
            if images.shape[2] != images.shape[3]:
                raise DataError(
                    f"{self.name}: x_{split} images must be square, got {images.shape[2]}x"
                    f"{images.shape[3]}; resize them with resize_images"
                )
            if images.shape[1:] != image_shape:
                raise DataError(
                    f"{self.name}: x_{split} has image shape {images.shape[1:]} but x_train has "
                    f"{image_shape}; all splits must share channels and resolution"
                )
            if labels.ndim != 1 or labels.dtype != np.int64:
                raise DataError(
                    f"{self.name}: y_{split} must be a 1-D int64 array, "
                    f"got {labels.dtype} with shape {labels.shape}"
                )
            if labels.shape[0] != images.shape[0]:
                raise DataError(
                    f"{self.name}: x_{split} has {images.shape[0]} images but y_{split} has "
                    f"{labels.shape[0]} labels; they must match"
                )
            if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
                raise DataError(
                    f"{self.name}: y_{split} has labels outside [0, {self.num_classes}); "
                    f"labels must be class indices"
                )
        if self.x_train.shape[0] == 0:
            raise DataError(f"{self.name}: the train split is empty")
        channels = self.in_channels
        if len(self.mean) != channels or len(self.std) != channels:
            raise DataError(
                f"{self.name}: mean and std need one value per channel ({channels}), "
                f"got {len(self.mean)} and {len(self.std)}"
            )
        if any(not value > 0 for value in self.std):
            raise DataError(f"{self.name}: std values must be positive, got {self.std}")

    @property
    def in_channels(self) -> int:
        """Number of image channels (1 for grayscale, 3 for RGB)."""
        return int(self.x_train.shape[1])

    @property
    def resolution(self) -> int:
        """Height (== width) of the stored images."""
        return int(self.x_train.shape[2])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of one image."""
        return (self.in_channels, self.resolution, self.resolution)

    def at_resolution(self, resolution: int) -> Dataset:
        """Return a copy whose images are resized to ``resolution`` x ``resolution``.

        Bilinear resizing is affine per channel, so the resized normalised images equal the
        normalised resized images; ``mean`` and ``std`` are kept for deployment.
        """
        resolution = check_resolution(resolution)
        if resolution == self.resolution:
            return self
        return dataclasses.replace(
            self,
            x_train=resize_images(self.x_train, resolution),
            x_val=resize_images(self.x_val, resolution),
            x_test=resize_images(self.x_test, resolution),
        )

    def summary(self) -> str:
        """One line describing the data set, e.g. for the CLI."""
        train, val, test = len(self.y_train), len(self.y_val), len(self.y_test)
        return (
            f"{self.name}: {train + val + test:,} images "
            f"(train {train:,} / val {val:,} / test {test:,}), {self.num_classes} classes, "
            f"{self.in_channels}x{self.resolution}x{self.resolution}"
        )
