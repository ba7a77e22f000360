"""Defaults shared by the CLI, the on-demand pipeline and the experiments (no heavy imports)."""

from __future__ import annotations

__all__ = ["DEFAULT_EPOCHS", "DEFAULT_LR", "DEFAULT_SCHEDULE", "DEFAULT_SPACE", "DEFAULT_WARMUP"]

DEFAULT_SPACE = "mbv3-small"
DEFAULT_EPOCHS = 16  # total supernet epochs, warm-up included
DEFAULT_WARMUP = 4  # epochs of the largest subnet alone before shrinking (delayed shrinking)
DEFAULT_LR = 0.1
# Every dimension elastic after the warm-up: on the default space and 2 cores it trains in 7.4
# minutes against 10.5 for progressive shrinking, with better smallest and random subnets
# (experiments/supernet_training.py; README "Supernet training").
DEFAULT_SCHEDULE = "all"
