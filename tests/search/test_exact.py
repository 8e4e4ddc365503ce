"""The exact backend against numpy's full sort, and the retrieval metrics against
scikit-learn and hand-worked rankings."""

import warnings

import numpy as np
import pytest
import torch

from cnnkit.metrics import average_precision, precision_at, recall_at
from cnnkit.search import exact, retrieval
from tests.helpers import require_module


def unit_rows(rng, rows, dim):
    x = rng.standard_normal((rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_blocked_top_k_equals_a_full_sort(monkeypatch, dtype):
    monkeypatch.setattr(exact, "MIN_BLOCK", 7)  # many blocks, several per shard
    monkeypatch.setattr(exact, "MAX_SCORES", 50)
    monkeypatch.setattr(exact, "QUERY_CHUNK", 3)
    rng = np.random.default_rng(0)
    shards = [unit_rows(rng, n, 16).astype(dtype) for n in (5, 40, 1, 23)]
    queries = unit_rows(rng, 8, 16)
    scores, positions = exact.exact_top_k(queries, shards, 10)
    every = queries @ np.concatenate(shards).astype(np.float32).T  # numpy, all at once
    expected = np.argsort(-every, axis=1)[:, :10]
    assert np.array_equal(positions, expected)
    assert np.allclose(scores, np.take_along_axis(every, expected, 1), atol=1e-6)


def test_top_k_beyond_the_collection_returns_all():
    rng = np.random.default_rng(1)
    shards = [unit_rows(rng, 3, 4), unit_rows(rng, 2, 4)]
    scores, positions = exact.exact_top_k(unit_rows(rng, 2, 4), shards, 10)
    assert scores.shape == positions.shape == (2, 5)
    assert sorted(positions[0].tolist()) == [0, 1, 2, 3, 4]
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_read_only_memory_mapped_shards_are_searched_without_a_warning(tmp_path):
    rng = np.random.default_rng(2)
    rows, queries = unit_rows(rng, 50, 8), unit_rows(rng, 3, 8)
    np.save(tmp_path / "shard.npy", rows)
    shard = np.load(tmp_path / "shard.npy", mmap_mode="r")  # as an index opens its shards
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's warning about non-writable arrays fails
        _, positions = exact.exact_top_k(queries, [shard], 4)
    assert (positions == np.argsort(-(queries @ rows.T), axis=1)[:, :4]).all()


def test_average_precision_equals_scikit_learn():
    metrics = require_module("sklearn.metrics", "classic")
    rng = np.random.default_rng(2)
    relevance = rng.random((6, 50)) < 0.3
    # scikit-learn's AP of scores that rank items in the order given: the same number.
    scores = np.arange(50, 0, -1)
    expected = [metrics.average_precision_score(row, scores) for row in relevance]
    assert np.allclose(average_precision(torch.from_numpy(relevance)).numpy(), expected)


def test_cut_off_precision_and_recall_by_hand():
    relevance = torch.tensor([[True, False, True, False, False, True]])
    # Full AP: precision 1/1, 2/3 and 3/6 at the three relevant ranks.
    assert average_precision(relevance).item() == pytest.approx((1 + 2 / 3 + 3 / 6) / 3)
    # AP@2: precision 1/1 at rank 1 only, divided by min(3 relevant, 2).
    assert average_precision(relevance, 2).item() == pytest.approx(1 / 2)
    assert precision_at(relevance, 1).item() == 1.0
    assert precision_at(relevance, 3).item() == pytest.approx(2 / 3)
    assert recall_at(relevance, 3).item() == pytest.approx(2 / 3)
    assert average_precision(torch.zeros((1, 4), dtype=torch.bool)).item() == 0.0


@pytest.mark.parametrize("same_items", [False, True])
def test_ranked_retrieval_map_equals_scikit_learn(monkeypatch, same_items):
    metrics = require_module("sklearn.metrics", "classic")
    monkeypatch.setattr(retrieval, "QUERY_CHUNK", 7)  # several chunks of queries
    rng = np.random.default_rng(3)
    collection, labels = unit_rows(rng, 60, 8), torch.from_numpy(rng.integers(0, 3, 60))
    queries, query_labels = (collection[:20], labels[:20]) if same_items else (
        unit_rows(rng, 20, 8), torch.from_numpy(rng.integers(0, 3, 20))
    )  # fmt: skip
    mean_ap = retrieval.rank_scores(queries, query_labels, collection, labels, same_items)[0]
    # scikit-learn ranks by the scores themselves; a query's own item is left out.
    expected = []
    for i, query in enumerate(queries):
        keep = np.arange(60) != i if same_items else np.ones(60, bool)
        relevant = (labels.numpy() == query_labels[i].item())[keep]
        expected.append(metrics.average_precision_score(relevant, (collection @ query)[keep]))
    assert mean_ap == pytest.approx(np.mean(expected), rel=1e-6)
