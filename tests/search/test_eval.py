"""``search eval`` on real MNIST: raw pixels, HOG and the conv features side by side,
with and without PCA whitening, as JSON and as a bar chart."""

import json

from PIL import Image

from tests.helpers import assert_one_line_error, require_module, run_cli


def test_conv_features_retrieve_better_than_pixels_and_hog(lenet, tmp_path):
    require_module("skimage", "classic")
    png = tmp_path / "map.png"
    result = run_cli(
        "search", "eval", str(lenet), "--dataset", "mnist", "--query-limit", "300",
        "--collection-limit", "3000", "--whiten", "--format", "json", "--png", str(png),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = {row["method"]: row for row in json.loads(result.stdout)}
    assert list(rows) == [
        "pixels", "pixels+whitening", "hog", "hog+whitening", "conv", "conv+whitening"
    ]  # fmt: skip
    for row in rows.values():
        assert {"method", "mAP", "mAP@100", "P@1", "P@10", "recall@100"} <= set(row)
        assert 0.1 < row["mAP"] <= row["mAP@100"] <= 1 and 0 < row["recall@100"] < 1
    assert rows["pixels"]["dimensions"] == 784 and rows["conv"]["dimensions"] == 84
    assert rows["conv"]["mAP"] > max(rows["pixels"]["mAP"], rows["hog"]["mAP"]) + 0.2
    assert Image.open(png).size[0] > 600


def test_the_table_and_a_bad_method(lenet):
    table = run_cli("search", "eval", str(lenet), "--dataset", "mnist", "--methods", "pixels,conv",
                "--query-limit", "50", "--collection-limit", "500")  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert "mAP@100" in table.stdout and "conv" in table.stdout
    bad = run_cli("search", "eval", str(lenet), "--dataset", "mnist", "--methods", "sift")
    assert_one_line_error(bad, "unknown retrieval method 'sift'", "pixels, hog, conv")
