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
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from cnnkit.errors import (
    ConfigError,
    IndexFileError,
    MissingExtraError,
    UnknownNameError,
    import_extra,
)
from cnnkit.search.exact import sample_rows

if TYPE_CHECKING:  # numpy is imported where used: the CLI reads the backends' names
    import numpy as np

FAISS_KINDS = ("flat", "ivf", "hnsw", "ivfpq")
AUTO_THRESHOLD = 100_000  # vectors; from here "auto" takes FAISS's IVF when it is installed
AUTO_KIND = "ivf"
TRAIN_POINTS_PER_CELL = 64  # k-means sample: FAISS warns below 39 per centroid
PARAM_NAMES = ("nlist", "nprobe", "m", "ef_construction", "ef_search")  # default_params's


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
    ef_search) were chosen for recall@10 >= 0.95 on real features (docs/search.md)."""
    nlist = max(1, min(int(4 * math.sqrt(count)), count // TRAIN_POINTS_PER_CELL or 1))
    if kind == "flat":
        return {}
    if kind == "ivf":
        return {"nlist": nlist, "nprobe": max(1, min(nlist, max(16, nlist // 16)))}
    if kind == "hnsw":
        return {"m": 32, "ef_construction": 80, "ef_search": 128}
    if kind == "ivfpq":
        m = next(m for m in (64, 48, 32, 16, 8, 4, 2, 1) if dim % m == 0 and m <= dim)
        return {"nlist": nlist, "nprobe": max(1, min(nlist, max(16, nlist // 8))), "m": m}
    raise UnknownNameError.of("FAISS index kind", kind, FAISS_KINDS)


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

        faiss = require_faiss()
        if "nprobe" in self.params:
            faiss.extract_index_ivf(self.index).nprobe = self.params["nprobe"]
        if "ef_search" in self.params:
            self.index.hnsw.efSearch = self.params["ef_search"]
        k = min(k, self.index.ntotal)
        scores, positions = self.index.search(np.ascontiguousarray(queries, np.float32), k)
        return scores, positions.astype(np.int64)

    def to_bytes(self) -> bytes:
        return require_faiss().serialize_index(self.index).tobytes()


def build_faiss(kind: str, shards: Sequence[np.ndarray], params: dict[str, int]) -> FaissIndex:
    """A FAISS index of ``kind`` over the shards' rows, trained (IVF kinds) on a sample."""
    dim = shards[0].shape[1]
    index = FaissIndex(new_index(kind, dim, params), kind, params)
    if not index.index.is_trained:
        count = sum(len(shard) for shard in shards)
        if count < params["nlist"]:
            raise ConfigError(f"{kind}: {count} vectors cannot train {params['nlist']} cells")
        sample = sample_rows(shards, min(count, TRAIN_POINTS_PER_CELL * params["nlist"]))
        index.index.train(sample)
    for shard in shards:
        index.add(shard)
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
    ``default_params`` (``nprobe`` where given), stored in ``faiss-NNNNN.index``."""

    name: str  # the kind, one of FAISS_KINDS
    extra: str | None = "faiss"
    file_prefix: str | None = "faiss"
    auto_from: int | None = field(init=False)

    def __post_init__(self) -> None:
        self.auto_from = AUTO_THRESHOLD if self.name == AUTO_KIND else None

    def available(self) -> bool:
        return faiss_available()

    def params(self, count: int, dim: int, nprobe: int | None) -> dict[str, int]:
        params = default_params(self.name, count, dim)
        if nprobe is not None and "nprobe" in params:
            params["nprobe"] = min(nprobe, params["nlist"])
        return params

    def build(self, vectors: Sequence[np.ndarray], params: dict[str, int]) -> FaissIndex:
        return build_faiss(self.name, vectors, params)

    def load(
        self, vectors: Sequence[np.ndarray], data: bytes | None, params: dict[str, int], source: str
    ) -> FaissIndex:
        if data is None:
            raise IndexFileError(f"{source}: no FAISS index file")
        return load_faiss(data, self.name, params, source)
