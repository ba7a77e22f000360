"""Conformance suite for predictors (:class:`nas.predictors.Predictor`), of every kind.

A predictor is given by a factory ``make() -> Predictor`` (fresh, unfitted), training archs
with their targets, and probe archs it can predict (a lookup table only knows the operators it
measured):

- :func:`check_fit_predict`: ``fit`` returns the predictor, ``predict`` one finite float per arch,
  and fitting again on the same data predicts the same;
- :func:`check_predict_genomes`: ``predict_genomes`` equals ``predict`` on the decoded archs;
- :func:`check_dict_round_trip`: ``from_dict(to_dict())`` through JSON predicts the same;
- :func:`check_file_round_trip`: :func:`~nas.predictors.save_predictor` then
  :func:`~nas.predictors.load_predictor` predicts exactly the same, leaving no temporary file.

The checks need no pytest; :class:`nas.testing.pytest_suites.PredictorSuite` runs them all as
pytest tests. :func:`check_predictor` runs them in a row.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.predictors import Predictor, load_predictor, save_predictor
from search_spaces import Arch, to_genome

__all__ = [
    "PredictorCase",
    "PredictorFactory",
    "check_dict_round_trip",
    "check_file_round_trip",
    "check_fit_predict",
    "check_predict_genomes",
    "check_predictor",
]

# make() -> a fresh, unfitted predictor
PredictorFactory = Callable[[], Predictor]


@dataclass(frozen=True, kw_only=True, eq=False)
class PredictorCase:
    """A predictor to check: its factory, training data and the archs to predict."""

    make: PredictorFactory
    archs: Sequence[Arch]
    y: np.ndarray
    probe: Sequence[Arch]

    def fitted(self) -> Predictor:
        return self.make().fit(self.archs, self.y)


def check_fit_predict(case: PredictorCase) -> Predictor:
    """``fit`` returns the predictor itself, which predicts one finite float per probe arch,
    the same after a refit on the same data; returns the fitted predictor."""
    predictor = case.make()
    fitted = predictor.fit(case.archs, case.y)
    assert fitted is predictor, "fit must return the predictor itself"
    assert isinstance(fitted, Predictor)
    values = fitted.predict(case.probe)
    assert isinstance(values, np.ndarray) and values.shape == (len(case.probe),)
    assert np.issubdtype(values.dtype, np.floating) and np.isfinite(values).all()
    np.testing.assert_array_equal(case.fitted().predict(case.probe), values)
    return fitted


def check_predict_genomes(predictor: Predictor, probe: Sequence[Arch]) -> None:
    """``predict_genomes`` on the probe's genomes equals ``predict`` on the probe."""
    genomes = np.stack([to_genome(predictor.space, arch) for arch in probe])
    np.testing.assert_allclose(predictor.predict_genomes(genomes), predictor.predict(probe))


def check_dict_round_trip(predictor: Predictor, probe: Sequence[Arch]) -> None:
    """``from_dict`` of ``to_dict`` (through JSON text) predicts exactly the same."""
    data = json.loads(json.dumps(predictor.to_dict()))
    again = type(predictor).from_dict(data, predictor.space)
    assert type(again) is type(predictor)
    np.testing.assert_array_equal(again.predict(probe), predictor.predict(probe))


def check_file_round_trip(
    predictor: Predictor, probe: Sequence[Arch], directory: Path | None = None
) -> None:
    """A saved and loaded predictor (with or without the space given) is of the same type and
    predicts exactly the same; loading warns of nothing; no temporary file is left behind."""
    with tempfile.TemporaryDirectory() as temporary:
        folder = directory if directory is not None else Path(temporary)
        before = set(folder.iterdir()) if folder.exists() else set()
        file = save_predictor(predictor, folder / f"{predictor.kind}.json")
        assert set(folder.iterdir()) - before == {file}, "temporary files left behind"
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            loaded = load_predictor(file)
            again = load_predictor(file, predictor.space)
        assert type(loaded) is type(predictor) and loaded.kind == predictor.kind
        expected = predictor.predict(probe)
        np.testing.assert_array_equal(loaded.predict(probe), expected)
        np.testing.assert_array_equal(again.predict(probe), expected)


def check_predictor(case: PredictorCase) -> None:
    """Every check of this module on ``case``."""
    predictor = check_fit_predict(case)
    check_predict_genomes(predictor, case.probe)
    check_dict_round_trip(predictor, case.probe)
    check_file_round_trip(predictor, case.probe)
