"""Defaults shared by the CLI, the on-demand pipeline and the experiments (no heavy imports)."""

from __future__ import annotations

from search_spaces.registry import DEFAULT_SPACE

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_DATA",
    "DEFAULT_EPOCHS",
    "DEFAULT_IMAGES_PER_EPOCH",
    "DEFAULT_LR",
    "DEFAULT_NUM_RANDOM",
    "DEFAULT_SCHEDULE",
    "DEFAULT_SPACE",
    "DEFAULT_WARMUP",
]

# Fashion-MNIST rather than the bundled digits: on digits every subnet of the default space
# scores within a few test images of every other, so nothing could be ranked or searched.
DEFAULT_DATA = "fashion-mnist"
# The supernet's default training on Fashion-MNIST, sized to about six minutes on two CPU cores
# (README "Supernet training" gives the measurements behind each number). An epoch draws
# DEFAULT_IMAGES_PER_EPOCH of the 54,000 training images afresh, so a checkpoint comes every
# half minute and the schedule still sees most of the data.
DEFAULT_EPOCHS = 12  # total, warm-up included
DEFAULT_WARMUP = 1  # epochs of the largest subnet alone before shrinking (delayed shrinking)
DEFAULT_IMAGES_PER_EPOCH = 10_000
DEFAULT_BATCH_SIZE = 128
DEFAULT_LR = 0.1
# Random subnets per sandwich step, besides the largest and the smallest.
DEFAULT_NUM_RANDOM = 2
# Every dimension elastic after the warm-up.
DEFAULT_SCHEDULE = "all"
