"""Index and search real MNIST digits through the real CLI: by example and by class,
through the exact backend and FAISS (exhaustive FAISS = the exact neighbours), the
API that ``cnnkit serve`` calls, and the manifest's counts."""

import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from cnnkit.search import open_index
from tests.helpers import assert_one_line_error, require_module, run_cli
from tests.helpers.search import MNIST_ITEMS, label_of


def test_info_prints_the_manifest_and_counts(mnist_index, lenet):
    shown = run_cli("index", "info", str(mnist_index), "--format", "json")
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    manifest = info["manifest"]
    assert info["items"] == manifest["count"] == MNIST_ITEMS and info["shards"] == 4
    assert manifest["feature_size"] == 84  # LeNet-5's F6
    assert manifest["model"] == "lenet5" and manifest["metric"] == "cosine"
    assert manifest["checkpoint"] == str(lenet.resolve()) and len(manifest["weights_sha256"]) == 64
    assert sum(info["labels"].values()) == MNIST_ITEMS and set(info["labels"]) == set("0123456789")
    table = run_cli("index", "info", str(mnist_index))
    assert "2,000" in table.stdout and "lenet5" in table.stdout
    rows = [line.split() for line in table.stdout.splitlines()]
    assert ["backend", "exact"] in rows and not any(r[:1] == ["recall@10"] for r in rows)


def test_query_by_example_finds_the_same_digit(mnist_index, digit_files):
    result = run_cli(
        "search", "query", str(mnist_index), *map(str, digit_files), "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    queries = json.loads(result.stdout)
    assert [q["query"] for q in queries] == list(map(str, digit_files))
    precision = []
    for path, query in zip(digit_files, queries, strict=True):
        hits = query["hits"]
        assert [h["rank"] for h in hits] == list(range(1, 11))
        similarities = [h["similarity"] for h in hits]
        assert similarities == sorted(similarities, reverse=True) and similarities[0] <= 1 + 1e-6
        assert all(h["dataset"] == "mnist" and h["split"] == "train" for h in hits)
        precision.append(np.mean([h["label"] == label_of(path) for h in hits]))
    assert np.mean(precision) >= 0.85, precision  # chance: 0.1
    table = run_cli("search", "query", str(mnist_index), str(digit_files[0]), "--top", "3")
    assert "similarity" in table.stdout and "mnist/train/" in table.stdout


def test_text_output_counts_with_separators_and_scores_with_three_places(mnist_index, digit_files):
    count = r"\d{1,3}(,\d{3})*"
    query = run_cli("search", "query", str(mnist_index), str(digit_files[0]), "--top", "3")
    by_class = run_cli("search", "class", str(mnist_index), "7", "--top", "3")
    for table in (query, by_class):
        rows = [line.split() for line in table.stdout.splitlines() if line[:3].strip().isdigit()]
        assert len(rows) == 3 and all(re.fullmatch(r"\d\.\d{3}", row[1]) for row in rows), rows
    info = [line.split() for line in run_cli("index", "info", str(mnist_index)).stdout.splitlines()]
    assert ["count", "2,000"] in info and ["items", "2,000"] in info
    dupes = run_cli("search", "dupes", str(mnist_index)).stdout.splitlines()
    assert re.fullmatch(rf"{count} groups, {count} items", dupes[-1]), dupes[-1]
    groups = [line for line in dupes if line.startswith("group ")]
    assert groups and all(
        re.fullmatch(rf"group {count}: {count} items, similarity >= \d\.\d{{3}}", line)
        for line in groups
    )


def test_an_indexed_digit_finds_itself(mnist_index, mnist, tmp_path):
    train, _ = mnist
    index = open_index(mnist_index)
    (hits,) = index.query(index.embedder()(train.images[17:18]).vectors, top=1)
    assert hits[0].record.index == 17 and hits[0].score == pytest.approx(1, abs=1e-5)


def test_search_by_class(mnist_index):
    result = run_cli("search", "class", str(mnist_index), "3", "--top", "20", "--format", "json")
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)
    assert len(hits) == 20 and sum(h["label"] == "3" for h in hits) >= 19
    probabilities = [h["probability"] for h in hits]
    assert probabilities == sorted(probabilities, reverse=True) and probabilities[0] > 0.9
    assert_one_line_error(
        run_cli("search", "class", str(mnist_index), "dog"), "unknown class 'dog'", "0, 1, 2"
    )


def same_neighbours(a, b):
    """The same items, but where two items tie (equal similarity, to float precision)."""
    for hits_a, hits_b in zip(a, b, strict=True):
        assert [h["similarity"] for h in hits_a] == pytest.approx(
            [h["similarity"] for h in hits_b], abs=1e-5
        )
        for ha, hb in zip(hits_a, hits_b, strict=True):
            assert ha["id"] == hb["id"] or abs(ha["similarity"] - hb["similarity"]) < 1e-5


def query_json(index, files, *options):
    result = run_cli("search", "query", str(index), *map(str, files), "--format", "json", *options)
    assert result.returncode == 0, result.stderr
    return [q["hits"] for q in json.loads(result.stdout)]


def test_exhaustive_faiss_gives_the_exact_neighbours(lenet, digit_files, tmp_path):
    require_module("faiss", "faiss")
    built = run_cli(
        "index", "build", str(lenet), "--dataset", "mnist", "--limit", str(MNIST_ITEMS),
        "--backend", "flat", "--out", str(tmp_path / "flat"),
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    assert (
        "backend flat" in built.stdout and "recall@10 against exact search: 1.000" in built.stdout
    )
    faiss_hits = query_json(tmp_path / "flat", digit_files)
    exact_hits = query_json(tmp_path / "flat", digit_files, "--backend", "exact")
    same_neighbours(faiss_hits, exact_hits)
    # IVF visiting every cell is exhaustive too.
    built = run_cli(
        "index", "build", str(lenet), "--dataset", "mnist", "--limit", str(MNIST_ITEMS),
        "--backend", "ivf", "--nprobe", "10000", "--out", str(tmp_path / "ivf"),
    )  # fmt: skip
    assert "recall@10 against exact search: 1.000" in built.stdout, built.stderr
    same_neighbours(query_json(tmp_path / "ivf", digit_files), exact_hits)


@pytest.mark.parametrize(("kind", "least_recall"), [("hnsw", 0.9), ("ivfpq", 0.3)])
def test_approximate_backends_report_their_recall(lenet, digit_files, tmp_path, kind, least_recall):
    require_module("faiss", "faiss")
    out = tmp_path / kind
    built = run_cli(
        "index", "build", str(lenet), "--dataset", "mnist", "--limit", str(MNIST_ITEMS),
        "--backend", kind, "--out", str(out),
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    recall = float(built.stdout.split("recall@10 against exact search: ")[1].split()[0])
    assert least_recall <= recall <= 1
    assert open_index(out).manifest.backend.recall_at_10 == pytest.approx(recall, abs=1e-3)
    assert len(query_json(out, digit_files[:2])[0]) == 10


def test_float16_vectors_rank_as_float32(lenet, mnist_index, digit_files, tmp_path):
    out = tmp_path / "half"
    built = run_cli(
        "index", "build", str(lenet), "--dataset", "mnist", "--limit", str(MNIST_ITEMS),
        "--dtype", "float16", "--out", str(out),
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    assert sum(p.stat().st_size for p in out.glob("*.vectors.npy")) < 2000 * 84 * 2 + 4096
    half, full = query_json(out, digit_files), query_json(mnist_index, digit_files)
    assert [h[0]["id"] for h in half] == [h[0]["id"] for h in full]
    for a, b in zip(half, full, strict=True):
        assert [h["similarity"] for h in a] == pytest.approx([h["similarity"] for h in b], abs=2e-3)


def test_the_api_serve_calls(mnist_index, digit_files):
    index = open_index(mnist_index)
    assert len(index) == MNIST_ITEMS and index.classes == tuple("0123456789")
    upload = io.BytesIO(digit_files[0].read_bytes())
    (by_upload,) = index.query_files([upload], top=5, names=["upload.png"])
    features = index.embed_files([digit_files[0]])
    assert features.shape == (1, 84) and np.linalg.norm(features) == pytest.approx(1, abs=1e-5)
    (by_features,) = index.query(features, top=5)
    assert [h.record.id for h in by_upload] == [h.record.id for h in by_features]
    png = index.thumbnail(by_features[0].record.id, size=56)
    picture = Image.open(io.BytesIO(png))
    assert picture.format == "PNG" and picture.size == (56, 56)
    assert [h.record.label for h in index.by_class("7", top=3)] == ["7"] * 3
    with pytest.raises(Exception, match="84-dimensional"):
        index.query(np.zeros((1, 10), np.float32))
