"""HOG + linear SVM on real MNIST subsets, its CLI, and the error without the extra."""

import numpy as np
import pytest

from cnnkit.baseline import HogSettings, hog_features, train_hog_svm
from tests.helpers import require_module, run_cli, run_cli_process

skimage_feature = require_module("skimage.feature", "classic")


def test_descriptor_is_scikit_images_hog(mnist) -> None:
    train, _ = mnist
    features = hog_features(train.images[:3])
    # 28x28 pixels in 4x4 cells: 7x7 cells, 6x6 blocks of 2x2 cells, 9 bins each.
    assert features.shape == (3, 6 * 6 * 2 * 2 * 9)
    expected = skimage_feature.hog(
        train.images[1, 0].numpy(), 9, (4, 4), (2, 2), block_norm="L2-Hys"
    )
    np.testing.assert_allclose(features[1], expected, rtol=1e-6)


@pytest.mark.slow  # trains, or starts a server or a browser: seconds
def test_hog_svm_is_far_above_chance_on_a_real_subset(mnist) -> None:
    result = train_hog_svm("mnist", train_limit=5000, test_limit=2000)
    assert (result.train_images, result.test_images) == (5000, 2000)
    assert result.top1_error < 0.06  # chance is 0.90; about 0.04 measured
    assert result.top5_error < result.top1_error
    assert result.parameters == 10 * (result.features + 1)
    assert result.train_seconds > 0 and result.test_seconds > 0


@pytest.mark.slow  # trains, or starts a server or a browser: seconds
def test_a_stronger_penalty_underfits(mnist) -> None:
    weak = train_hog_svm("mnist", train_limit=2000, test_limit=1000, settings=HogSettings())
    strong = train_hog_svm(
        "mnist", train_limit=2000, test_limit=1000, settings=HogSettings(svm_c=1e-5)
    )
    assert strong.top1_error > weak.top1_error


def test_cli_prints_errors_and_timing(tmp_path) -> None:
    result = run_cli(
        "baseline", "hog-svm", "--train-limit", "2000", "--test-limit", "500",
        "--out", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "top-1 error" in result.stdout and "training" in result.stdout
    assert (tmp_path / "result.json").is_file()


def test_missing_extra_is_one_line_naming_it(tmp_path) -> None:
    fake = tmp_path / "sklearn"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('scikit-learn is not installed')\n")
    import os

    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    result = run_cli_process(
        "baseline", "hog-svm", "--train-limit", "100", env={"PYTHONPATH": path}
    )
    assert result.returncode == 1
    assert "cnnkit[classic]" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
