"""Change an index of real CIFAR-10 JPEGs without embedding it again: add files and
folders, remove files and folders, reload; with the exact backend and with FAISS."""

import json

import numpy as np
import pytest

from cnnkit.search import open_index
from tests.helpers import assert_one_line_error, require_module, run_cli
from tests.helpers.search import folder_digest


def class_folders(tree):
    return sorted(p for p in (tree / "train").iterdir() if p.is_dir())


@pytest.fixture
def photo_index(tmp_path, photo_run, real_image_tree):
    """An index of the first five classes' training photos, built by the CLI."""
    out = tmp_path / "photos"
    first = class_folders(real_image_tree)[:5]
    result = run_cli("index", "build", str(photo_run), *map(str, first), "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def ids_by_path(index):
    return {record.path: record.id for record in index.records}


def test_add_embeds_only_the_new_files(photo_index, real_image_tree):
    before = open_index(photo_index)
    assert len(before) == 100 and {r.label for r in before.records} == {
        p.name for p in class_folders(real_image_tree)[:5]
    }
    old_shards = {k: v for k, v in folder_digest(photo_index).items() if k.startswith("shard-")}
    rest = class_folders(real_image_tree)[5:]
    added = run_cli("index", "add", str(photo_index), *map(str, rest))
    assert added.returncode == 0, added.stderr
    assert "added 100 images" in added.stdout and "holds 200 items" in added.stdout
    after_digest = folder_digest(photo_index)
    assert all(after_digest[name] == digest for name, digest in old_shards.items())  # untouched
    after = open_index(photo_index)  # reloaded from disk
    assert {k: v for k, v in ids_by_path(after).items() if k in ids_by_path(before)} == (
        ids_by_path(before)
    )
    new_photo = sorted(rest[0].glob("*.jpg"))[3]
    (hits,) = after.query_files([new_photo], top=1)
    assert hits[0].record.path == str(new_photo.resolve()) and hits[0].score > 0.9999
    again = run_cli("index", "add", str(photo_index), str(rest[0]))
    assert "added 0 images" in again.stdout and "holds 200 items" in again.stdout


def test_remove_files_and_folders(photo_index, real_image_tree):
    folders = class_folders(real_image_tree)
    one = sorted(folders[0].glob("*.jpg"))[0]
    before = open_index(photo_index)
    removed = run_cli("index", "remove", str(photo_index), str(one), str(folders[1]))
    assert removed.returncode == 0, removed.stderr
    assert "removed 21 items" in removed.stdout and "holds 79" in removed.stdout
    after = open_index(photo_index)
    paths = {record.path for record in after.records}
    assert str(one.resolve()) not in paths and not any(folders[1].name in p for p in paths)
    kept = {path: i for path, i in ids_by_path(before).items() if path in paths}
    assert ids_by_path(after) == kept  # ids stay the items'
    (hits,) = after.query_files([one], top=79)
    assert all(h.record.path != str(one.resolve()) for h in hits)
    # An item that is not there: one line, and the index as it was.
    digest = folder_digest(photo_index)
    assert_one_line_error(
        run_cli("index", "remove", str(photo_index), str(one)),
        "holds no item",
        "nothing was removed",
    )
    assert folder_digest(photo_index) == digest


def test_faiss_follows_adds_and_removes(tmp_path, photo_run, real_image_tree):
    require_module("faiss", "faiss")
    out = tmp_path / "flat"
    folders = class_folders(real_image_tree)
    built = run_cli("index", "build", str(photo_run), *map(str, folders[:3]), "--backend", "flat",
                "--out", str(out))  # fmt: skip
    assert built.returncode == 0, built.stderr
    assert run_cli("index", "add", str(out), str(folders[3])).returncode == 0
    assert run_cli("index", "remove", str(out), str(folders[0])).returncode == 0
    index = open_index(out)
    assert len(index) == index.searcher.index.ntotal == 60
    assert sorted(out.glob("faiss-*.index")) == [out / index.manifest.backend.file.name]
    queries = [sorted(folders[3].glob("*.jpg"))[0], sorted(folders[1].glob("*.jpg"))[0]]
    features = index.embed_files(queries)
    by_faiss, by_exact = index.search(features, 10), index.search(features, 10, "exact")
    assert np.allclose(by_faiss[0], by_exact[0], atol=1e-5)
    info = json.loads(run_cli("index", "info", str(out), "--format", "json").stdout)
    assert info["manifest"]["backend"]["name"] == "flat" and info["items"] == 60
    table = run_cli("index", "info", str(out)).stdout.splitlines()
    assert [line.split() for line in table if line.startswith(("backend", "recall@10"))] == [
        ["backend", "flat"],
        ["recall@10", f"{info['manifest']['backend']['recall_at_10']:.3f}", "against", "exact",
         "search"],
    ]  # fmt: skip


def test_add_to_a_float16_index_stores_float16(tmp_path, lenet, digit_files):
    out = tmp_path / "half"
    built = run_cli("index", "build", str(lenet), *map(str, digit_files[:10]), "--dtype",
                    "float16", "--out", str(out))  # fmt: skip
    assert built.returncode == 0, built.stderr
    added = run_cli("index", "add", str(out), *map(str, digit_files[10:]))
    assert added.returncode == 0, added.stderr
    assert "added 10 images" in added.stdout and "holds 20 items" in added.stdout
    index = open_index(out)
    assert [v.dtype for v in index.vectors] == [np.float16, np.float16]
    assert not (out / ".lock").exists()  # the lock file goes with the lock (files.FolderLock)
