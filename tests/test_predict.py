"""Predict on real MNIST test digits written out as image files, as-is and as scans."""

import numpy as np
import pytest
from PIL import Image

from cnnkit.transforms.digits import mnist_style
from tests.helpers import run_cli

COUNT = 20


@pytest.fixture(scope="module")
def checkpoint(digit_run):
    """The session's digit run (what is tested is ``cnnkit predict`` and ``evaluate``)."""
    return digit_run


def as_scan(digit: np.ndarray) -> Image.Image:
    """Dark ink on white paper, with margins, at four times the resolution."""
    paper = 255 - digit
    padded = np.pad(paper, ((30, 12), (8, 40)), constant_values=255)
    return Image.fromarray(padded).resize((padded.shape[1] * 4, padded.shape[0] * 4), Image.BICUBIC)


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory, mnist):
    _, test = mnist
    folder = tmp_path_factory.mktemp("digits")
    plain, scans = [], []
    for i in range(COUNT):
        digit = test.images[i, 0].numpy()
        plain.append(folder / f"digit{i}.png")
        Image.fromarray(digit).save(plain[-1])
        scans.append(folder / f"scan{i}.jpg")
        as_scan(digit).convert("RGB").save(scans[-1], quality=90)
    return plain, scans, test.labels[:COUNT].tolist()


def predicted_labels(stdout: str, paths) -> list[str]:
    lines = {line.split()[0]: line.split()[1] for line in stdout.splitlines()[2:]}
    return [lines[str(path)] for path in paths]


def test_mnist_style_keeps_mnist_digits_nearly_unchanged(mnist):
    """MNIST's digits already went through this normalisation: redoing it is close
    to the identity (same size, same centre of mass, resampled)."""
    _, test = mnist
    digits = test.images[:100, 0].numpy()
    redone = np.stack([mnist_style(digit) for digit in digits]).astype(float)
    assert np.abs(redone - digits).mean() < 2  # of 255
    correlations = [
        np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(redone, digits, strict=True)
    ]
    assert np.mean(correlations) > 0.98 and min(correlations) > 0.7


def test_mnist_style_undoes_a_scan(mnist):
    _, test = mnist
    digit = test.images[1, 0].numpy()
    redone = mnist_style(np.asarray(as_scan(digit))).astype(float)
    assert redone.shape == (28, 28)
    assert np.corrcoef(redone.ravel(), digit.astype(float).ravel())[0, 1] > 0.8


@pytest.mark.parametrize("kind", ["plain", "scan"])
def test_predict_real_digits(checkpoint, digit_files, kind):
    plain, scans, labels = digit_files
    paths = plain if kind == "plain" else scans
    result = run_cli("predict", str(checkpoint), *map(str, paths))
    assert result.returncode == 0, result.stderr
    assert "#5" in result.stdout.splitlines()[0]  # the top five classes are shown
    predicted = predicted_labels(result.stdout, paths)
    correct = sum(p == str(label) for p, label in zip(predicted, labels, strict=True))
    assert correct >= COUNT - 2, f"{predicted} vs {labels}"


def test_evaluate_prints_errors_and_per_class_accuracy(checkpoint):
    result = run_cli("evaluate", str(checkpoint), "--test-limit", "1000")
    assert result.returncode == 0, result.stderr
    assert "1,000 test images: top-1 error" in result.stdout
    rows = [line.split() for line in result.stdout.splitlines()[3:13]]
    assert [row[0] for row in rows] == [str(d) for d in range(10)]
    assert sum(int(row[1]) for row in rows) == 1000
    assert all(0 <= float(row[2]) <= 100 and len(row[2].split(".")[1]) == 2 for row in rows)
    assert "confusion matrix (row = true class" in result.stdout


def test_bad_image_files_give_one_line_errors(checkpoint, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    for path, message in ((broken, "not a readable image"), (tmp_path / "gone.png", "not found")):
        result = run_cli("predict", str(checkpoint), str(path))
        assert result.returncode == 1
        assert result.stderr.strip() == result.stderr.strip().splitlines()[0]
        assert str(path) in result.stderr and message in result.stderr
