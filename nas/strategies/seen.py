"""Duplicate elimination: a hash set of the canonical genomes a strategy has proposed or been
told, and a helper that redraws proposals until they are new."""

from __future__ import annotations

import base64
import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from search_spaces import Space, genome_layout, mutate_genomes, sample_genomes

__all__ = ["SeenGenomes", "fresh_genomes", "surplus"]

logger = logging.getLogger(__name__)


class SeenGenomes:
    """A set of canonical genomes, stored as the bytes of a compact integer dtype.

    Its state is one base64 string of the genomes in the order first added (about 1.4 bytes of
    JSON per gene), so saving a strategy after every batch stays cheap.
    """

    def __init__(self, space: Space) -> None:
        layout = genome_layout(space)
        widest = int(layout.cardinalities.max())
        self.length = layout.length
        self.dtype = np.dtype(np.uint8 if widest <= 256 else np.uint32)
        self.keys: set[bytes] = set()
        self._order: list[bytes] = []
        # Share of new genomes among the candidates last offered to fresh_genomes; a converged
        # population breeds mostly repeats, and breeding enough spares up front is far cheaper
        # than rounds of re-mutating the repeats.
        self.fresh_rate = 1.0

    def __len__(self) -> int:
        return len(self.keys)

    def encode(self, genomes: np.ndarray) -> list[bytes]:
        compact = np.ascontiguousarray(genomes, dtype=self.dtype)
        return [row.tobytes() for row in compact]

    def add(self, genomes: np.ndarray) -> None:
        for key in self.encode(genomes):
            if key not in self.keys:
                self.keys.add(key)
                self._order.append(key)

    def new_mask(self, genomes: np.ndarray) -> np.ndarray:
        """True for rows neither seen before nor equal to an earlier row of ``genomes``."""
        batch_keys: set[bytes] = set()
        mask = np.zeros(len(genomes), dtype=bool)
        for i, key in enumerate(self.encode(genomes)):
            if key not in self.keys and key not in batch_keys:
                mask[i] = True
                batch_keys.add(key)
        return mask

    def to_dict(self) -> dict[str, Any]:
        data = base64.b64encode(b"".join(self._order)).decode("ascii")
        return {
            "dtype": self.dtype.name,
            "count": len(self._order),
            "data": data,
            "fresh_rate": self.fresh_rate,
        }

    def load_dict(self, state: Mapping[str, Any]) -> None:
        if state["dtype"] != self.dtype.name:
            raise ValueError(f"seen genomes saved as {state['dtype']}, expected {self.dtype.name}")
        raw = base64.b64decode(state["data"])
        width = self.length * self.dtype.itemsize
        if len(raw) != int(state["count"]) * width:
            raise ValueError("seen genomes in the strategy state are corrupt (wrong length)")
        self._order = [raw[i : i + width] for i in range(0, len(raw), width)]
        self.keys = set(self._order)
        self.fresh_rate = float(state.get("fresh_rate", 1.0))


def surplus(count: int, fresh_rate: float = 1.0) -> int:
    """How many candidates to breed for ``count`` new genomes when a share ``fresh_rate`` of
    candidates has lately been new: enough, with a quarter to spare, that most duplicates are
    replaced by spare candidates rather than by another round of mutation (at most 4x)."""
    if not count:
        return 0
    expected = count / min(1.0, max(fresh_rate, 0.25))
    return math.ceil(expected * 1.25) + 1


def fresh_genomes(
    space: Space,
    candidates: np.ndarray,
    seen: SeenGenomes,
    rng: np.random.Generator,
    mutation_probability: float,
    retries: int,
    count: int | None = None,
) -> np.ndarray:
    """``count`` genomes (default: all) from ``candidates`` that repeat no seen genome nor
    each other, added to ``seen``.

    New candidates are taken first, in order; if there are fewer than ``count``, duplicates
    fill up and are mutated again, up to ``retries`` times with a per-gene probability 4, 16,
    64... times the given one (at most 1), then redrawn uniformly. If the space is nearly
    exhausted some duplicates may remain (logged at debug level).
    """
    pool = np.asarray(candidates, dtype=np.int64)
    count = len(pool) if count is None else count
    if count > len(pool):
        raise ValueError(f"asked for {count} genomes from {len(pool)} candidates")
    new = seen.new_mask(pool)
    if len(pool):
        seen.fresh_rate = float(new.mean())
    chosen = np.flatnonzero(new)[:count]
    if len(chosen) < count:
        chosen = np.sort(np.concatenate([chosen, np.flatnonzero(~new)[: count - len(chosen)]]))
    batch = pool[chosen].copy()
    if len(batch) == 0:
        return batch
    probability = max(mutation_probability, 1.0 / batch.shape[1])
    duplicate = ~seen.new_mask(batch)
    for attempt in range(retries + 1):
        if not duplicate.any():
            break
        if attempt < retries:
            rows = batch[duplicate]
            batch[duplicate] = mutate_genomes(
                space, rows, rng, min(1.0, probability * 4 ** (attempt + 1))
            )
        else:
            batch[duplicate] = sample_genomes(space, rng, int(duplicate.sum()))
        duplicate = ~seen.new_mask(batch)
    if duplicate.any():
        logger.debug(
            "%d proposed genomes repeat earlier ones: space nearly exhausted", duplicate.sum()
        )
    seen.add(batch)
    return batch
