"""The search stage: targets, the loop (strategy proposes, predictors score, targets constrain),
verification by real measurement, the measured-subnet cache, the work directory of built pieces,
and ``nas search`` end to end.

``nas.search`` itself re-exports the loop's API; the rest is :mod:`nas.search.targets`,
:mod:`nas.search.verify`, :mod:`nas.search.measured`, :mod:`nas.search.workdir` and
:mod:`nas.search.run`.
"""

from __future__ import annotations

from nas.search.loop import (
    METRICS,
    Evaluator,
    SearchConfig,
    SearchResult,
    genome_key,
    measured_accuracies,
    objective_matrix,
    run_search,
    violations,
)

__all__ = [
    "METRICS",
    "Evaluator",
    "SearchConfig",
    "SearchResult",
    "genome_key",
    "measured_accuracies",
    "objective_matrix",
    "run_search",
    "violations",
]
