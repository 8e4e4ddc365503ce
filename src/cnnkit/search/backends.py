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

from collections.abc import Mapping, Sequence
from itertools import groupby
from typing import TYPE_CHECKING, Protocol

from cnnkit.errors import ConfigError, UnknownNameError
from cnnkit.search.exact import ExactBackend
from cnnkit.search.faiss_backend import FAISS_KINDS, FaissBackend
from cnnkit.search.knob import Knob

if TYPE_CHECKING:  # numpy is imported where used: the CLI reads the backends' names
    import numpy as np

AUTO = "auto"  # --backend's choice by the collection's size and the memory budget
MB = 1_000_000  # bytes: --memory-budget's unit


class Searcher(Protocol):
    """A backend's structure over an index's vectors, built or loaded."""

    def __len__(self) -> int: ...  # rows it searches

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores (Q, k') float32 and positions (Q, k') int64 of the k' = min(k, rows)
        nearest rows to each query (Q, D), best first; a position of -1: none found."""
        ...

    def to_bytes(self) -> bytes: ...  # its file's content, where it stores one

    def with_settings(self, settings: Mapping[str, int]) -> Searcher:
        """The same structure, searched with other search-time settings (its knob's)."""
        ...


class SearchBackend(Protocol):
    name: str  # --backend's value and the manifest's backend.name
    extra: str | None  # the pip extra it needs ("faiss": cnnkit[faiss]); None: cnnkit's own
    # It stores PREFIX-NNNNN.index in the folder (a new number each time it is written);
    # None: no file, it is built from the vectors whenever the index opens.
    file_prefix: str | None
    auto_from: int | None  # "auto" may take it from this many vectors, where available

    def available(self) -> bool: ...  # its extra is installed

    def params(self, count: int, dim: int, given: Mapping[str, int]) -> dict[str, int]:
        """Its settings for ``count`` vectors of ``dim`` (the manifest's backend.params),
        with those of ``given`` that it has."""
        ...

    def fit(self, count: int, dim: int, budget: int | None) -> dict[str, int] | None:
        """Its build settings for ``count`` vectors of ``dim`` within ``budget`` bytes of
        memory (None: no limit), smaller than its defaults where they must be; None
        where nothing of its kind fits."""
        ...

    def knob(self, params: Mapping[str, int]) -> Knob | None:
        """Its search-time setting that buys recall with time; None: exhaustive."""
        ...

    def build(
        self, vectors: Sequence[np.ndarray], params: dict[str, int], progress: bool = False
    ) -> Searcher:
        """Its structure over ``vectors``, with a progress bar where it takes a while."""
        ...

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


def choose_backend(
    name: str, count: int, dim: int = 1, budget: int | None = None
) -> tuple[SearchBackend, dict[str, int]]:
    """``--backend``'s choice for ``count`` vectors of ``dim`` within ``budget`` bytes
    (None: no limit), with the build settings that fit. "auto", as autofaiss chooses:
    the first of ``auto_ladder`` that is available, whose ``auto_from`` is at most
    ``count`` and that fits (a graph where it fits, else an inverted file, else
    compressed codes)."""
    if name not in BACKEND_CHOICES:
        raise UnknownNameError.of("search backend", name, BACKEND_CHOICES)
    candidates = [BACKENDS[name]] if name != AUTO else auto_ladder()
    usable = [b for b in candidates if (b.auto_from or 0) <= count and b.available()]
    for backend in usable if name == AUTO else candidates:
        params = backend.fit(count, dim, budget)
        if params is not None:
            return backend, params
    names = ", ".join(backend.name for backend in usable)
    raise ConfigError(
        f"a memory budget of {(budget or 0) / MB:,.1f} MB holds no {names} index of "
        f"{count:,} {dim}-d vectors; give a larger --memory-budget"
    )


def auto_ladder() -> list[SearchBackend]:
    """The backends "auto" may take, the largest ``auto_from`` first (exact's is 0), in
    the table's order among equals."""
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
    steps = []
    for start, step in groupby(auto_ladder(), key=lambda backend: backend.auto_from):
        backends = list(step)
        listed = ", ".join(b.name for b in backends)
        if len(backends) > 1:
            listed = f"the first of {listed} that fits --memory-budget"
        installed = " when installed" if any(b.extra for b in backends) else ""
        steps.append(f"{listed} from {start:,} vectors{installed}" if start else listed)
    return "; ".join(kinds) + f"; {AUTO}: " + ", else ".join(steps)
