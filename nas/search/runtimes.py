"""``nas search --runtime a,b``: one search per runtime, and the subnet to deploy among theirs.

Each runtime gets a whole search (its own latency predictor, fronts measured on it, its chosen
subnet exported for it) in a run directory named after it under the pooled run directory. The
choice among their choices follows the rule of one search (:func:`nas.search.verify.choose`):
the best on the validation split, accuracies within one standard error of the best counted as
a tie, broken by the most multiply-adds and then by the lower measured latency, so that a
subnet two runtimes both chose goes to the one that runs it faster. A runtime on which no
subnet meets the targets is skipped, with its reason; every request is checked (run
directories, runtimes installed, precisions they run) before the first search starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.errors import NoSubnetMeets, UserError
from nas.files import atomic_write_json, check_writable_directory
from nas.search.rerank import arch_key
from nas.search.run import Reporter, SearchOutcome, SearchRequest, check_request, search
from nas.search.verify import Verified, choose

__all__ = ["CHOICE_FILE", "RuntimesOutcome", "runtime_requests", "search_runtimes"]

CHOICE_FILE = "choice.json"


@dataclass
class RuntimesOutcome:
    """The searches that found a subnet (by runtime), the runtimes skipped and why, and the
    choice among the searches' choices."""

    outcomes: dict[str, SearchOutcome]
    skipped: dict[str, str]
    runtime: str
    chosen: Verified


def runtime_requests(
    request: SearchRequest, runtimes: Sequence[str], out: Path
) -> list[SearchRequest]:
    """``request`` once per runtime, each in ``out/RUNTIME``; with ``resume`` only those run
    directories a search has started in are resumed, the others start afresh."""
    if len(set(runtimes)) != len(runtimes) or not runtimes:
        raise UserError(f"--runtime lists {','.join(runtimes)!r}: name each runtime once")
    requests = []
    for runtime in runtimes:
        directory = out / runtime
        requests.append(
            dataclasses.replace(
                request,
                measure=dataclasses.replace(request.measure, runtime=runtime),
                out=directory,
                resume=request.resume and directory.exists() and any(directory.iterdir()),
            )
        )
    return requests


def search_runtimes(
    requests: Sequence[SearchRequest], out: Path, reporter: Reporter
) -> RuntimesOutcome:
    """Every request's search (one per runtime), then the subnet to deploy among their choices
    (see the module's docstring); writes ``out/choice.json``."""
    check_writable_directory(out)
    for request in requests:
        check_request(request)
    outcomes: dict[str, SearchOutcome] = {}
    skipped: dict[str, str] = {}
    for request in requests:
        runtime = request.measure.runtime
        reporter.note(f"searching with latency measured on {runtime} (in {request.out})")
        try:
            outcomes[runtime] = search(request, reporter)
        except NoSubnetMeets as error:
            skipped[runtime] = str(error)
            reporter.note(f"{runtime}: {error}")
    if not outcomes:
        reasons = "; ".join(f"{runtime}: {why}" for runtime, why in skipped.items())
        raise NoSubnetMeets(f"no runtime has a subnet that meets the targets ({reasons})")
    choices = {r: o.chosen for r, o in outcomes.items() if o.chosen is not None}
    accuracy = {id(v): _deployed_val(outcomes[r], v) for r, v in choices.items()}
    best = choose(
        requests[0].space,
        list(choices.values()),
        len(requests[0].dataset.y_val),
        score=lambda v: accuracy[id(v)],
    )
    assert best is not None  # every search's choice meets the targets
    runtime = next(r for r, v in choices.items() if v is best)
    atomic_write_json(
        out / CHOICE_FILE,
        {
            "runtime": runtime,
            **_summary(outcomes[runtime], best),
            "choices": {r: _summary(outcomes[r], v) for r, v in choices.items()},
            "skipped": skipped,
            "rule": "best validation accuracy (within one standard error a tie), then most "
            "multiply-adds, then lower measured latency",
        },
    )
    return RuntimesOutcome(outcomes=outcomes, skipped=skipped, runtime=runtime, chosen=best)


def _deployed_val(outcome: SearchOutcome, chosen: Verified) -> float:
    """The validation accuracy of the weights a search deploys: trained alone after a
    re-rank, else inherited from the supernet."""
    alone = outcome.alone.get(arch_key(chosen))
    return float(alone["val_accuracy"]) if alone else chosen.val_accuracy


def _summary(outcome: SearchOutcome, chosen: Verified) -> dict[str, Any]:
    """A search's choice as ``choice.json`` lists it: accuracies of the weights deployed."""
    alone = outcome.alone.get(arch_key(chosen))
    return {
        "arch": chosen.arch,
        "measured_latency_ms": chosen.measured_latency_ms,
        "val_accuracy": _deployed_val(outcome, chosen),
        "test_accuracy": alone["test_accuracy"] if alone else chosen.test_accuracy,
        "weights": "trained alone (--rerank)" if alone else "inherited from the supernet",
        "model": None if outcome.model is None else str(outcome.model),
    }
