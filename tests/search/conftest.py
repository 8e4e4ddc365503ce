"""Fixtures for the search tests: small real runs trained here, real images, indexes
built through the real CLI, and the CLI run in this process for the error cases."""

import contextlib
import hashlib
import io
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from cnnkit.config import Recipe, TrainConfig
from cnnkit.train.fit import fit
from tests.conftest import run_cli
from tests.real_images import real_image_tree  # noqa: F401

MNIST_ITEMS = 2000  # training digits indexed


@pytest.fixture(scope="session")
def lenet(tmp_path_factory) -> Path:
    """LeNet-5 (modern) trained for one epoch on 4,000 real MNIST digits (93% accurate)."""
    out = tmp_path_factory.mktemp("lenet5")
    config = TrainConfig(
        model="lenet5-modern",
        recipe=Recipe(epochs=1, batch_size=32, lr=0.05),
        out=out,
        train_limit=4000,
        test_limit=200,
        progress=False,
    )
    return fit(config).checkpoint


@pytest.fixture(scope="session")
def other_lenet(tmp_path_factory) -> Path:
    """Another LeNet-5 (another seed): the same architecture, other weights."""
    out = tmp_path_factory.mktemp("lenet5-other")
    config = TrainConfig(
        model="lenet5-modern",
        recipe=Recipe(epochs=1, batch_size=64, lr=0.02),
        out=out,
        train_limit=500,
        test_limit=100,
        seed=1,
        progress=False,
    )
    return fit(config).checkpoint


@pytest.fixture(scope="session")
def photo_run(tmp_path_factory, real_image_tree) -> Path:  # noqa: F811
    """ResNet-8 trained briefly on the real 32x32 photo tree (CIFAR-10 JPEGs)."""
    out = tmp_path_factory.mktemp("resnet8")
    config = TrainConfig(
        model="resnet8",
        dataset=f"folder:{real_image_tree}",
        recipe=Recipe(epochs=2, batch_size=32, lr=0.05, augment="flip"),
        out=out,
        progress=False,
    )
    return fit(config).checkpoint


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


def label_of(path: Path) -> str:
    return path.stem.split("label")[1]


def cli(*args: str) -> subprocess.CompletedProcess:
    """``cnnkit ARGS`` through ``cli.main`` in this process (no interpreter start):
    its exit status and what it wrote to stdout and stderr."""
    from cnnkit.cli import main

    out, err, code = io.StringIO(), io.StringIO(), 0
    argv = sys.argv
    sys.argv = ["cnnkit", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    finally:
        sys.argv = argv
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def folder_digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file in ``folder`` but the lock, to show it was left intact."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != ".lock"
    }
