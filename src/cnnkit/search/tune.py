"""A backend and its settings chosen for a target recall, the way autofaiss chooses
them (Criteo's autofaiss: ``get_optimal_index_keys_v2``, ``get_optimal_hyperparameters``).

First the kind, by the collection's size and the memory budget
(``backends.choose_backend``: a graph where it fits, else an inverted file, else
compressed codes); then its search-time setting (``knob.Knob``: IVF's nprobe, HNSW's
ef_search), raised to the least value whose recall@10 against exact search reaches the
target. autofaiss tunes to a query time and reports the recall it gets; cnnkit tunes to
the recall, which a user can state without knowing the machine, and records both the
target and the recall measured (the manifest's ``backend``).

Recall is measured on held-out queries (``RecallProbe``): ``RECALL_SAMPLE`` rows of the
collection drawn with a fixed seed. Each would find itself at similarity 1, a hit that
costs the backend nothing, so its own row is left out of the exact answer and of the
backend's, and recall counts only the other items found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cnnkit.config import is_count
from cnnkit.errors import ConfigError, UnknownNameError
from cnnkit.search.backends import (
    AUTO,
    BACKEND_CHOICES,
    BACKENDS,
    EXACT,
    SearchBackend,
    Searcher,
    choose_backend,
)
from cnnkit.search.exact import exact_top_k, rows_at, sample_positions
from cnnkit.search.knob import Knob
from cnnkit.search.manifest import falls_short

if TYPE_CHECKING:
    import numpy as np

DEFAULT_TARGET_RECALL = 0.99  # of the true 10 nearest, found by an approximate backend
RECALL_SAMPLE = 1000  # held-out queries: recall's standard error about 0.002 at 0.99
RECALL_K = 10


@dataclass(frozen=True)
class BackendChoice:
    """What a build asks of its backend."""

    name: str = AUTO  # a name in backends.BACKEND_CHOICES
    target_recall: float | None = DEFAULT_TARGET_RECALL  # None: the settings as given
    memory_budget: int | None = None  # bytes its structure may take; None: no limit
    # Settings given (nprobe, ef_search, m, ...); a search-time one is used as given,
    # not tuned.
    settings: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Tuned:
    """A backend built over the vectors, with the settings it searches with."""

    backend: SearchBackend
    params: dict[str, int]
    searcher: Searcher
    recall_at_10: float | None  # measured on held-out queries; None for exact, the reference
    target_recall: float | None  # what its search-time setting was tuned to; None: nothing was

    @property
    def short_of_target(self) -> bool:
        return falls_short(self.recall_at_10, self.target_recall)


@dataclass(frozen=True)
class RecallProbe:
    """Rows of the collection as held-out queries, with their exact nearest other rows."""

    queries: np.ndarray  # (Q, D) float32
    own: np.ndarray  # (Q,) each query's own position, left out of every answer
    nearest: np.ndarray  # (Q, k) the exact k nearest other rows

    @classmethod
    def of(
        cls, shards: Sequence[np.ndarray], sample: int = RECALL_SAMPLE, seed: int = 1
    ) -> RecallProbe:
        total = sum(len(shard) for shard in shards)
        own = sample_positions(shards, min(sample, total), seed)
        queries = rows_at(shards, own)
        k = min(RECALL_K, total - 1)
        _, found = exact_top_k(queries, shards, k + 1)
        return cls(queries, own, others(found, own, k))

    def recall(self, searcher: Searcher) -> float:
        """Mean fraction of each query's exact nearest others that ``searcher`` finds."""
        import numpy as np

        k = self.nearest.shape[1]
        if k == 0:
            return 1.0  # a collection of one row: nothing else to find
        _, found = searcher.search(self.queries, k + 1)
        found = others(found, self.own, k)
        rows = zip(found.tolist(), self.nearest.tolist(), strict=True)
        # rounded off float's noise, far below the resolution of 1 / (k * queries)
        return round(float(np.mean([len(set(a) & set(b)) for a, b in rows])) / k, 6)


def others(found: np.ndarray, own: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` positions of each row of ``found`` that are not its query's own
    (-1 where fewer were found)."""
    import numpy as np

    kept = np.full((len(found), k), -1, dtype=np.int64)
    for i, (row, mine) in enumerate(zip(found, own, strict=True)):
        rest = row[(row != mine) & (row >= 0)][:k]
        kept[i, : len(rest)] = rest
    return kept


def build_tuned(
    vectors: Sequence[np.ndarray], choice: BackendChoice, progress: bool = False
) -> Tuned:
    """The backend ``choice`` names (or "auto"'s) built over ``vectors`` (the index's
    shards in order), its search-time setting tuned to the target recall unless given;
    ``progress``: a bar while it builds."""
    count, dim = sum(len(v) for v in vectors), int(vectors[0].shape[1])
    backend, fitted = choose_backend(choice.name, count, dim, choice.memory_budget)
    params = backend.params(count, dim, {**fitted, **choice.settings})
    check_settings(backend, params, choice.settings)
    searcher = backend.build(vectors, params, progress)
    knob = backend.knob(params)
    if backend is EXACT:
        return Tuned(backend, params, searcher, None, None)
    probe = RecallProbe.of(vectors)
    if knob is None or knob.name in choice.settings or choice.target_recall is None:
        return Tuned(backend, params, searcher, probe.recall(searcher), None)  # nothing tuned
    target = choice.target_recall
    value, recall = tune_knob(searcher, knob, probe, target)
    params = {**params, knob.name: value}
    return Tuned(backend, params, searcher.with_settings(params), recall, target)


def tune_knob(
    searcher: Searcher, knob: Knob, probe: RecallProbe, target: float
) -> tuple[int, float]:
    """The least value of ``knob`` whose recall reaches ``target``, with that recall:
    doubled from ``knob.least`` until one does, then bisected between the last that
    fell short and the first that reached it (autofaiss bisects its setting too); the
    knob's most and its recall where none does."""
    measured: dict[int, float] = {}

    def recall(value: int) -> float:
        if value not in measured:
            measured[value] = probe.recall(searcher.with_settings({knob.name: value}))
        return measured[value]

    short, enough = 0, knob.least  # short: the largest value known to fall short
    while recall(enough) < target:
        if enough >= knob.most:
            return enough, measured[enough]
        short, enough = enough, min(knob.most, 2 * enough)
    while enough - short > 1 and short >= knob.least:
        middle = (short + enough) // 2
        if recall(middle) >= target:
            enough = middle
        else:
            short = middle
    return enough, measured[enough]


def check_choice(choice: BackendChoice) -> None:
    """What can be checked before the vectors exist: the names, the target, and that
    a backend named has the settings given."""
    if choice.name not in BACKEND_CHOICES:
        raise UnknownNameError.of("search backend", choice.name, BACKEND_CHOICES)
    target = choice.target_recall
    if target is not None and not (isinstance(target, int | float) and 0 < target <= 1):
        raise ConfigError(f"target recall {target!r}: expected a number above 0, at most 1")
    for name, value in choice.settings.items():
        if not is_count(value):
            raise ConfigError(f"{name}={value!r}: expected a whole number, 1 or more")
    if choice.name != AUTO:
        backend = BACKENDS[choice.name]
        check_settings(backend, backend.params(1 << 20, 64, {}), choice.settings)


def check_settings(
    backend: SearchBackend, params: Mapping[str, int], given: Mapping[str, int]
) -> None:
    """Every setting given is one that ``backend`` has."""
    for name in given:
        if name not in params:
            having = [b.name for b in BACKENDS.values() if name in b.params(1 << 20, 64, {})]
            whose = f" (it is {', '.join(having)}'s)" if having else ""
            raise ConfigError(f"{name}: the {backend.name} backend has no such setting{whose}")
