"""Unlabelled images of a model's input shape, for models that are not image classifiers.

Pruning (example inputs, Taylor calibration), output distillation and int8 calibration need
images of the model's input shape but no labels. :class:`Images` holds train and test images
of any ``(C, H, W)``, square or not; :meth:`Images.from_dataset` takes them from a labelled
:class:`nas.data.Dataset`, and :func:`random_images` draws standard-normal images (only when
the user asks for them: they say nothing about accuracy). Both kinds have ``name``,
``x_train``, ``x_test`` and ``image_shape``, so code that only reads images accepts either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nas.data import Dataset
from nas.errors import UserError

__all__ = ["Data", "Images", "labels_of", "random_images"]


@dataclass(frozen=True, kw_only=True, eq=False)
class Images:
    """Train and test images, float32 ``(N, C, H, W)``, without labels."""

    name: str
    x_train: np.ndarray = field(repr=False)
    x_test: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        for split, images in (("train", self.x_train), ("test", self.x_test)):
            if images.ndim != 4 or images.dtype != np.float32:
                raise UserError(
                    f"{self.name}: x_{split} must be a float32 (N, C, H, W) array, got "
                    f"{images.dtype} with shape {images.shape}"
                )
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise UserError(
                f"{self.name}: train images are {self.x_train.shape[1:]} but test images are "
                f"{self.x_test.shape[1:]}"
            )
        if len(self.x_train) == 0:
            raise UserError(f"{self.name}: there are no training images")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of one image."""
        _, channels, height, width = self.x_train.shape
        return (int(channels), int(height), int(width))

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> Images:
        """The images of a labelled data set, without their labels."""
        return cls(name=dataset.name, x_train=dataset.x_train, x_test=dataset.x_test)


# What compression reads images from: a labelled data set, or images alone.
Data = Dataset | Images


def labels_of(data: Data) -> Dataset | None:
    """The labelled data set behind ``data``, or None for images without labels."""
    return data if isinstance(data, Dataset) else None


def random_images(
    shape: tuple[int, int, int], *, train: int = 256, test: int = 64, seed: int = 0
) -> Images:
    """Standard-normal images of ``shape`` (like normalised data), seeded; no labels."""
    if len(shape) != 3 or any(isinstance(v, bool) or int(v) < 1 for v in shape):
        raise UserError(f"an input shape is (channels, height, width), got {shape}")
    if train < 1 or test < 1:
        raise UserError(f"need at least one train and one test image, got {train} and {test}")
    rng = np.random.default_rng(seed)
    size = tuple(int(v) for v in shape)
    return Images(
        name=f"random {'x'.join(map(str, size))}",
        x_train=rng.standard_normal((train, *size), dtype=np.float32),
        x_test=rng.standard_normal((test, *size), dtype=np.float32),
    )
