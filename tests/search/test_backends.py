"""Every registered search backend on real features (LeNet-5's of 2,000 MNIST digits)
against a full numpy sort: its neighbours, its file read back, "auto"'s choice, the
manifest's check and the command line's choices. A new backend gets them all by its
entry in ``search.backends.BACKENDS``."""

import json

import numpy as np
import pytest

from cnnkit.errors import IndexFileError
from cnnkit.search import open_index
from cnnkit.search.backends import AUTO, BACKENDS, EXACT, choose_backend
from cnnkit.search.manifest import Manifest
from tests.helpers import require_module

# Least recall@10 against the full sort; a backend not named here is held to 0.9 (IVF
# and HNSW found 1.000 here). exact and flat are exhaustive (0.995: ties at float
# precision may swap at rank 10); IVF-PQ keeps 4 bytes of each 84-d vector (m = 4) and
# found 0.564 here.
LEAST_RECALL = {"exact": 0.995, "flat": 0.995, "ivfpq": 0.4}


@pytest.fixture(scope="module")
def digits(mnist_index) -> tuple[list[np.ndarray], np.ndarray]:
    """The index's first three shards (1,536 vectors) as the collection, and its last
    (464) as queries that the collection does not hold."""
    vectors = open_index(mnist_index).vectors
    return vectors[:-1], np.asarray(vectors[-1], np.float32)


def require(backend) -> None:
    if backend.extra is not None:
        require_module(backend.extra, backend.extra)  # faiss: named as its extra


@pytest.mark.parametrize("name", BACKENDS)
def test_every_backend_finds_the_exact_neighbours(name, digits):
    backend = BACKENDS[name]
    require(backend)
    collection, queries = digits
    rows = sum(len(shard) for shard in collection)
    params = backend.params(rows, queries.shape[1], {})
    searcher = backend.build(collection, params)
    assert len(searcher) == rows
    scores, positions = searcher.search(queries, 10)
    assert scores.shape == positions.shape == (len(queries), 10)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first
    # The reference: every inner product, fully sorted by numpy.
    every = queries @ np.concatenate(collection).astype(np.float32).T
    nearest = np.argsort(-every, axis=1)[:, :10]
    pairs = zip(positions.tolist(), nearest.tolist(), strict=True)
    recall = np.mean([len(set(a) & set(b)) for a, b in pairs]) / 10
    assert recall >= LEAST_RECALL.get(name, 0.9), recall
    # Stored (where it stores a file) and opened again, it answers the same.
    data = searcher.to_bytes() if backend.file_prefix is not None else None
    loaded = backend.load(collection, data, params, "test")
    assert len(loaded) == rows
    assert np.array_equal(loaded.search(queries, 10)[1], positions)


def test_auto_takes_each_backend_from_its_size():
    assert choose_backend(AUTO, 0)[0] is EXACT and EXACT.auto_from == 0
    for backend in BACKENDS.values():
        if backend.auto_from is not None and backend.available():
            # Without a memory budget the first of those from a size is taken.
            first = next(b for b in BACKENDS.values() if b.auto_from == backend.auto_from)
            assert choose_backend(AUTO, backend.auto_from)[0] is first
            if backend.auto_from:
                assert choose_backend(AUTO, backend.auto_from - 1)[0] is not backend


def test_the_manifest_takes_every_backend_and_its_file(mnist_index):
    values = json.loads((mnist_index / "manifest.json").read_text())
    entry = {"name": "faiss-00000.index", "bytes": 1, "sha256": "0" * 64}
    for name, backend in BACKENDS.items():
        stores = backend.file_prefix is not None
        values["backend"] = {"name": name, "params": {}, "recall_at_10": None}
        values["backend"]["file"] = entry if stores else None
        assert Manifest.from_dict(values, mnist_index).backend.name == name
        values["backend"]["file"] = None if stores else entry
        with pytest.raises(IndexFileError, match="backend.file is .*expected present exactly"):
            Manifest.from_dict(values, mnist_index)


def test_the_command_line_offers_every_backend():
    from cnnkit.cli.search import query
    from cnnkit.cli.search_index import build

    def choices(command) -> tuple[str, ...]:
        return tuple(next(p for p in command.params if p.name == "backend").type.choices)

    assert choices(build) == (AUTO, *BACKENDS)
    assert choices(query) == tuple(BACKENDS)
