"""Fixtures for the search tests: the session's digit and photo runs and a second digit
run, real images, and indexes built through the real CLI."""

from pathlib import Path

import pytest
from PIL import Image

from cnnkit.config import TrainOptions
from tests.helpers import run_cli, trained_checkpoint
from tests.helpers.search import MNIST_ITEMS


@pytest.fixture(scope="session")
def lenet(digit_run) -> Path:
    """The session's digit run (LeNet-5 on real MNIST), the model the digit index holds."""
    return digit_run


@pytest.fixture(scope="session")
def other_lenet(tmp_path_factory) -> Path:
    """Another LeNet-5 (another seed, fewer digits): the same architecture, other weights."""
    options = TrainOptions(
        model="lenet5",
        epochs=1,
        batch_size=64,
        lr=0.02,
        augment="none",
        train_limit=500,
        test_limit=100,
        seed=1,
        out=tmp_path_factory.mktemp("lenet5-other"),
        report=False,
    )
    return trained_checkpoint(options)


@pytest.fixture(scope="session")
def mnist_index(tmp_path_factory, lenet) -> Path:
    """An exact index of the first 2,000 MNIST training digits, built by the CLI."""
    out = tmp_path_factory.mktemp("indexes") / "mnist"
    result = run_cli(
        "index", "build", str(lenet), "--dataset", "mnist", "--limit", str(MNIST_ITEMS),
        "--shard-size", "512", "--backend", "exact", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"holds {MNIST_ITEMS:,} items; backend exact" in result.stdout
    return out


@pytest.fixture(scope="session")
def digit_files(tmp_path_factory, mnist) -> list[Path]:
    """The first 20 MNIST test digits as PNG files, and their labels in the name."""
    folder = tmp_path_factory.mktemp("digits")
    _, test = mnist
    paths = []
    for i in range(20):
        paths.append(folder / f"{i:02d}-label{int(test.labels[i])}.png")
        Image.fromarray(test.images[i, 0].numpy()).save(paths[-1])
    return paths
