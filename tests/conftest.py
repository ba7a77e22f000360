"""Settings for the whole suite."""

from __future__ import annotations

import pytest

import nas.measure.anchor


@pytest.fixture(autouse=True)
def short_spell_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    """An anchored measurement waits out a slow spell (pauses up to 0.4 s, at most six times)
    before it measures a round again; the suite's few-run measurements check behaviour, not
    speed, so they pause 1 ms (``tests/nas/test_anchor.py`` checks the real pauses)."""
    monkeypatch.setattr(nas.measure.anchor, "FIRST_PAUSE_S", 0.001)
    monkeypatch.setattr(nas.measure.anchor, "MAX_PAUSE_S", 0.001)
