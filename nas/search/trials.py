"""Search on real evaluations: every subnet a strategy proposes is a *trial*, taken out of the
trained supernet and measured (accuracy after batch-norm recalibration; latency from the
latency predictor, or measured where the trial runs when that is the target device).

The bookkeeping (:class:`TrialBook`) is the same whether the trials run here one after another
(:func:`run_trials_here`) or as Ray Tune trials (:func:`nas.distributed.tune.run_trials_on_ray`):
the strategy is asked for one subnet per trial and told each result as it finishes, every
finished trial (done or failed after its retries) is appended to ``trials.jsonl`` exactly once,
and the strategy's state is saved after each. A killed search resumes from those two files and
never runs a finished trial again; trials that were running when it died run again.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nas.defaults import DEFAULT_OBJECTIVES
from nas.errors import UserError, first_line
from nas.files import atomic_write_json, cut_torn_tail
from nas.search.loop import (
    METRICS,
    SearchResult,
    objective_matrix,
    read_history,
    summarise,
    violations,
)
from nas.search.targets import Constraint
from nas.strategies import STRATEGIES, make_strategy
from search_spaces import Arch, Space, canonicalize, decode_genome

__all__ = [
    "SETTINGS_FILE",
    "STATE_FILE",
    "TRIALS_FILE",
    "Proposal",
    "SubnetScorer",
    "TrialBook",
    "TrialConfig",
    "run_trials_here",
]

logger = logging.getLogger(__name__)
TRIALS_FILE = "trials.jsonl"
STATE_FILE = "trials-strategy.json"
SETTINGS_FILE = "trials-settings.json"
# Asks of the strategy for one subnet that no trial has measured or is measuring yet, before the
# search decides that the strategy has nothing new to propose.
_MAX_ASKS = 200
# When this many trials in a row failed from the start, the search stops with their error:
# the cause is the set-up (data, weights), not one subnet.
_FAILED_START = 3


@dataclass(frozen=True, kw_only=True)
class TrialConfig:
    """Which strategy, how many trials, which objectives, how often a failed trial is retried."""

    strategy: str = "tpe"
    trials: int = 50
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
    seed: int = 0
    max_retries: int = 1
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise UserError(
                f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}"
            )
        if isinstance(self.trials, bool) or self.trials < 1:
            raise UserError(f"--trials must be at least 1, got {self.trials}")
        if self.max_retries < 0:
            raise UserError(f"--max-retries must be >= 0, got {self.max_retries}")
        unknown = [name for name in self.objectives if name not in METRICS]
        if unknown or not self.objectives:
            raise UserError(f"unknown objectives {unknown}; choose among {', '.join(METRICS)}")

    def make_strategy(self, space: Space) -> Any:
        """The configured strategy for ``space``; a :class:`UserError` when the two do not fit
        (a single-objective strategy asked for several objectives, a bad option)."""
        try:
            return make_strategy(
                self.strategy,
                space,
                seed=self.seed,
                num_objectives=len(self.objectives),
                **self.options,
            )
        except ValueError as exc:
            raise UserError(f"--strategy {self.strategy}: {first_line(exc)}") from None

    def settings(self) -> dict[str, Any]:
        """What a resumed search must share with the one it continues."""
        return {
            "strategy": self.strategy,
            "objectives": list(self.objectives),
            "seed": self.seed,
            "options": self.options,
        }


@dataclass(frozen=True)
class Proposal:
    """One trial's subnet: its canonical genome, arch and the metrics known before measuring
    (exact counts, and latency when it is predicted)."""

    genome: tuple[int, ...]
    arch: dict[str, Any]
    known: dict[str, float]

    @property
    def key(self) -> bytes:
        return np.asarray(self.genome, dtype=np.int64).tobytes()


class SubnetScorer:
    """Measures one subnet: accuracy of the supernet's ``arch`` on ``split`` after batch-norm
    recalibration, and, with ``measure`` set, its latency where this runs (only on the
    target device). Pickles without the built supernet, so that it can travel to Ray workers
    (the weights are tensors) and rebuild it there once per process."""

    def __init__(
        self,
        space: Space,
        weights: Mapping[str, Any],
        dataset: Any,
        *,
        split: str = "val",
        seed: int = 0,
        device: str = "cpu",
        measure: Any = None,
    ) -> None:
        self.space = space
        self.weights = dict(weights)
        self.dataset = dataset
        self.split = split
        self.seed = seed
        self.device = device
        self.measure = measure
        self._supernet: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_supernet"] = None
        return state

    def supernet(self) -> Any:
        if self._supernet is None:
            from nas.train.checkpoint import supernet_from_weights

            self._supernet = supernet_from_weights(
                self.space, self.weights, self.device, where="the supernet of the search"
            )
        return self._supernet

    def __call__(self, arch: Mapping[str, Any]) -> dict[str, float]:
        from nas.train.evaluate import evaluate

        subnet = Arch.from_dict(dict(arch))
        scores = {
            "accuracy": evaluate(
                self.supernet(),
                subnet,
                self.dataset,
                split=self.split,
                seed=self.seed,
                device=self.device,
            )
        }
        if self.measure is not None:
            from nas.measure import measure_arch

            scores["latency"] = measure_arch(self.space, subnet, self.measure).median_ms
        return scores


class TrialBook:
    """The strategy, the targets and the trials file of one search on real evaluations.

    ``known_metrics(genomes)`` gives the metrics a trial does not measure (counts, predicted
    latency) for an ``(n, genome_length)`` array, as :class:`nas.search.Evaluator` does.
    """

    def __init__(
        self,
        space: Space,
        constraints: Sequence[Constraint],
        config: TrialConfig,
        directory: str | Path,
        *,
        known_metrics: Callable[[np.ndarray], dict[str, np.ndarray]],
        resume: bool = False,
    ) -> None:
        self.space = space
        self.constraints = tuple(constraints)
        self.config = config
        self.directory = Path(directory)
        self.known_metrics = known_metrics
        self.path = self.directory / TRIALS_FILE
        self._state_path = self.directory / STATE_FILE
        self.directory.mkdir(parents=True, exist_ok=True)
        settings_path = self.directory / SETTINGS_FILE
        settings = {**config.settings(), "targets": [str(c) for c in self.constraints]}
        if self.path.exists() and not resume:
            raise UserError(
                f"{self.directory} already holds a search; pass --resume or another --out"
            )
        if resume and settings_path.exists():
            saved = json.loads(settings_path.read_text(encoding="utf-8"))
            if saved != settings:
                raise UserError(
                    f"{self.directory}: the saved search used other settings ({saved}); "
                    "use them again or another --out"
                )
        atomic_write_json(settings_path, settings)
        self.strategy = config.make_strategy(space)
        cut_torn_tail(self.path)  # a line torn by a kill must not join the next one
        self.rows: list[dict[str, Any]] = read_history(self.path)
        self.done: dict[bytes, dict[str, float]] = {}
        self.failed: set[bytes] = set()
        for row in self.rows:
            key = np.asarray(row["genome"], dtype=np.int64).tobytes()
            if row.get("status") == "done":
                self.done[key] = {k: float(row[k]) for k in row if k in METRICS}
            else:
                self.failed.add(key)
        told = 0
        if resume and self._state_path.exists():
            state = json.loads(self._state_path.read_text(encoding="utf-8"))
            self.strategy.load_state_dict(state["state"])
            told = int(state["told"])
        # Trials finished after the last save of the strategy (a kill in between) are told again.
        for row in [r for r in self.rows if r.get("status") == "done"][told:]:
            self._tell(np.asarray(row["genome"], dtype=np.int64), self.done[self._key(row)])
        self.running: set[bytes] = set()
        self._failed_in_a_row = 0

    @staticmethod
    def _key(row: Mapping[str, Any]) -> bytes:
        return np.asarray(row["genome"], dtype=np.int64).tobytes()

    @property
    def finished(self) -> int:
        """Trials finished so far, done or failed."""
        return len(self.rows)

    @property
    def remaining(self) -> int:
        return max(self.config.trials - self.finished, 0)

    def _tell(self, genome: np.ndarray, metrics: Mapping[str, float]) -> None:
        values = {name: np.array([value]) for name, value in metrics.items()}
        self.strategy.tell(
            genome.reshape(1, -1),
            objective_matrix(values, self.config.objectives),
            violations(values, self.constraints),
        )

    def propose(self) -> Proposal | None:
        """The next trial's subnet: one no trial has finished or is running; ``None`` when the
        strategy proposes nothing new in many asks (a small space, all of it measured)."""
        for _ in range(_MAX_ASKS):
            genome = canonicalize(self.space, self.strategy.ask(1))[0]
            key = genome.tobytes()
            if key in self.done:  # measured before: told again from the file, not re-run
                self._tell(genome, self.done[key])
                continue
            if key in self.running or key in self.failed:
                continue
            known = {
                name: float(values[0])
                for name, values in self.known_metrics(genome.reshape(1, -1)).items()
            }
            self.running.add(key)
            arch = decode_genome(self.space, genome).to_dict()
            return Proposal(tuple(int(v) for v in genome), arch, known)
        return None

    def record(
        self,
        proposal: Proposal,
        measured: Mapping[str, float] | None,
        *,
        attempts: int,
        seconds: float,
        error: str | None = None,
    ) -> None:
        """Append a finished trial (``measured`` is ``None`` when it failed) and tell the
        strategy; raises :class:`UserError` when every trial so far failed."""
        self.running.discard(proposal.key)
        row: dict[str, Any] = {
            "trial": self.finished,
            "status": "done" if measured is not None else "failed",
            "genome": list(proposal.genome),
            "arch": proposal.arch,
            "attempts": attempts,
            "seconds": round(seconds, 3),
        }
        if measured is not None:
            metrics = {**proposal.known, **{k: float(v) for k, v in measured.items()}}
            row.update(metrics)
        else:
            row["error"] = error or "failed"
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.rows.append(row)
        if measured is None:
            self.failed.add(proposal.key)
            self._failed_in_a_row += 1
            logger.warning("trial %d failed after %d attempt(s): %s", row["trial"], attempts, error)
            if self._failed_in_a_row >= _FAILED_START and not self.done:
                raise UserError(
                    f"the first {self._failed_in_a_row} trials all failed; the last with: {error}"
                )
            return
        self._failed_in_a_row = 0
        self.done[proposal.key] = metrics
        self._tell(np.asarray(proposal.genome, dtype=np.int64), metrics)
        atomic_write_json(
            self._state_path,
            {
                "strategy": self.config.strategy,
                "told": len(self.done),
                "state": self.strategy.state_dict(),
            },
        )

    def result(self) -> SearchResult:
        """Every trial done so far, the feasible ones and their Pareto front."""
        keys = [self._key(r) for r in self.rows if r.get("status") == "done"]
        if not keys:
            raise UserError("no trial finished; nothing to report")
        genomes = np.array([np.frombuffer(key, dtype=np.int64) for key in keys])
        names = list(self.done[keys[0]])
        metrics = {name: np.array([self.done[key][name] for key in keys]) for name in names}
        return summarise(genomes, metrics, self.constraints, self.config.objectives, 0.0)


def run_trials_here(
    book: TrialBook,
    scorer: Callable[[Mapping[str, Any]], Mapping[str, float]],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Run the book's remaining trials in this process, one after another; a trial that raises
    is tried again up to ``max_retries`` times, then recorded as failed."""
    while book.remaining:
        proposal = book.propose()
        if proposal is None:
            logger.warning("the strategy proposes no new subnet; stopping early")
            return
        start = time.perf_counter()
        measured, error, attempts = None, None, 0
        while measured is None and attempts <= book.config.max_retries:
            attempts += 1
            try:
                measured = dict(scorer(proposal.arch))
            except Exception as exc:  # a failed trial is recorded, not fatal
                error = first_line(exc) or type(exc).__name__
                logger.info("trial attempt %d failed: %s", attempts, error)
        book.record(
            proposal, measured, attempts=attempts, seconds=time.perf_counter() - start, error=error
        )
        if progress is not None:
            progress(book.finished, book.config.trials)
