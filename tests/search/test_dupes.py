"""``search dupes`` finds planted copies of real CIFAR-10 photos (JPEG quality 50,
resized down and up, shifted by a pixel, mirrored) among the originals."""

import json

from cnnkit.search import find_dupes, open_index
from tests.helpers import assert_one_line_error, run_cli
from tools.planted import EDITS, plant_copies, score_dupes


def test_planted_copies_are_grouped_with_their_originals(photo_run, real_image_tree, tmp_path):
    photos = sorted((real_image_tree / "train").rglob("*.jpg"))
    originals = photos[::25]  # 8 photos, from 8 classes
    planted = plant_copies(originals, tmp_path / "copies")
    out = tmp_path / "index"
    built = run_cli("index", "build", str(photo_run), str(real_image_tree / "train"),
                str(tmp_path / "copies"), "--out", str(out))  # fmt: skip
    assert built.returncode == 0, built.stderr
    result = run_cli("search", "dupes", str(out), "--format", "json")
    assert result.returncode == 0, result.stderr
    groups = json.loads(result.stdout)
    assert all(g["similarity"] >= 0.95 and len(g["items"]) >= 2 for g in groups)
    scores = score_dupes(find_dupes(open_index(out)), planted)
    assert scores.precision >= 0.9 and scores.other_pairs == 0, scores
    assert scores.recall >= 0.75, scores  # 6 of the 8 copies at least
    assert all(scores.recall_by_edit[edit] == 1 for edit in EDITS if edit != "shifted"), scores
    table = run_cli("search", "dupes", str(out), "--by", "features", "--threshold", "0.9999")
    assert table.returncode == 0 and "groups" in table.stdout.splitlines()[-1]


def test_a_threshold_out_of_range_is_one_line(photo_run, tmp_path, mnist_index):
    assert_one_line_error(
        run_cli("search", "dupes", str(mnist_index), "--threshold", "2"), "--threshold"
    )
