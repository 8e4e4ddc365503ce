"""Every bad input to the index and search commands is one line on stderr, and leaves
the existing index as it was: damaged, truncated and tampered files, another model's
checkpoint, an unreadable query image, an empty folder, an index folder that exists."""

import json
import shutil

import pytest

from tests.helpers import assert_one_line_error, run_cli
from tests.helpers.search import folder_digest


@pytest.fixture
def damaged(tmp_path, mnist_index):
    """A copy of the MNIST index to damage, and the original's digest."""
    copy = tmp_path / "copy"
    shutil.copytree(mnist_index, copy)
    return copy


def vectors_file(index):
    return sorted(index.glob("shard-*.vectors.npy"))[1]


def test_a_truncated_vector_file(damaged, digit_files):
    path = vectors_file(damaged)
    path.write_bytes(path.read_bytes()[:-100])
    for command in (("index", "info"), ("search", "class")):
        args = [*command, str(damaged)] + (["3"] if command[1] == "class" else [])
        assert_one_line_error(run_cli(*args), str(path), "truncated")
    assert_one_line_error(
        run_cli("search", "query", str(damaged), str(digit_files[0])), "truncated"
    )


def test_a_corrupt_vector_file_of_the_same_size(damaged):
    path = vectors_file(damaged)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    assert_one_line_error(run_cli("index", "info", str(damaged)), str(path), "damaged or changed")


def test_a_records_file_that_is_not_json(damaged):
    path = sorted(damaged.glob("shard-*.records.jsonl"))[0]
    path.write_text("not json\n")
    assert_one_line_error(run_cli("index", "info", str(damaged)), str(path))


def edit_manifest(index, change):
    path = index / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (
            lambda m: m.update(count=m["count"] + 1),
            "count is 2001, expected the sum of the shards' counts (2,000)",
        ),
        (lambda m: m.update(feature_size=100), "holds float32 (512, 84)"),
        (lambda m: m.update(format_version=7), "index format 7 is not supported"),
        (lambda m: m.update(dtype="int8"), "dtype is 'int8', expected one of float32, float16"),
        (
            lambda m: m["shards"][0]["files"]["vectors"].update(sha256="0" * 64),
            "damaged or changed",
        ),
        (lambda m: m["shards"][0]["files"]["records"].update(name="../x"), "inside the index"),
        (lambda m: m.pop("weights_sha256"), "weights_sha256 is missing, expected a SHA-256 in hex"),
        (lambda m: m["backend"].update(name="annoy"), "backend"),
        (
            lambda m: m["backend"].update(target_recall=1.5),
            "backend.target_recall is 1.5, expected a finite number above 0 from 0 to 1 or null",
        ),
    ],
)
def test_a_tampered_manifest(damaged, change, fragment):
    edit_manifest(damaged, change)
    assert_one_line_error(run_cli("index", "info", str(damaged)), str(damaged), fragment)


def test_a_manifest_that_is_not_json(damaged):
    (damaged / "manifest.json").write_text("{ truncated")
    assert_one_line_error(run_cli("index", "info", str(damaged)), "damaged manifest (not JSON")


def test_another_models_checkpoint_is_refused(mnist_index, other_lenet, digit_files):
    digest = folder_digest(mnist_index)
    result = run_cli("search", "query", str(mnist_index), str(digit_files[0]),
                 "--checkpoint", str(other_lenet))  # fmt: skip
    assert_one_line_error(result, str(other_lenet), "weights differ", "build a new index")
    assert folder_digest(mnist_index) == digest


def test_an_unreadable_query_image(mnist_index, tmp_path):
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert_one_line_error(
        run_cli("search", "query", str(mnist_index), str(bad)), str(bad), "not a readable image"
    )
    missing = tmp_path / "missing.png"
    assert_one_line_error(
        run_cli("search", "query", str(mnist_index), str(missing)), "file not found"
    )


def test_an_empty_folder_writes_nothing(lenet, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "index"
    result = run_cli("index", "build", str(lenet), str(empty), "--out", str(out))
    assert_one_line_error(result, str(empty), "no .jpg, .jpeg or .png images")
    assert not out.exists()


def test_an_index_folder_that_exists_is_left_intact(mnist_index, lenet, tmp_path):
    digest = folder_digest(mnist_index)
    again = run_cli("index", "build", str(lenet), "--dataset", "mnist", "--limit", "50",
                "--out", str(mnist_index))  # fmt: skip
    assert_one_line_error(again, str(mnist_index), "an index exists here")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    busy = run_cli("index", "build", str(lenet), "--dataset", "mnist", "--out", str(other))
    assert_one_line_error(busy, "exists and is not empty")
    assert (other / "notes.txt").read_text() == "mine" and len(list(other.iterdir())) == 1
    assert folder_digest(mnist_index) == digest


def test_not_an_index(tmp_path):
    assert_one_line_error(
        run_cli("index", "info", str(tmp_path / "nowhere")), "no such index folder"
    )
    assert_one_line_error(run_cli("index", "info", str(tmp_path)), "not a cnnkit search index")
    assert not (tmp_path / "nowhere").exists()
    assert_one_line_error(
        run_cli("index", "add", str(tmp_path / "nowhere"), str(tmp_path)), "no such"
    )
    assert not (tmp_path / "nowhere").exists()


def test_sources_and_dataset_together_is_a_usage_error(lenet, tmp_path):
    result = run_cli("index", "build", str(lenet), str(tmp_path), "--dataset", "mnist",
                 "--out", str(tmp_path / "x"))  # fmt: skip
    assert_one_line_error(result, "not both")
