"""Conformance suites, shipped so that users can test their own strategies, predictors and
search spaces the way the toolkit tests its own (as optuna ships ``optuna.testing``).

- :mod:`nas.testing.strategies`: ask/tell contract, seeded determinism, state round trip...
- :mod:`nas.testing.predictors`: fit/predict shapes, ``predict_genomes == predict``, JSON and
  file round trips;
- :mod:`nas.testing.spaces`: validation of samples, genome and arch round trips, to_dict/from_dict
  and YAML/JSON files.

Their ``check_*`` functions are plain functions that raise ``AssertionError``; they need no
test runner. :mod:`nas.testing.pytest_suites` wraps them as pytest test classes and so needs
pytest (the ``dev`` extra). Nothing here is imported by ``import nas``.
"""

from __future__ import annotations

__all__: list[str] = []
