"""The CLI's choices come from the registries, read only when a value is checked or listed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nas.cli.common import RegistryChoices
from nas.measure import RUNTIMES
from nas.strategies import STRATEGIES


def test_registry_choices_are_the_registry_names() -> None:
    strategies = RegistryChoices("nas.strategies", "STRATEGIES")
    assert list(strategies) == list(STRATEGIES) and len(strategies) == len(STRATEGIES)
    assert "nsga2" in strategies and "annealing" not in strategies
    assert strategies[0] == next(iter(STRATEGIES))
    assert tuple(RegistryChoices("nas.measure.timing", "RUNTIMES")) == RUNTIMES


def test_building_the_parser_imports_no_registry() -> None:
    code = (
        "import sys\n"
        "from nas.cli import build_parser\n"
        "build_parser(full=False)\n"
        "heavy = [m for m in ('torch', 'sklearn', 'nas.export', 'nas.strategies') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_bad_registry_name_is_refused_in_the_library_s_words(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from nas.cli import main

    with pytest.raises(SystemExit) as info:
        main(["search", "--target", "latency<1s", "--strategy", "annealing"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "unknown strategy 'annealing'; choose one of random, evolution" in err
