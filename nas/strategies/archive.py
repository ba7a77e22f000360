"""The constrained Pareto front of every point a strategy was told."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nas.strategies.pareto import constrained_ranks

__all__ = ["ParetoArchive", "row_keys"]


def row_keys(genomes: np.ndarray) -> np.ndarray:
    """One hashable, comparable void scalar per genome row (for duplicate detection)."""
    batch = np.ascontiguousarray(genomes, dtype=np.int64)
    return batch.view(np.dtype((np.void, batch.dtype.itemsize * batch.shape[1]))).reshape(-1)


class ParetoArchive:
    """Keeps the points of constrained rank 0 among all points added (Deb's rule).

    When some point is feasible, that is the feasible non-dominated set; otherwise it is the
    points of least violation. Where several points of the front share a genome (a genome
    told again with other values), only the first added stays. Added points are buffered and
    merged in batches (when the buffer outgrows the front, or when the front is read), which
    gives the same front as merging every batch at once as long as each genome is told once.
    """

    min_buffer = 2048  # merge once this many points (or as many as the front holds) wait

    def __init__(self, genome_length: int, num_objectives: int) -> None:
        self.genome_length = genome_length
        self.num_objectives = num_objectives
        self._genomes = np.zeros((0, genome_length), dtype=np.int64)
        self._objectives = np.zeros((0, num_objectives))
        self._violations = np.zeros(0)
        self._buffer: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._buffered = 0

    def __len__(self) -> int:
        self._merge()
        return len(self._genomes)

    def update(self, genomes: np.ndarray, objectives: np.ndarray, violations: np.ndarray) -> None:
        batch = np.asarray(genomes, dtype=np.int64).reshape(-1, self.genome_length)
        self._buffer.append(
            (
                batch,
                np.asarray(objectives, dtype=np.float64).reshape(len(batch), self.num_objectives),
                np.asarray(violations, dtype=np.float64).reshape(len(batch)),
            )
        )
        self._buffered += len(batch)
        if self._buffered >= max(self.min_buffer, len(self._genomes)):
            self._merge()

    def _merge(self) -> None:
        if not self._buffer:
            return
        all_genomes = np.concatenate([self._genomes, *(item[0] for item in self._buffer)])
        all_objectives = np.concatenate([self._objectives, *(item[1] for item in self._buffer)])
        all_violations = np.concatenate([self._violations, *(item[2] for item in self._buffer)])
        self._buffer = []
        self._buffered = 0
        keep = constrained_ranks(all_objectives, all_violations) == 0
        all_genomes = all_genomes[keep]
        all_objectives = all_objectives[keep]
        all_violations = all_violations[keep]
        first = np.sort(np.unique(row_keys(all_genomes), return_index=True)[1])
        self._genomes = all_genomes[first]
        self._objectives = all_objectives[first]
        self._violations = all_violations[first]

    def points(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Copies of the front's genomes, objectives and violations (in the order added)."""
        self._merge()
        return self._genomes.copy(), self._objectives.copy(), self._violations.copy()

    def to_dict(self) -> dict[str, Any]:
        genomes, objectives, violations = self.points()
        return {
            "genomes": genomes.tolist(),
            "objectives": objectives.tolist(),
            "violations": violations.tolist(),
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], genome_length: int, num_objectives: int
    ) -> ParetoArchive:
        archive = cls(genome_length, num_objectives)
        genomes = np.asarray(data["genomes"], dtype=np.int64).reshape(-1, genome_length)
        archive._genomes = genomes
        archive._objectives = np.asarray(data["objectives"], dtype=np.float64).reshape(
            len(genomes), num_objectives
        )
        archive._violations = np.asarray(data["violations"], dtype=np.float64).reshape(len(genomes))
        return archive
