"""Search tuned to a target recall (``search.tune``): the least search-time setting that
reaches the target on held-out rows, recorded in the manifest and read back through its
validated reader, overridden per query from Python and the command line, chosen within
a memory budget as autofaiss chooses; on LeNet-5's features of 2,000 real MNIST digits."""

import json
import shutil

import numpy as np
import pytest

import cnnkit
from cnnkit.errors import ConfigError
from cnnkit.search import open_index
from cnnkit.search.backends import AUTO, EXACT, MB, choose_backend, get_backend
from cnnkit.search.exact import ExactSearch
from cnnkit.search.faiss_backend import memory_bytes
from cnnkit.search.manifest import Manifest
from cnnkit.search.tune import BackendChoice, RecallProbe, build_tuned
from tests.helpers import assert_one_line_error, require_module, run_cli
from tests.helpers.search import MNIST_ITEMS

TARGET = 0.95  # the tuned index's: below what IVF's every cell gives, so nprobe < nlist


@pytest.fixture(scope="module")
def vectors(mnist_index) -> list[np.ndarray]:
    """The digit index's four shards (2,000 unit vectors of 84 dimensions)."""
    return [np.asarray(shard, np.float32) for shard in open_index(mnist_index).vectors]


@pytest.fixture(scope="module")
def tuned_index(lenet, tmp_path_factory):
    """An IVF index of the 2,000 digits tuned to TARGET by the command line, and what
    the build printed."""
    require_module("faiss", "faiss")
    out = tmp_path_factory.mktemp("tuned") / "ivf"
    built = run_cli(
        "index", "build", str(lenet), "--dataset", "mnist", "--limit", str(MNIST_ITEMS),
        "--shard-size", "512", "--backend", "ivf", "--target-recall", str(TARGET),
        "--out", str(out),
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    return out, built.stdout


def test_the_probe_leaves_each_query_out_of_its_own_answer(vectors):
    probe = RecallProbe.of(vectors, sample=300)
    every = np.concatenate(vectors)
    assert (probe.nearest != probe.own[:, None]).all()
    # The reference: every inner product fully sorted by numpy, the query's own row last.
    scores = probe.queries @ every.T
    scores[np.arange(len(scores)), probe.own] = -np.inf
    nearest = np.argsort(-scores, axis=1)[:, :10]
    pairs = zip(probe.nearest.tolist(), nearest.tolist(), strict=True)
    assert np.mean([len(set(a) & set(b)) for a, b in pairs]) / 10 >= 0.995  # ties may swap
    assert probe.recall(ExactSearch(vectors)) == 1.0

    class ItselfOnly:  # finds each query's own row, which counts for nothing
        def search(self, queries, k):
            positions = np.full((len(queries), k), -1)
            positions[:, 0] = probe.own
            return np.ones((len(queries), k), np.float32), positions

    assert probe.recall(ItselfOnly()) == 0.0  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "target"), [("ivf", 0.99), ("ivf", 0.9), ("hnsw", 0.99)])
def test_the_tuner_takes_the_least_setting_that_reaches_the_target(vectors, name, target):
    require_module("faiss", "faiss")
    tuned = build_tuned(vectors, BackendChoice(name, target))
    knob = tuned.backend.knob(tuned.params)
    assert tuned.backend.name == name and knob is not None
    assert tuned.target_recall == target and tuned.recall_at_10 is not None
    assert target <= tuned.recall_at_10 <= 1 and not tuned.short_of_target
    probe = RecallProbe.of(vectors)  # the same held-out rows, drawn again
    assert probe.recall(tuned.searcher) == tuned.recall_at_10
    value = tuned.params[knob.name]
    if value > knob.least:  # one less falls short: the least that reaches it
        assert probe.recall(tuned.searcher.with_settings({knob.name: value - 1})) < target


def test_a_setting_given_is_used_as_given(vectors):
    require_module("faiss", "faiss")
    tuned = build_tuned(vectors, BackendChoice("ivf", 0.99, settings={"nprobe": 1}))
    assert tuned.params["nprobe"] == 1 and tuned.target_recall is None
    assert tuned.recall_at_10 is not None and tuned.recall_at_10 < 0.99
    exact = build_tuned(vectors, BackendChoice(EXACT.name, 0.99))
    assert (exact.recall_at_10, exact.target_recall) == (None, None)  # the reference
    with pytest.raises(ConfigError, match="nprobe: the hnsw backend has no such setting"):
        build_tuned(vectors, BackendChoice("hnsw", 0.99, settings={"nprobe": 4}))


def test_a_memory_budget_takes_a_smaller_index_as_autofaiss_does():
    require_module("faiss", "faiss")
    count, dim = 1_000_000, 64
    # Bytes a vector: float32 256; HNSW adds 2 M int32 links and 16 (measured), so M =
    # (budget / count - 16 - 256) / 8 (autofaiss: (budget / 4 count - dim) / 2, M >= 8);
    # IVF 256 + an 8-byte id, with 4,000 centroids; IVF-PQ m + 8 bytes.
    expected = [
        (None, "hnsw", {"m": 32}),
        (400, "hnsw", {"m": 16}),  # (400 - 272) / 8
        (300, "ivf", {"nlist": 4000}),  # M would be 3; 264 MB + 1 MB of centroids
        (100, "ivfpq", {"m": 64}),  # 72 MB
        (20, "ivfpq", {"m": 8}),  # 16 MB (m 16 would take 24)
        (5, EXACT.name, {}),  # nothing fits: no structure beyond the stored vectors
    ]
    for budget, name, params in expected:
        bytes_ = None if budget is None else budget * MB
        backend, chosen = choose_backend(AUTO, count, dim, bytes_)
        assert backend.name == name and params.items() <= chosen.items(), budget
        if bytes_ is not None and backend is not EXACT:
            assert memory_bytes(name, count, dim, chosen) <= bytes_
    assert choose_backend(AUTO, 99_999, dim)[0] is EXACT  # below 100,000 vectors
    with pytest.raises(ConfigError, match="200.0 MB holds no ivf index of 1,000,000 64-d"):
        choose_backend("ivf", count, dim, 200 * MB)


def test_the_memory_estimate_is_faiss_s_own_size(vectors):
    require_module("faiss", "faiss")
    count, dim = sum(map(len, vectors)), vectors[0].shape[1]
    for name in ("hnsw", "ivf"):
        backend = get_backend(name)
        params = backend.params(count, dim, {})
        stored = len(backend.build(vectors, params).to_bytes())  # FAISS's serialisation
        assert memory_bytes(name, count, dim, params) == pytest.approx(stored, rel=0.1), name


def test_the_build_records_its_target_and_recall_in_the_manifest(tuned_index):
    out, printed = tuned_index
    manifest = open_index(out).manifest  # read by the validated reader
    backend = manifest.backend
    assert backend.target_recall == TARGET and TARGET <= backend.recall_at_10 <= 1
    assert 1 <= backend.params["nprobe"] < backend.params["nlist"]
    assert f"recall@10 against exact search: {backend.recall_at_10:.3f} (target 0.950)" in printed
    stored = json.loads((out / "manifest.json").read_text())
    assert stored["backend"]["target_recall"] == TARGET
    assert Manifest.from_dict(stored, out) == manifest
    assert Manifest.from_dict(manifest.to_dict(), out) == manifest
    del stored["backend"]["target_recall"]  # as written before targets existed
    assert Manifest.from_dict(stored, out).backend.target_recall is None
    info = run_cli("index", "info", str(out)).stdout.splitlines()
    assert ["target", "recall@10", "0.950"] in [line.split() for line in info]


def test_a_change_tunes_the_index_again_to_its_target(tuned_index, digit_files, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tuned_index[0], copy)
    added = run_cli("index", "add", str(copy), *map(str, digit_files))
    assert added.returncode == 0, added.stderr
    backend = open_index(copy).manifest.backend
    assert backend.target_recall == TARGET and backend.recall_at_10 >= TARGET
    assert f"(target {TARGET:.3f})" in added.stdout


def test_a_query_overrides_the_tuned_setting(tuned_index, digit_files):
    out, _ = tuned_index
    index = open_index(out)
    features = index.embed_files(digit_files)  # 20 test digits: not in the index
    _, exact = index.search(features, 10, "exact")
    nlist = index.manifest.backend.params["nlist"]

    def recall(positions) -> float:
        pairs = zip(positions.tolist(), exact.tolist(), strict=True)
        return np.mean([len(set(a) & set(b)) for a, b in pairs]) / 10

    assert recall(index.search(features, 10, settings={"nprobe": nlist})[1]) == 1.0
    assert recall(index.search(features, 10, settings={"nprobe": 1})[1]) < 0.95
    with pytest.raises(ConfigError, match="ef_search: .* searches with ivf; its setting is nprobe"):
        index.search(features, 10, settings={"ef_search": 64})
    # The public API and the command line pass the same setting.
    hits = cnnkit.open_index(out).search(digit_files[0], top=10, nprobe=nlist)
    assert {h.path for h in hits} == {index.records[p].source for p in exact[0]}
    result = run_cli("search", "query", str(out), str(digit_files[0]), "--format", "json",
                     "--nprobe", str(nlist))  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = {hit["id"] for hit in json.loads(result.stdout)[0]["hits"]}
    assert found == {index.records[p].id for p in exact[0]}
    refused = run_cli("search", "query", str(out), str(digit_files[0]), "--ef-search", "64")
    assert_one_line_error(refused, "ef_search", "its setting is nprobe")


def test_the_build_options_are_checked_before_embedding(lenet, digit_files, tmp_path):
    files = [str(f) for f in digit_files[:3]]
    both = run_cli("index", "build", str(lenet), *files, "--out", str(tmp_path / "a"),
                   "--target-recall", "0.9", "--nprobe", "4")  # fmt: skip
    assert both.returncode == 2 and "give --target-recall, or a setting" in both.stderr
    for option, value in (("--target-recall", "0"), ("--target-recall", "1.5"),
                          ("--memory-budget", "-1")):  # fmt: skip
        bad = run_cli("index", "build", str(lenet), *files, "--out", str(tmp_path / "b"),
                      option, value)  # fmt: skip
        assert bad.returncode == 2 and option in bad.stderr, (option, value)
    wrong = run_cli("index", "build", str(lenet), *files, "--out", str(tmp_path / "c"),
                    "--backend", "hnsw", "--nprobe", "4")  # fmt: skip
    assert_one_line_error(wrong, "nprobe: the hnsw backend has no such setting")
    assert not (tmp_path / "c").exists()  # refused before a shard was written
    with pytest.raises(ConfigError, match="target recall 2"):
        cnnkit.index(lenet, files, tmp_path / "d", target_recall=2)
    with pytest.raises(ConfigError, match="memory budget inf MB"):
        cnnkit.index(lenet, files, tmp_path / "d", memory_budget_mb=float("inf"))
