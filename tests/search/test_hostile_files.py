"""Index files that cnnkit did not write, read as an attacker or a careless user would
write them: JSON that Python's parser refuses in other ways than a JSONDecodeError,
vectors that are not numbers or not of unit length, arrays and FAISS files of the wrong
shape, records with fields of the wrong type or out of range. Each is one
``IndexFileError`` naming the file (and the field), never a traceback; the files are
changed and the manifest rehashed, so that the change reaches the checks past the
checksums."""

import json
import shutil

import numpy as np
import pytest
import torch

from cnnkit.errors import IndexFileError
from cnnkit.search import find_dupes, open_index
from tests.helpers import assert_one_line_error, run_cli
from tests.helpers.search import rehash


@pytest.fixture
def copy(tmp_path, mnist_index):
    """A copy of the MNIST index (4 shards of 512 digits) to change."""
    shutil.copytree(mnist_index, tmp_path / "copy")
    return tmp_path / "copy"


def refused(index, *fragments):
    with pytest.raises(IndexFileError) as caught:
        open_index(index)
    message = str(caught.value)
    assert "\n" not in message and all(f in message for f in fragments), message
    return message


def shard_file(index, part, number=1):
    suffix = "records.jsonl" if part == "records" else f"{part}.npy"
    return index / f"shard-{number:05d}.{suffix}"


# Finding: JSON that the parser refuses with ValueError or RecursionError.


def test_a_manifest_with_an_integer_of_5000_digits(copy):
    path = copy / "manifest.json"
    path.write_text(path.read_text().replace('"count": 2000', '"count": 1' + "0" * 4999, 1))
    refused(copy, str(path), "damaged manifest", "integer too long")
    assert_one_line_error(run_cli("index", "info", str(copy)), str(path), "integer too long")


def test_a_manifest_nested_200000_deep(copy):
    path = copy / "manifest.json"
    manifest = json.loads(path.read_text())
    text = json.dumps(manifest).replace('"classes": [', '"classes": ' + "[" * 200_000 + "[", 1)
    path.write_text(text[:-1] + "]" * 200_000 + "}")  # still nested right where it ends
    refused(copy, str(path), "damaged manifest")


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ('{"id": 1' + "0" * 4999 + ', "dataset": "mnist", "split": "train", "index": 0}', "long"),
        ('{"id": 0, "label": ' + "[" * 20_000 + "]" * 20_000 + "}", "nested"),
        ('{"id": 0, "label": "' + "x" * 70_000 + '"}', "over 65,536 bytes"),
        ('{"id": 0, "label": "1", "path": NaN}', "not finite"),
        ('{"id": 1e999, "path": "/x.png"}', "id is inf, expected an integer"),
    ],
)
def test_a_records_line_the_parser_refuses(copy, line, fragment):
    path = shard_file(copy, "records")
    lines = path.read_text().splitlines()
    path.write_text("\n".join([line, *lines[1:]]) + "\n")
    rehash(copy)
    refused(copy, f"{path}:1", fragment)


def test_records_split_across_lines_are_not_read_as_whole_ones(copy):
    """Two records on the first line and one split over the next two: as many lines as
    records, each line no JSON value of its own; refused, as each line is alone."""
    path = shard_file(copy, "records")
    lines = path.read_text().splitlines()
    first, second, third = (json.loads(line) for line in lines[:3])
    split_third = json.dumps(third).split(", ", 1)
    rewritten = [f"{json.dumps(first)}, {json.dumps(second)}", split_third[0], split_third[1]]
    path.write_text("\n".join([*rewritten, *lines[3:]]) + "\n")
    rehash(copy)
    refused(copy, f"{path}:1", "damaged record")


# Finding: vectors never checked.


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_vector_that_is_not_finite(copy, value, digit_files):
    path = shard_file(copy, "vectors")
    vectors = np.load(path)
    vectors[7, 3] = value
    np.save(path, vectors)
    rehash(copy)
    refused(copy, str(path), "row 7 is not finite")
    result = run_cli("search", "query", str(copy), str(digit_files[0]), "--format", "json")
    assert_one_line_error(result, str(path), "not finite")


def test_a_vector_not_of_unit_length(copy):
    path = shard_file(copy, "vectors")
    vectors = np.load(path)
    vectors[5] *= 1.01
    np.save(path, vectors)
    rehash(copy)
    refused(copy, str(path), "row 5 is not of unit length")


def test_float16_vectors_of_unit_length_open_and_others_do_not(copy):
    """float16 rounds each value by up to 2^-11: the tolerance takes that, not more."""
    for path in copy.glob("shard-*.vectors.npy"):
        np.save(path, np.load(path).astype(np.float16))
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "dtype": "float16"}))
    rehash(copy)
    assert len(open_index(copy)) == 2000
    path = shard_file(copy, "vectors", 2)
    vectors = np.load(path)
    vectors[9] *= np.float16(1.01)
    np.save(path, vectors)
    rehash(copy)
    refused(copy, str(path), "row 9 is not of unit length")


def test_scores_that_are_not_log_probabilities(copy):
    path = shard_file(copy, "scores")
    scores = np.load(path)
    scores[4, 0] = np.nan
    np.save(path, scores)
    rehash(copy)
    refused(copy, str(path), "row 4", "not a log-probability")


# Finding: shapes never checked.


def test_tiny_images_of_another_width(copy):
    path = shard_file(copy, "tiny")
    np.save(path, np.load(path)[:, :63])
    rehash(copy)
    refused(copy, str(path), "tiny images 63 values wide")
    assert_one_line_error(run_cli("search", "dupes", str(copy)), str(path), "63 values wide")


def test_tiny_images_wider_in_one_shard(copy):
    path = shard_file(copy, "tiny", 3)
    np.save(path, np.repeat(np.load(path), 3, axis=1))
    rehash(copy)
    refused(copy, str(path), "192 values wide, expected 64")


def test_a_faiss_file_of_another_dimension(copy):
    faiss = pytest.importorskip("faiss")
    index = faiss.IndexFlatIP(8)
    index.add(np.eye(8, dtype=np.float32)[np.arange(2000) % 8])
    name = "faiss-00000.index"
    (copy / name).write_bytes(faiss.serialize_index(index).tobytes())
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["backend"] = {"name": "flat", "params": {}, "recall_at_10": 1.0,
                           "file": {"name": name, "bytes": 0, "sha256": "0" * 64}}  # fmt: skip
    (copy / "manifest.json").write_text(json.dumps(manifest))
    rehash(copy)
    refused(copy, str(copy / name), "8-dimensional", "feature_size")


def test_a_faiss_file_of_another_kind(copy):
    faiss = pytest.importorskip("faiss")
    index = faiss.IndexFlatL2(84)
    index.add(np.zeros((2000, 84), np.float32))
    name = "faiss-00000.index"
    (copy / name).write_bytes(faiss.serialize_index(index).tobytes())
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["backend"] = {"name": "hnsw", "params": {"ef_search": 8}, "recall_at_10": 1.0,
                           "file": {"name": name, "bytes": 0, "sha256": "0" * 64}}  # fmt: skip
    (copy / "manifest.json").write_text(json.dumps(manifest))
    rehash(copy)
    refused(copy, str(copy / name), "the manifest says hnsw")


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        ({"id": 0, "path": 5}, "path is 5, expected a text"),
        ({"id": 0, "dataset": "mnist", "split": "valid", "index": 0}, "split is 'valid'"),
        ({"id": 0, "dataset": "mnist", "split": "train", "index": -1}, "index is -1"),
        ({"id": "0", "path": "/x.png"}, "id is '0', expected an integer"),
        ({"id": 0, "path": "/x.png", "owner": "me"}, "owner is 'me', expected no such field"),
        ({"id": 0, "path": "/x.png", "index": 3}, "names no file or data-set image, or both"),
        ({"id": 0, "index": 3}, "names no file or data-set image, or both"),
    ],
)
def test_a_record_field_of_the_wrong_type_or_range(copy, record, fragment):
    path = shard_file(copy, "records", 0)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([json.dumps(record), *lines[1:]]) + "\n")
    rehash(copy)
    refused(copy, f"{path}:1", fragment)


def test_a_record_past_the_end_of_its_data_set(copy):
    path = shard_file(copy, "records", 0)
    lines = path.read_text().splitlines()
    record = {**json.loads(lines[0]), "index": 60_000}  # MNIST's training split: 60,000
    path.write_text("\n".join([json.dumps(record), *lines[1:]]) + "\n")
    rehash(copy)
    index = open_index(copy)
    with pytest.raises(IndexFileError, match=r"records\.jsonl: damaged record: item 0's index"):
        index.thumbnail(0)


def test_a_shard_file_named_for_another_shard(copy):
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["shards"][0]["files"]["tiny"] = manifest["shards"][1]["files"]["tiny"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    refused(copy, "shards[0].files.tiny.name is 'shard-00001.tiny.npy'")


def test_dupes_of_an_index_that_opens(mnist_index):
    """The checks let every index that cnnkit writes through (dupes reads the tiny images)."""
    assert isinstance(find_dupes(open_index(mnist_index)), list)


# Finding: a build in which no image could be read left build.json behind.


def test_a_build_that_reads_no_image_leaves_nothing(lenet, tmp_path, digit_files):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("a.png", "b.jpg"):
        (bad / name).write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    out = tmp_path / "index"
    result = run_cli("index", "build", str(lenet), str(bad), "--out", str(out), "--workers", "0")
    assert_one_line_error(result, "none of the images could be read")
    assert not out.exists()
    again = run_cli("index", "build", str(lenet), *map(str, digit_files[:3]), "--out", str(out),
                    "--workers", "0")  # fmt: skip
    assert again.returncode == 0, again.stderr


def test_a_model_that_gives_nan_features_writes_no_shard(lenet, tmp_path, digit_files):
    state = torch.load(lenet, weights_only=True)
    first = next(iter(state["model_state"]))
    state["model_state"][first] = torch.full_like(state["model_state"][first], float("nan"))
    broken = tmp_path / "checkpoint.pt"
    torch.save(state, broken)
    out = tmp_path / "index"
    result = run_cli("index", "build", str(broken), *map(str, digit_files[:3]), "--out", str(out),
                     "--workers", "0")  # fmt: skip
    assert_one_line_error(result, str(broken), "not finite")
    assert not list(out.glob("shard-*"))
