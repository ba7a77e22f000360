"""Search on real evaluations as Ray Tune trials.

Any strategy of :mod:`nas.strategies` (evolution, NSGA-II, Optuna's TPE and GP samplers...)
proposes the trials through a Tune ``Searcher`` that asks it for one subnet per trial and tells
it each result as the trial finishes; a ``ConcurrencyLimiter`` keeps at most ``--workers``
trials running, each with one CPU (one GPU on cuda). Tune retries a failed trial (an exception,
or its worker process killed) ``max_retries`` times; then the trial is recorded as failed. The
trials file and the strategy state are the :class:`nas.search.trials.TrialBook`'s, written by
the driver as each trial finishes, so a driver killed mid-search resumes (``--resume``) with a
new Tune run that never repeats a finished trial.

Latency is predicted on the driver unless ``latency_device`` names a Ray resource: then every
trial asks for one unit of ``device:NAME`` and measures its subnet where it runs. A worker
that is not the target device would measure its own CPU, shared with other trials.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nas.distributed.backend import Backend, check_resources, connect, worker_count
from nas.errors import UserError
from nas.search.trials import Proposal, SubnetScorer, TrialBook

__all__ = ["check_cluster", "run_trials_on_ray"]

logger = logging.getLogger(__name__)


def _trial(config: dict[str, Any], scorer: SubnetScorer) -> None:
    """A Tune trial: one subnet measured on this worker, reported once."""
    from ray import tune

    tune.report(dict(scorer(config["arch"])))


def _resources(ray: Any, device: str, latency_device: str | None) -> dict[str, float]:
    resources: dict[str, float] = {"cpu": 1.0}
    if device.startswith("cuda"):
        resources["gpu"] = 1.0
    if latency_device is not None:
        name = f"device:{latency_device}"
        if float(ray.cluster_resources().get(name, 0)) < 1:
            raise UserError(
                f"no node of the Ray cluster has the resource {name!r}; start the target "
                f"device's node with `ray start ... --resources '{{\"{name}\": 1}}'`"
            )
        resources[name] = 1.0
    return resources


def check_cluster(
    backend: Backend, *, device: str = "cpu", latency_device: str | None = None
) -> tuple[Any, int, dict[str, float]]:
    """Connect to the cluster and refuse, in one line, what it cannot give the trials; returns
    the connected ``ray``, the trials to run at once and each trial's resources."""
    ray = connect(backend)
    gpu = device.startswith("cuda")
    workers = worker_count(ray, backend, gpu=gpu)
    # Not `now`: trials queue until CPUs are free (a previous run's actors may still hold one).
    check_resources(ray, workers=workers, gpu=gpu, now=False)
    return ray, workers, _resources(ray, device, latency_device)


def run_trials_on_ray(
    book: TrialBook,
    scorer: SubnetScorer,
    backend: Backend,
    *,
    latency_device: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Run the book's remaining trials on the Ray cluster of ``backend`` (at most
    ``backend.workers`` at once, default 1 per CPU)."""
    # Tune's progress tables would share the terminal with the CLI's bar: the legacy reporter
    # prints nothing at verbose=0.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    _, workers, resources = check_cluster(
        backend, device=scorer.device, latency_device=latency_device
    )
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter, Searcher

    if not book.remaining:
        return
    started: dict[str, tuple[Proposal, float]] = {}
    attempts: dict[str, int] = {}

    class StrategySearcher(Searcher):
        """Tune's view of the book: one proposal per trial, each result told as it comes."""

        def __init__(self) -> None:
            super().__init__(metric="accuracy", mode="max")

        def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]
            if book.finished + len(started) >= book.config.trials:
                return str(Searcher.FINISHED)
            proposal = book.propose()
            if proposal is None:
                return str(Searcher.FINISHED)
            started[trial_id] = (proposal, time.perf_counter())
            return {"arch": proposal.arch}

        def save(self, checkpoint_path: str) -> None:
            """Nothing: the book's files hold the search (Tune's own checkpoint is not used)."""

        def restore(self, checkpoint_path: str) -> None:
            """Nothing: a resumed search starts a new Tune run from the book's files."""

        def on_trial_complete(
            self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
        ) -> None:
            proposal, start = started.pop(trial_id)
            measured: dict[str, float] | None = None
            if not error and result is not None and "accuracy" in result:
                measured = {k: float(result[k]) for k in ("accuracy", "latency") if k in result}
            book.record(
                proposal,
                measured,
                attempts=attempts.get(trial_id, 0) + 1,
                seconds=time.perf_counter() - start,
                error=None if measured is not None else _error_of(trial_id),
            )
            if progress is not None:
                progress(book.finished, book.config.trials)

    errors: dict[str, str] = {}

    def _error_of(trial_id: str) -> str:
        return errors.get(trial_id, "the trial failed")

    class Failures(tune.Callback):
        """Counts each trial's failed attempts and keeps its last error's first line."""

        def on_trial_recover(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
            attempts[trial.trial_id] = attempts.get(trial.trial_id, 0) + 1
            errors[trial.trial_id] = _first_error_line(trial)

        def on_trial_error(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
            errors[trial.trial_id] = _first_error_line(trial)

    storage = (book.directory / "ray").resolve()
    trainable = tune.with_resources(tune.with_parameters(_trial, scorer=scorer), resources)
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=ConcurrencyLimiter(StrategySearcher(), max_concurrent=workers),
            num_samples=book.remaining,
            reuse_actors=True,
            trial_name_creator=_trial_name,
            trial_dirname_creator=_trial_name,
        ),
        run_config=tune.RunConfig(
            name=f"trials-{time.strftime('%Y%m%d-%H%M%S')}-{book.finished}",
            storage_path=str(storage),
            failure_config=tune.FailureConfig(max_failures=book.config.max_retries),
            callbacks=[Failures()],
            verbose=0,
        ),
    )
    logger.info("running %d trials on Ray, %d at once, %s each", book.remaining, workers, resources)
    tuner.fit()


def _trial_name(trial: Any) -> str:
    return f"trial-{trial.trial_id}"


def _first_error_line(trial: Any) -> str:
    """The last line of a failed trial's error file (the exception), or a generic note."""
    path = getattr(trial, "error_file", None)
    text = ""
    if path and Path(path).exists():
        lines = [line for line in Path(path).read_text(errors="replace").splitlines() if line]
        text = lines[-1] if lines else ""
    return text[:300] or "the trial failed (its worker raised or died)"
