"""The one entry point for data: :func:`load_dataset`.

It detects the source's format, reads it (:mod:`nas.data.cifar`, :mod:`nas.data.idx`,
:mod:`nas.data.image_folder`, :mod:`nas.data.npz`, Fashion-MNIST by name
(:mod:`nas.data.fashion_mnist`) or the built-in :mod:`nas.data.digits`), converts channels,
resizes, splits by seed and normalises with the train split's statistics.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.data.cifar import find_cifar_directory, read_cifar
from nas.data.dataset import Dataset, FloatArray, LabelArray, check_resolution, resize_images
from nas.data.digits import read_digits
from nas.data.fashion_mnist import read_fashion_mnist
from nas.data.idx import find_idx_files, read_idx
from nas.data.image_folder import read_image_folder
from nas.data.npz import read_npz
from nas.data.raw import RawData, describe_exception
from nas.data.splits import channel_statistics, holdout_count, normalise, split_off
from nas.errors import DataError

__all__ = ["ACCEPTED_FORMATS", "DATASET_NAMES", "LoadOptions", "build_dataset", "load_dataset"]

logger = logging.getLogger(__name__)

DATASET_NAMES: tuple[str, ...] = ("fashion-mnist", "digits")

ACCEPTED_FORMATS = (
    "a named data set (fashion-mnist, digits), a CIFAR-10 python batches directory, a "
    "directory of MNIST idx files, a directory with one sub-directory of images per class, or "
    "an .npz file"
)

# ITU-R 601 luma weights, as Pillow's convert("L") uses.
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)
_MAX_SEED = 2**32 - 1


@dataclass(frozen=True, kw_only=True)
class LoadOptions:
    """How :func:`load_dataset` resizes, splits and converts a source."""

    resolution: int
    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    grayscale: bool | None = None

    def __post_init__(self) -> None:
        check_resolution(self.resolution)
        if (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, int | np.integer)
            or not 0 <= int(self.seed) <= _MAX_SEED
        ):
            raise DataError(f"seed must be an integer from 0 to {_MAX_SEED}, got {self.seed!r}")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 < float(value) < 1
            ):
                raise DataError(
                    f"{name} must be a number strictly between 0 and 1, got {value!r}; "
                    f"e.g. {name}=0.1"
                )
        if self.val_fraction + self.test_fraction >= 1:
            raise DataError(
                f"val_fraction + test_fraction must be below 1 to leave training data, got "
                f"{self.val_fraction} + {self.test_fraction}"
            )
        if self.grayscale is not None and not isinstance(self.grayscale, bool):
            raise DataError(f"grayscale must be True, False or None, got {self.grayscale!r}")


def load_dataset(
    source: str,
    *,
    resolution: int,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    grayscale: bool | None = None,
    expect: tuple[int, int, str] | None = None,
) -> Dataset:
    """Load ``source`` (a name in :data:`DATASET_NAMES` or a path) as a normalised Dataset.

    ``expect=(channels, classes, who)`` checks the source against what ``who`` (say, a space)
    needs before anything is resized, so a mismatch costs no time or memory.

    Images are resized to ``resolution`` x ``resolution``. Sources without a test split are
    divided into train/val/test by ``val_fraction``/``test_fraction`` of the whole set; sources
    with one keep it and carve ``val_fraction`` of their train split out for validation. Splits
    are stratified and depend only on ``seed``. ``grayscale=None`` keeps the source's channels;
    True converts to 1 channel, False to 3.
    """
    options = LoadOptions(
        resolution=resolution,
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        grayscale=grayscale,
    )
    raw, name = read_source(str(source), options=options)
    if expect is not None:
        channels = 1 if options.grayscale else 3 if options.grayscale is False else None
        channels = channels or raw.x_train.shape[1]
        classes = len(_class_names(raw))
        if (channels, classes) != expect[:2]:
            raise DataError(
                f"data {name!r} has {channels} channel(s) and {classes} classes but {expect[2]} "
                f"expects {expect[0]} and {expect[1]}; pick a matching data set or space"
            )
    return build_dataset(raw, name=name, options=options)


def read_source(source: str, *, options: LoadOptions) -> tuple[RawData, str]:
    """Detect the format of ``source`` and read it; returns the data and a data set name."""
    if source == "fashion-mnist":
        return read_fashion_mnist(), source
    if source in DATASET_NAMES:
        return read_digits(), source
    path = Path(source).expanduser()
    try:
        return _read_path(path, options=options)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({describe_exception(exc)})") from exc


def _read_path(path: Path, *, options: LoadOptions) -> tuple[RawData, str]:
    if not path.exists():
        raise DataError(f"{path}: no such file or directory; pass {ACCEPTED_FORMATS}")
    name = path.stem if path.is_file() else path.resolve().name
    name = name or str(path)
    if path.is_file():
        if path.suffix.lower() == ".npz":
            return read_npz(path), name
        raise DataError(f"{path}: unsupported file type; expected {ACCEPTED_FORMATS}")
    if not path.is_dir():
        raise DataError(f"{path}: neither a file nor a directory; expected {ACCEPTED_FORMATS}")
    if not any(not entry.name.startswith(".") for entry in path.iterdir()):
        raise DataError(f"{path}: the directory is empty; expected {ACCEPTED_FORMATS}")
    cifar_directory = find_cifar_directory(path)
    if cifar_directory is not None:
        return read_cifar(cifar_directory), name
    if any(found is not None for found in find_idx_files(path).values()):
        return read_idx(path), name
    raw = read_image_folder(path, resolution=options.resolution, grayscale=options.grayscale)
    return raw, name


def _class_names(raw: RawData) -> tuple[str, ...]:
    largest = max(int(labels.max()) for _, _, labels in raw.splits())
    if raw.class_names is None:
        return tuple(str(index) for index in range(largest + 1))
    if largest >= len(raw.class_names):
        raise DataError(
            f"{raw.location}: labels out of range: found label {largest} but only "
            f"{len(raw.class_names)} class names; labels must lie in 0..{len(raw.class_names) - 1}"
        )
    return raw.class_names


def _convert_channels(images: FloatArray, grayscale: bool | None) -> FloatArray:
    channels = images.shape[1]
    if grayscale is True and channels == 3:
        weights = np.asarray(_LUMA_WEIGHTS, dtype=np.float32).reshape(1, 3, 1, 1)
        return (images * weights).sum(axis=1, keepdims=True, dtype=np.float32)
    if grayscale is False and channels == 1:
        return np.repeat(images, 3, axis=1)
    return images


def _prepare(images: FloatArray, options: LoadOptions) -> FloatArray:
    return resize_images(_convert_channels(images, options.grayscale), options.resolution)


def build_dataset(raw: RawData, *, name: str, options: LoadOptions) -> Dataset:
    """Convert channels, resize, split and normalise ``raw`` into a :class:`Dataset`."""
    class_names = _class_names(raw)
    if len(class_names) < 2:
        raise DataError(
            f"{raw.location}: found only {len(class_names)} class; classification needs at "
            f"least 2 classes"
        )
    rng = np.random.default_rng(options.seed)
    test_seed, val_seed = (int(value) for value in rng.integers(0, _MAX_SEED, size=2))
    x_train, y_train = _prepare(raw.x_train, options), raw.y_train
    x_val: FloatArray | None = None
    y_val: LabelArray | None = raw.y_val
    if raw.x_val is not None:
        x_val = _prepare(raw.x_val, options)
    if raw.x_test is not None and raw.y_test is not None:
        x_test, y_test = _prepare(raw.x_test, options), raw.y_test
        val_count = holdout_count(len(y_train), options.val_fraction)
    else:
        total = len(y_train)
        test_count = holdout_count(total, options.test_fraction)
        val_count = holdout_count(total, options.val_fraction)
        if total - test_count - (0 if x_val is not None else val_count) < 1:
            raise DataError(
                f"{raw.location}: too few samples ({total}) for val_fraction="
                f"{options.val_fraction} and test_fraction={options.test_fraction}; "
                f"add data (at least 3 images) or lower the fractions"
            )
        kept, held_out = split_off(
            y_train, holdout=test_count, seed=test_seed, location=raw.location, what="test"
        )
        x_test, y_test = x_train[held_out], y_train[held_out]
        x_train, y_train = x_train[kept], y_train[kept]
    if x_val is None or y_val is None:
        kept, held_out = split_off(
            y_train, holdout=val_count, seed=val_seed, location=raw.location, what="validation"
        )
        x_val, y_val = x_train[held_out], y_train[held_out]
        x_train, y_train = x_train[kept], y_train[kept]
    mean, std = channel_statistics(x_train)
    dataset = Dataset(
        name=name,
        x_train=normalise(x_train, mean, std),
        y_train=y_train,
        x_val=normalise(x_val, mean, std),
        y_val=y_val,
        x_test=normalise(x_test, mean, std),
        y_test=y_test,
        num_classes=len(class_names),
        class_names=class_names,
        mean=mean,
        std=std,
    )
    logger.info("loaded %s (format %s from %s)", dataset.summary(), raw.format, raw.location)
    return dataset
