"""Latency and accuracy predictors for subnets of a search space.

All follow the :class:`Predictor` protocol (``fit``/``predict``/``predict_genomes``,
``to_dict``/``from_dict``):

- :class:`FlopsPredictor`, :class:`ParamsPredictor`: exact analytical counts, or a fitted line
  of them (FLOPs as a latency proxy);
- :class:`LatencyTable`: per-operator lookup table from
  :func:`nas.measure.profiling.profile_blocks`, calibrated on whole-network measurements;
- :class:`LearnedPredictor` and :class:`AccuracyPredictor`: scikit-learn models on architecture
  features, chosen by cross-validation.

:func:`save_predictor`/:func:`load_predictor` write and read portable JSON files that refit on
load; :mod:`nas.predictors.metrics` scores predictions.
"""

from __future__ import annotations

from nas.predictors.analytical import FlopsPredictor, ParamsPredictor
from nas.predictors.base import TARGETS, Predictor
from nas.predictors.features import GenomeCosts, arch_genomes, feature_matrix, genome_costs
from nas.predictors.io import (
    FORMAT,
    PREDICTOR_KINDS,
    MachineMismatchWarning,
    load_predictor,
    save_predictor,
)
from nas.predictors.learned import (
    MODELS,
    TRANSFORMS,
    AccuracyPredictor,
    LearnedConfig,
    LearnedPredictor,
)
from nas.predictors.metrics import kendall_tau, rmse, summarize, within_tolerance
from nas.predictors.operators import OVERHEAD_KEY, Operator, arch_operators, space_operators
from nas.predictors.records import LatencyRecord, read_records, same_machine, space_digest
from nas.predictors.table import LatencyTable

__all__ = [
    "FORMAT",
    "MODELS",
    "OVERHEAD_KEY",
    "PREDICTOR_KINDS",
    "TARGETS",
    "TRANSFORMS",
    "AccuracyPredictor",
    "FlopsPredictor",
    "GenomeCosts",
    "LatencyRecord",
    "LatencyTable",
    "LearnedConfig",
    "LearnedPredictor",
    "MachineMismatchWarning",
    "Operator",
    "ParamsPredictor",
    "Predictor",
    "arch_genomes",
    "arch_operators",
    "feature_matrix",
    "genome_costs",
    "kendall_tau",
    "load_predictor",
    "read_records",
    "rmse",
    "same_machine",
    "save_predictor",
    "space_digest",
    "space_operators",
    "summarize",
    "within_tolerance",
]
