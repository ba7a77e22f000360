"""Defaults shared by the CLI, the on-demand pipeline and the experiments (no heavy imports)."""

from __future__ import annotations

__all__ = [
    "DEFAULT_EPOCHS",
    "DEFAULT_LR",
    "DEFAULT_NUM_RANDOM",
    "DEFAULT_SCHEDULE",
    "DEFAULT_SPACE",
    "DEFAULT_WARMUP",
]

DEFAULT_SPACE = "mbv3-small"
# Total supernet epochs, warm-up included. 24 rather than 16 since training runs in NHWC
# (channels_last): 6.9 minutes on 2 cores, and the median random subnet goes from 86-90% to
# 96.8% (32 epochs give 98.1% but take 9.6 minutes; README "Supernet training").
DEFAULT_EPOCHS = 24
DEFAULT_WARMUP = 4  # epochs of the largest subnet alone before shrinking (delayed shrinking)
DEFAULT_LR = 0.1
# Random subnets per sandwich step: 4 rather than 2 doubled the median random subnet's accuracy
# early in training (49% against 24% after 6 epochs) for 14% more time; 8 gave 52% for 53% more
# (README "Supernet training").
DEFAULT_NUM_RANDOM = 4
# Every dimension elastic after the warm-up: on the default space and 2 cores it trains in 7.4
# minutes against 10.5 for progressive shrinking, with better smallest and random subnets
# (experiments/supernet_training.py; README "Supernet training").
DEFAULT_SCHEDULE = "all"
