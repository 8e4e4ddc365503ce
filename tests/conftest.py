"""Fixtures every test directory shares, each made once per session: real MNIST, a tree
of real photos, and two runs trained through cnnkit's own front door (a digit model and
a photo model) for the tests of what reads runs. Helpers are in ``tests.helpers``."""

from pathlib import Path

import pytest

from cnnkit.config import TrainOptions
from cnnkit.data import ImageSet, load_dataset
from tests.helpers import trained_checkpoint
from tests.helpers.real_images import real_image_tree  # noqa: F401  (a fixture)


@pytest.fixture(scope="session")
def mnist() -> tuple[ImageSet, ImageSet]:
    """The real MNIST (train, test) splits as shipped with the package."""
    return load_dataset("mnist")


@pytest.fixture(scope="session")
def digit_run(tmp_path_factory) -> Path:
    """LeNet-5, the default model, trained for one epoch of its recipe on all of MNIST
    (about 97% right): the checkpoint of the tests that read a digit run (predict,
    evaluate, export, the run layer, the server, search)."""
    options = TrainOptions(
        model="lenet5",
        epochs=1,
        test_limit=500,
        out=tmp_path_factory.mktemp("digit-run"),
        report=False,
    )
    return trained_checkpoint(options)


@pytest.fixture(scope="session")
def photo_run(tmp_path_factory, real_image_tree) -> Path:  # noqa: F811
    """ResNet-8 trained for two epochs on the real 32x32 photo tree (CIFAR-10's JPEGs)."""
    options = TrainOptions(
        model="resnet8",
        dataset=f"folder:{real_image_tree}",
        epochs=2,
        batch_size=32,
        lr=0.05,
        augment="flip",
        out=tmp_path_factory.mktemp("photo-run"),
        report=False,
    )
    return trained_checkpoint(options)


def pytest_terminal_summary(terminalreporter) -> None:
    """The fuzzing's counts in the log of every run (the tests print them; pytest would
    show a passing test's output only with -s)."""
    lines = [
        line
        for report in terminalreporter.stats.get("passed", [])
        if "tests/fuzz/" in report.nodeid and report.when == "call"
        for line in report.capstdout.splitlines()
        if "fuzzing:" in line
    ]
    if lines:
        terminalreporter.section("fuzzing")
        for line in lines:
            terminalreporter.write_line(line)
