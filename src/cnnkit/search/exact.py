"""Exact nearest neighbours by inner product, with no dependency beyond torch: the
``exact`` search backend (``search.backends``).

The collection is read block by block (from memory-mapped shards, so it need not fit
in memory), each block's scores are one matrix product with a chunk of the queries,
and a running top-k keeps the best so far: memory stays at ``MAX_SCORES`` floats
whatever the collection's size, and the BLAS product runs at the machine's speed.
The backend stores no file: it searches the index's shards as they are.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np  # imported where used: the CLI reads the backends' names without torch
    import torch

QUERY_CHUNK = 1024  # queries per pass over the collection
MAX_SCORES = 1 << 24  # floats in one (queries x block) score matrix: 64 MiB
MIN_BLOCK = 4096  # collection rows per product, at least


def exact_top_k(
    queries: np.ndarray, shards: Sequence[np.ndarray], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest inner products of each query (Q, D) with the rows of the
    shards (each (N_i, D), float32 or float16), taken as one collection in order:
    scores (Q, k') float32 and positions (Q, k') int64 into that collection, best
    first, k' = min(k, rows)."""
    import numpy as np

    total = sum(len(shard) for shard in shards)
    k = min(k, total)
    scores = np.empty((len(queries), k), np.float32)
    positions = np.empty((len(queries), k), np.int64)
    for start in range(0, len(queries), QUERY_CHUNK):
        chunk = np.ascontiguousarray(queries[start : start + QUERY_CHUNK], np.float32)
        best, where = top_k_chunk(read_only_tensor(chunk), shards, k)
        scores[start : start + len(chunk)] = best.numpy()
        positions[start : start + len(chunk)] = where.numpy()
    return scores, positions


def top_k_chunk(
    queries: torch.Tensor, shards: Sequence[np.ndarray], k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    import numpy as np
    import torch

    block = max(MIN_BLOCK, MAX_SCORES // max(1, len(queries)))
    best = torch.full((len(queries), 0), -torch.inf)
    where = torch.zeros((len(queries), 0), dtype=torch.int64)
    offset = 0
    for shard in shards:
        for first in range(0, len(shard), block):
            rows = read_only_tensor(np.asarray(shard[first : first + block], np.float32))
            scores = queries @ rows.T  # (Q, B)
            top = scores.topk(min(k, scores.shape[1]), dim=1)
            best = torch.cat([best, top.values], dim=1)
            where = torch.cat([where, top.indices + offset + first], dim=1)
            order = best.topk(min(k, best.shape[1]), dim=1).indices
            best, where = best.gather(1, order), where.gather(1, order)
        offset += len(shard)
    return best, where


def read_only_tensor(array: np.ndarray) -> torch.Tensor:
    """``array`` as a tensor without a copy (a copy would double a single query's time),
    also when it is a read-only memory map: torch warns that writing to such a tensor is
    undefined, and nothing here writes to it."""
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The given NumPy array is not writable")
        return torch.from_numpy(array)


@dataclass(frozen=True)
class ExactSearch:
    """Every row of the shards compared with every query (``exact_top_k``)."""

    shards: Sequence[np.ndarray]

    def __len__(self) -> int:
        return sum(len(shard) for shard in self.shards)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return exact_top_k(queries, self.shards, k)

    def to_bytes(self) -> bytes:
        return b""  # stores no file (file_prefix None)

    def with_settings(self, settings: Mapping[str, int]) -> ExactSearch:
        return self  # it has no search-time settings


class ExactBackend:
    """cnnkit's own backend: no dependency, no file, nothing to build; the reference
    that the others' recall is measured against. "auto" takes it below the others'
    thresholds."""

    name: str = "exact"
    extra: str | None = None
    file_prefix: str | None = None
    auto_from: int | None = 0

    def available(self) -> bool:
        return True

    def params(self, count: int, dim: int, given: Mapping[str, int]) -> dict[str, int]:
        return {}

    def fit(self, count: int, dim: int, budget: int | None) -> dict[str, int] | None:
        return {}  # no structure beyond the stored vectors, read through memory maps

    def knob(self, params: Mapping[str, int]) -> None:
        return None  # exhaustive: nothing to trade for speed

    def build(
        self, vectors: Sequence[np.ndarray], params: dict[str, int], progress: bool = False
    ) -> ExactSearch:
        return ExactSearch(vectors)  # nothing to build

    def load(
        self, vectors: Sequence[np.ndarray], data: bytes | None, params: dict[str, int], source: str
    ) -> ExactSearch:
        return ExactSearch(vectors)


def sample_rows(shards: Sequence[np.ndarray], count: int, seed: int = 0) -> np.ndarray:
    """``count`` distinct rows of the shards, drawn uniformly (seeded), as float32."""
    return rows_at(shards, sample_positions(shards, count, seed))


def sample_positions(shards: Sequence[np.ndarray], count: int, seed: int = 0) -> np.ndarray:
    """``count`` distinct positions in the shards taken in order, drawn uniformly
    (seeded), ascending."""
    import numpy as np

    total = sum(len(shard) for shard in shards)
    return np.sort(np.random.default_rng(seed).choice(total, size=count, replace=False))


def rows_at(shards: Sequence[np.ndarray], chosen: np.ndarray) -> np.ndarray:
    """The rows at ascending positions ``chosen`` of the shards taken in order, float32."""
    import numpy as np

    starts = np.cumsum([0] + [len(shard) for shard in shards])
    rows = []
    for i, shard in enumerate(shards):
        mine = chosen[(chosen >= starts[i]) & (chosen < starts[i + 1])] - starts[i]
        rows.append(np.asarray(shard[mine], dtype=np.float32))
    return np.concatenate(rows)
