"""Verification times the graph a subnet deploys: with int8 stages, the quantized one."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import nas.search.verify
from nas.data import load_dataset
from nas.measure import MeasureConfig
from nas.search.targets import parse_constraints
from nas.supernet import Supernet
from tests.search_spaces.conftest import bf16_space, with_precisions

FAST = MeasureConfig(warmup=1, repeats=4, rounds=2, anchored=False)


@pytest.mark.parametrize("precisions", [["int8", "fp32"], ["fp32", "fp32"]])
def test_a_subnet_is_timed_in_the_precision_it_deploys(
    precisions: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    space = bf16_space()
    arch = space.largest()
    arch = with_precisions(arch, [*precisions, *["fp32"] * (len(arch.stages) - 2)])
    timed: list[Any] = []
    real = nas.search.verify.measure_latency

    def recording(model: Any, *args: Any, **kwargs: Any) -> Any:
        timed.append(model)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(nas.search.verify, "measure_latency", recording)
    monkeypatch.setattr("nas.measure.timing.measure_latency", recording)
    torch.manual_seed(0)
    supernet = Supernet(space).eval()
    dataset = load_dataset("digits", resolution=20, seed=0)
    constraints = parse_constraints(["latency<1s"])
    verified = nas.search.verify.measure_subnet(space, supernet, dataset, arch, constraints, FAST)
    assert verified.measured_latency_ms > 0 and len(timed) == 1
    if "int8" in precisions:  # the QDQ graph, not the float network it came from
        assert isinstance(timed[0], bytes) and b"QuantizeLinear" in timed[0]
    else:
        assert isinstance(timed[0], torch.nn.Module)
