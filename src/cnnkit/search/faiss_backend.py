"""FAISS indexes over an index's vectors (the optional extra ``cnnkit[faiss]``).

Four kinds, all by inner product (= cosine on unit vectors), Johnson et al., "Billion-
scale similarity search with GPUs" (2017) and FAISS's wiki ("Guidelines to choose an
index"):
- ``flat``: exhaustive, the same neighbours as the exact backend;
- ``ivf``: an inverted file, vectors assigned to ``nlist`` k-means cells, a query
  visiting ``nprobe`` of them;
- ``hnsw``: a hierarchical navigable small-world graph (Malkov and Yashunin 2018),
  ``m`` links per node, ``ef_search`` candidates per query;
- ``ivfpq``: an inverted file of product-quantised codes, ``m`` bytes per vector.

Each kind is one search backend (``FaissBackend``, in ``search.backends``' table).
Positions in a FAISS index are positions in the index's shards taken in order. The
index is serialised by FAISS itself (its own binary format; nothing is unpickled), to
``faiss-NNNNN.index`` in the index folder.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import TYPE_CHECKING, Any

from cnnkit.errors import (
    ConfigError,
    IndexFileError,
    MissingExtraError,
    UnknownNameError,
    import_extra,
)
from cnnkit.progress import bar as progress_bar
from cnnkit.search.exact import sample_rows
from cnnkit.search.knob import Knob

if TYPE_CHECKING:  # numpy is imported where used: the CLI reads the backends' names
    import numpy as np

# In "auto"'s order of preference where the memory budget allows (after flat, which it
# never takes): a graph, else an inverted file of whole vectors, else of compressed codes.
FAISS_KINDS = ("flat", "hnsw", "ivf", "ivfpq")
AUTO_THRESHOLD = 100_000  # vectors; from here "auto" takes a FAISS kind when it is installed
AUTO_KINDS = ("hnsw", "ivf", "ivfpq")  # those "auto" may take, the first that fits
TRAIN_POINTS_PER_CELL = 64  # k-means sample: FAISS warns below 39 per centroid
PARAM_NAMES = ("nlist", "nprobe", "m", "ef_construction", "ef_search")  # default_params's
KNOBS = {"ivf": "nprobe", "ivfpq": "nprobe", "hnsw": "ef_search"}  # each kind's search setting
HNSW_LINKS = 32  # m: links per node (FAISS's wiki: 4 to 64); the most a budget leaves
HNSW_LEAST_LINKS = 8  # autofaiss's floor: a sparser graph loses recall fast
EF_SEARCH_MOST = 1 << 12  # candidates per query: a quarter of a 1M graph's nodes reached
PQ_BYTES = (64, 48, 32, 16, 8, 4, 2, 1)  # IVF-PQ's m, codes per vector, largest first
ID_BYTES = 8  # an inverted list stores each vector's int64 id beside it
NODE_BYTES = 16  # an HNSW node's level, offsets and upper-level links, on average (measured)


def require_faiss() -> ModuleType:
    return import_extra("faiss", "faiss", "the FAISS search backends")


def faiss_available() -> bool:
    try:
        require_faiss()
    except MissingExtraError:
        return False
    return True


def default_params(kind: str, count: int, dim: int) -> dict[str, int]:
    """Settings for ``count`` vectors of ``dim``; the search-time ones (nprobe,
    ef_search) are the starting points that a target recall tunes (``search.tune``)."""
    nlist = max(1, min(int(4 * math.sqrt(count)), count // TRAIN_POINTS_PER_CELL or 1))
    if kind == "flat":
        return {}
    if kind == "ivf":
        return {"nlist": nlist, "nprobe": max(1, min(nlist, max(16, nlist // 16)))}
    if kind == "hnsw":
        return {"m": HNSW_LINKS, "ef_construction": 80, "ef_search": 128}
    if kind == "ivfpq":
        m = next(m for m in PQ_BYTES if dim % m == 0 and m <= dim)
        return {"nlist": nlist, "nprobe": max(1, min(nlist, max(16, nlist // 8))), "m": m}
    raise UnknownNameError.of("FAISS index kind", kind, FAISS_KINDS)


def memory_bytes(kind: str, count: int, dim: int, params: Mapping[str, int]) -> int:
    """What an index of ``kind`` over ``count`` vectors of ``dim`` takes in memory (and
    on disk), estimated as autofaiss does: float32 vectors, HNSW's 2m int32 links a node
    on its lowest level, an inverted list's id a vector, the coarse centroids."""
    centroids = params.get("nlist", 0) * dim * 4
    if kind == "flat":
        return count * dim * 4
    if kind == "hnsw":
        return count * (dim * 4 + 2 * params["m"] * 4 + NODE_BYTES)
    if kind == "ivf":
        return count * (dim * 4 + ID_BYTES) + centroids
    return count * (params["m"] + ID_BYTES) + centroids + 256 * dim * 4  # + PQ's codebooks


def fitting_params(kind: str, count: int, dim: int, budget: int | None) -> dict[str, int] | None:
    """``kind``'s settings for ``count`` vectors of ``dim`` within ``budget`` bytes (None:
    no limit): its defaults where they fit, else HNSW with fewer links (autofaiss: m
    from (budget / 4 count - dim) / 2, at least 8) or IVF-PQ with fewer bytes a vector;
    None where nothing of ``kind`` fits."""
    params = default_params(kind, count, dim)
    if budget is None:
        return params
    if kind == "hnsw":
        count = max(1, count)
        links = (budget - count * (NODE_BYTES + dim * 4)) // (8 * count)
        if links < HNSW_LEAST_LINKS:
            return None
        return {**params, "m": min(HNSW_LINKS, links)}
    if kind == "ivfpq":
        for m in (m for m in PQ_BYTES if dim % m == 0 and m <= params["m"]):
            if memory_bytes(kind, count, dim, {**params, "m": m}) <= budget:
                return {**params, "m": m}
        return None
    return params if memory_bytes(kind, count, dim, params) <= budget else None


def search_parameters(kind: str, params: Mapping[str, int]) -> Any:
    """FAISS's per-call settings (nothing is set on the shared index, so that searches
    with other settings may run side by side); None for flat."""
    faiss = require_faiss()
    if kind == "hnsw":
        return faiss.SearchParametersHNSW(efSearch=params["ef_search"])
    if "nprobe" in params:
        return faiss.SearchParametersIVF(nprobe=params["nprobe"])
    return None


def new_index(kind: str, dim: int, params: dict[str, int]):
    faiss = require_faiss()
    inner = faiss.METRIC_INNER_PRODUCT
    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, params["m"], inner)
        index.hnsw.efConstruction = params["ef_construction"]
        return index
    quantizer = faiss.IndexFlatIP(dim)
    if kind == "ivf":
        return faiss.IndexIVFFlat(quantizer, dim, params["nlist"], inner)
    return faiss.IndexIVFPQ(quantizer, dim, params["nlist"], params["m"], 8, inner)


@dataclass
class FaissIndex:
    """A FAISS index with the settings its searches use."""

    index: Any  # a faiss.Index; faiss ships no type information
    kind: str
    params: dict[str, int]

    def __len__(self) -> int:
        return self.index.ntotal

    @property
    def dim(self) -> int:
        """The width of the vectors it holds."""
        return self.index.d

    def add(self, vectors: np.ndarray) -> None:
        import numpy as np

        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Like ``exact_top_k``; positions of -1 (fewer than k found) are dropped by
        the caller."""
        import numpy as np

        k = min(k, self.index.ntotal)
        queries = np.ascontiguousarray(queries, np.float32)
        settings = search_parameters(self.kind, self.params)
        scores, positions = self.index.search(queries, k, params=settings)
        return scores, positions.astype(np.int64)

    def to_bytes(self) -> bytes:
        return require_faiss().serialize_index(self.index).tobytes()

    def with_settings(self, settings: Mapping[str, int]) -> FaissIndex:
        """The same index searched with other search-time settings (nprobe, ef_search)."""
        return replace(self, params={**self.params, **settings})


def build_faiss(
    kind: str, shards: Sequence[np.ndarray], params: dict[str, int], progress: bool = False
) -> FaissIndex:
    """A FAISS index of ``kind`` over the shards' rows, trained (IVF kinds) on a sample,
    added shard by shard under a progress bar (an HNSW graph of 1M vectors: minutes)."""
    dim, count = shards[0].shape[1], sum(len(shard) for shard in shards)
    index = FaissIndex(new_index(kind, dim, params), kind, params)
    if not index.index.is_trained:
        if count < params["nlist"]:
            raise ConfigError(f"{kind}: {count} vectors cannot train {params['nlist']} cells")
        sample = sample_rows(shards, min(count, TRAIN_POINTS_PER_CELL * params["nlist"]))
        index.index.train(sample)
    bar = progress_bar(total=count, unit="vec", desc=f"building {kind}", disable=not progress)
    for shard in shards:
        index.add(shard)
        bar.update(len(shard))
    bar.close()
    return index


def load_faiss(data: bytes, kind: str, params: dict[str, int], source: str) -> FaissIndex:
    import numpy as np

    faiss = require_faiss()
    try:
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable"
        raise IndexFileError(f"{source}: not a readable FAISS index ({reason[:80]})") from None
    expected = {
        "flat": faiss.IndexFlatIP,
        "ivf": faiss.IndexIVFFlat,
        "hnsw": faiss.IndexHNSWFlat,
        "ivfpq": faiss.IndexIVFPQ,
    }[kind]
    if not isinstance(index, expected) or index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise IndexFileError(
            f"{source}: holds a FAISS {type(index).__name__} (metric {index.metric_type}), "
            f"the manifest says {kind} by inner product"
        )
    return FaissIndex(index, kind, params)


@dataclass
class FaissBackend:
    """One FAISS kind as a search backend: built over the index's vectors with
    ``default_params`` (and the settings given), stored in ``faiss-NNNNN.index``."""

    name: str  # the kind, one of FAISS_KINDS
    extra: str | None = "faiss"
    file_prefix: str | None = "faiss"
    auto_from: int | None = field(init=False)

    def __post_init__(self) -> None:
        self.auto_from = AUTO_THRESHOLD if self.name in AUTO_KINDS else None

    def available(self) -> bool:
        return faiss_available()

    def params(self, count: int, dim: int, given: Mapping[str, int]) -> dict[str, int]:
        params = default_params(self.name, count, dim)
        params.update((name, value) for name, value in given.items() if name in params)
        knob = self.knob(params)
        if knob is not None:
            params[knob.name] = knob.clipped(params[knob.name])
        return params

    def fit(self, count: int, dim: int, budget: int | None) -> dict[str, int] | None:
        return fitting_params(self.name, count, dim, budget)

    def knob(self, params: Mapping[str, int]) -> Knob | None:
        if self.name not in KNOBS:
            return None
        most = params.get("nlist", EF_SEARCH_MOST)  # IVF: every cell, exhaustive
        return Knob(KNOBS[self.name], 1 if "nlist" in params else 10, most)

    def build(
        self, vectors: Sequence[np.ndarray], params: dict[str, int], progress: bool = False
    ) -> FaissIndex:
        return build_faiss(self.name, vectors, params, progress)

    def load(
        self, vectors: Sequence[np.ndarray], data: bytes | None, params: dict[str, int], source: str
    ) -> FaissIndex:
        if data is None:
            raise IndexFileError(f"{source}: no FAISS index file")
        return load_faiss(data, self.name, params, source)
