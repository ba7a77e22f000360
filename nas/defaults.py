"""Defaults shared by the CLI, the on-demand pipeline and the experiments (no heavy imports)."""

from __future__ import annotations

__all__ = ["DEFAULT_EPOCHS", "DEFAULT_LR", "DEFAULT_SPACE", "DEFAULT_WARMUP"]

DEFAULT_SPACE = "mbv3-small"
DEFAULT_EPOCHS = 16  # total supernet epochs, warm-up included
DEFAULT_WARMUP = 4  # epochs of the largest subnet alone before shrinking (delayed shrinking)
DEFAULT_LR = 0.1
