"""Fashion-MNIST through the IDX reader, from Debian's package files."""

from pathlib import Path

import pytest
import torch

from cnnkit.data import load_dataset
from cnnkit.data.mnist import FASHION_MNIST
from tests.helpers import require_path

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def debian_package() -> None:
    require_path(DEBIAN_DIR, "Debian's dataset-fashion-mnist; bash .ci/run installs it")


def test_found_in_debian_folder_and_verified(tmp_path: Path, monkeypatch) -> None:
    # An empty cache and data directory, so the only place left is Debian's folder.
    monkeypatch.setenv("CNNKIT_DATA", str(tmp_path))
    monkeypatch.setattr("cnnkit.data.locate.user_cache_dir", lambda: tmp_path / "cache")
    train, test = load_dataset("fashion-mnist", tmp_path)
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert test.images.shape == (10000, 1, 28, 28)
    # Xiao et al. 2017, Sec. 2: 7,000 images per class, 6,000 of them for training.
    assert torch.bincount(train.labels).tolist() == [6000] * 10
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot"
    mean = train.images.double().mean().item() / 255
    assert mean == pytest.approx(FASHION_MNIST.mean, abs=1e-4)
    assert not list(tmp_path.rglob("*.gz")), "nothing may be downloaded"
