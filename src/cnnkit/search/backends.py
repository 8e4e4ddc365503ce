"""Search backends: how an index finds the nearest of its vectors, and the one table
of them (``BACKENDS``).

A backend is built from the index's vectors (its shards, rows of unit length, taken in
order as one collection), may store one file in the index folder (the manifest's
``backend.file``), is loaded back when the index opens, and gives the k nearest rows
of each query by inner product (= cosine similarity). Two implementations: ``exact``
(cnnkit's own, ``search.exact``) and FAISS's kinds (``search.faiss_backend``, the
extra ``cnnkit[faiss]``). The CLI's choices, the manifest's check, "auto", building,
changing and opening an index all read the table: a new backend is a module with a
class like those two and one entry here.

Torch-free (torch and faiss are imported where they are used), so that the CLI lists
the names in ``--help``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from cnnkit.errors import UnknownNameError
from cnnkit.search.exact import ExactBackend, exact_top_k, sample_rows
from cnnkit.search.faiss_backend import FAISS_KINDS, FaissBackend

if TYPE_CHECKING:  # numpy is imported where used: the CLI reads the backends' names
    import numpy as np

AUTO = "auto"  # --backend's choice by the collection's size
RECALL_SAMPLE = 500  # queries drawn from the collection to measure recall@10 at build time


class Searcher(Protocol):
    """A backend's structure over an index's vectors, built or loaded."""

    def __len__(self) -> int: ...  # rows it searches

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores (Q, k') float32 and positions (Q, k') int64 of the k' = min(k, rows)
        nearest rows to each query (Q, D), best first; a position of -1: none found."""
        ...

    def to_bytes(self) -> bytes: ...  # its file's content, where it stores one


class SearchBackend(Protocol):
    name: str  # --backend's value and the manifest's backend.name
    extra: str | None  # the pip extra it needs ("faiss": cnnkit[faiss]); None: cnnkit's own
    # It stores PREFIX-NNNNN.index in the folder (a new number each time it is written);
    # None: no file, it is built from the vectors whenever the index opens.
    file_prefix: str | None
    auto_from: int | None  # "auto" takes it from this many vectors, where available

    def available(self) -> bool: ...  # its extra is installed

    def params(self, count: int, dim: int, nprobe: int | None) -> dict[str, int]:
        """Its settings for ``count`` vectors of ``dim`` (the manifest's backend.params),
        ``nprobe`` where given and meaningful."""
        ...

    def build(self, vectors: Sequence[np.ndarray], params: dict[str, int]) -> Searcher: ...

    def load(
        self, vectors: Sequence[np.ndarray], data: bytes | None, params: dict[str, int], source: str
    ) -> Searcher:
        """The searcher of an opened index, from its file's bytes (named ``source`` in
        errors) or, for a backend that stores none (``data`` None), its vectors."""
        ...


EXACT = ExactBackend()  # the default, and the reference for every other's recall
REGISTERED: tuple[SearchBackend, ...] = (EXACT, *(FaissBackend(kind) for kind in FAISS_KINDS))
BACKENDS = {backend.name: backend for backend in REGISTERED}  # in --backend's order
BACKEND_CHOICES = (AUTO, *BACKENDS)  # cnnkit index build --backend


def get_backend(name: str) -> SearchBackend:
    if name not in BACKENDS:
        raise UnknownNameError.of("search backend", name, BACKENDS)
    return BACKENDS[name]


def choose_backend(name: str, count: int) -> SearchBackend:
    """``--backend``'s choice for a collection of ``count`` vectors; "auto": the first
    of ``auto_ladder`` that is available and whose ``auto_from`` is at most ``count``."""
    if name not in BACKEND_CHOICES:
        raise UnknownNameError.of("search backend", name, BACKEND_CHOICES)
    if name != AUTO:
        return BACKENDS[name]
    return next(b for b in auto_ladder() if (b.auto_from or 0) <= count and b.available())


def auto_ladder() -> list[SearchBackend]:
    """The backends "auto" may take, the largest ``auto_from`` first (exact's is 0)."""
    ladder = [backend for backend in BACKENDS.values() if backend.auto_from is not None]
    return sorted(ladder, key=lambda backend: -(backend.auto_from or 0))


def describe_backends() -> str:
    """The backends, their extras and "auto"'s rule in one line, for ``--help``."""
    groups: dict[str | None, list[str]] = {}
    for backend in BACKENDS.values():
        groups.setdefault(backend.extra, []).append(backend.name)
    kinds = []
    for extra, names in groups.items():
        needs = f"cnnkit[{extra}]" if extra else "cnnkit's own"
        kinds.append(f"{', '.join(names)} ({needs})")
    steps = [
        f"{b.name} from {b.auto_from:,} vectors" + (" when installed" if b.extra else "")
        if b.auto_from
        else b.name
        for b in auto_ladder()
    ]
    return "; ".join(kinds) + f"; {AUTO}: " + ", else ".join(steps)


def recall_at_10(index: Searcher, shards: Sequence[np.ndarray], sample: int = RECALL_SAMPLE):
    """Mean fraction of the exact top 10 that ``index`` finds, for collection vectors
    used as queries (``sample`` of them, drawn with a fixed seed)."""
    import numpy as np

    total = sum(len(shard) for shard in shards)
    queries = sample_rows(shards, min(sample, total), seed=1)
    _, exact = exact_top_k(queries, shards, 10)
    _, found = index.search(queries, 10)
    hits = [len(set(a.tolist()) & set(b.tolist())) for a, b in zip(exact, found, strict=True)]
    return float(np.mean(hits)) / exact.shape[1]
