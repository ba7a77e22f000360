"""Defaults shared by the CLI, the on-demand pipeline and the experiments (no heavy imports)."""

from __future__ import annotations

from search_spaces.registry import DEFAULT_SPACE

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_DATA",
    "DEFAULT_EPOCHS",
    "DEFAULT_EVALUATIONS",
    "DEFAULT_EXPORT_FORMAT",
    "DEFAULT_IMAGES_PER_EPOCH",
    "DEFAULT_LR",
    "DEFAULT_NUM_RANDOM",
    "DEFAULT_OBJECTIVES",
    "DEFAULT_REPEATS",
    "DEFAULT_ROUNDS",
    "DEFAULT_RUNTIME",
    "DEFAULT_SCHEDULE",
    "DEFAULT_SPACE",
    "DEFAULT_STRATEGY",
    "DEFAULT_THREADS",
    "DEFAULT_WARMUP",
    "DEFAULT_WARMUP_RUNS",
    "DEFAULT_WORKDIR",
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

# Search: the strategy, its budget of predictor evaluations and the objectives.
DEFAULT_STRATEGY = "nsga2"
DEFAULT_EVALUATIONS = 20_000
DEFAULT_OBJECTIVES = ("accuracy", "latency")
# Where nas search keeps the supernet, predictors and measured subnets it builds.
DEFAULT_WORKDIR = "runs"
# Latency measurement (nas.measure.MeasureConfig): runtime, intra-op threads, untimed runs,
# timed runs and the rounds those are split into.
DEFAULT_RUNTIME = "onnxruntime"
DEFAULT_THREADS = 1
DEFAULT_WARMUP_RUNS = 10
DEFAULT_REPEATS = 50
DEFAULT_ROUNDS = 5
# The file format of nas export's models (one of nas.export.EXPORT_FORMATS).
DEFAULT_EXPORT_FORMAT = "onnx"
