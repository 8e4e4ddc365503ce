"""The CIFAR python-release reader, on batches written from real images in the
release's exact format (Krizhevsky's page: dict with b"data" uint8 (N, 3072) whose
rows are 1024 red, then 1024 green, then 1024 blue values, row-major)."""

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.data import load_dataset
from cnnkit.data.cifar import CIFAR10, CIFAR100, load_cifar
from cnnkit.errors import DataError
from tests.helpers import run_cli


def _decode_tree(root: Path, split: str) -> tuple[np.ndarray, list[int], list[str]]:
    classes = sorted(p.name for p in (root / split).iterdir())
    images, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((root / split / name).iterdir()):
            images.append(np.asarray(Image.open(path).convert("RGB")))  # (32, 32, 3)
            labels.append(label)
    return np.stack(images), labels, classes


def _dump(path: Path, content: dict) -> None:
    path.write_bytes(pickle.dumps(content, protocol=2))  # cPickle's protocol of the release


def _rows(images: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) to the release's (N, 3072): each plane row-major, R then G then B."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(len(images), 3072))


@pytest.fixture(scope="module")
def release(real_image_tree: Path, tmp_path_factory) -> tuple[Path, dict]:
    """data_dir/cifar10/cifar-10-batches-py written from real images."""
    data_dir = tmp_path_factory.mktemp("cifar")
    folder = data_dir / "cifar10" / CIFAR10.folder
    folder.mkdir(parents=True)
    train, train_labels, classes = _decode_tree(real_image_tree, "train")
    test, test_labels, _ = _decode_tree(real_image_tree, "test")
    order = np.random.default_rng(0).permutation(len(train))  # batches are shuffled
    for i, part in enumerate(np.array_split(order, 5), start=1):
        _dump(
            folder / f"data_batch_{i}",
            {
                b"batch_label": f"training batch {i} of 5".encode(),
                b"labels": [train_labels[j] for j in part],
                b"data": _rows(train[part]),
                b"filenames": [f"{j}.png".encode() for j in part],
            },
        )
    _dump(folder / "test_batch", {b"labels": test_labels, b"data": _rows(test)})
    _dump(folder / "batches.meta", {b"label_names": [c.encode() for c in classes]})
    expected = {
        "train": train[order],
        "train_labels": np.array(train_labels)[order],
        "test": test,
        "test_labels": np.array(test_labels),
        "classes": classes,
    }
    return data_dir, expected


def test_reads_release_format(release) -> None:
    data_dir, expected = release
    train, test = load_dataset("cifar10", data_dir)
    assert train.images.dtype == torch.uint8 and train.images.shape[1:] == (3, 32, 32)
    # (N, C, H, W) from the planes equals the images decoded with PIL as (N, H, W, C).
    assert np.array_equal(train.images.permute(0, 2, 3, 1).numpy(), expected["train"])
    assert np.array_equal(train.labels.numpy(), expected["train_labels"])
    assert np.array_equal(test.images.permute(0, 2, 3, 1).numpy(), expected["test"])
    assert train.classes == expected["classes"]
    # Normalisation from the training split, checked against numpy.
    pixels = expected["train"].reshape(-1, 3) / 255
    assert np.allclose(train.mean, pixels.mean(axis=0)) and np.allclose(train.std, pixels.std(0))


def _copy_release(data_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "cifar10" / CIFAR10.folder
    folder.mkdir(parents=True)
    for path in (data_dir / "cifar10" / CIFAR10.folder).iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


def test_truncated_pickle_is_one_clear_error(release, tmp_path: Path) -> None:
    folder = _copy_release(release[0], tmp_path)
    batch = folder / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[: batch.stat().st_size // 2])
    with pytest.raises(DataError, match="data_batch_3: not a readable CIFAR pickle"):
        load_cifar(CIFAR10, tmp_path)
    result = run_cli("data", "info", "cifar10", "--data-dir", str(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "data_batch_3" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_wrong_row_size_and_hostile_pickle_are_rejected(release, tmp_path: Path) -> None:
    folder = _copy_release(release[0], tmp_path)
    _dump(folder / "test_batch", {b"labels": [0], b"data": np.zeros((1, 1024), np.uint8)})
    with pytest.raises(DataError, match="test_batch: rows of 1024 bytes"):
        load_cifar(CIFAR10, tmp_path)

    class Hostile:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Hostile()}, protocol=2))
    with pytest.raises(DataError, match="refusing to load"):
        load_cifar(CIFAR10, tmp_path)


def test_cifar100_layout(release, tmp_path: Path) -> None:
    _, expected = release
    folder = tmp_path / "cifar100" / CIFAR100.folder
    folder.mkdir(parents=True)
    fine = [3 * label + 1 for label in expected["test_labels"].tolist()]  # within 0..99
    for name in ("train", "test"):
        _dump(
            folder / name,
            {
                b"fine_labels": fine,
                b"coarse_labels": [0] * len(fine),
                b"data": _rows(expected["test"]),
            },
        )
    _dump(folder / "meta", {b"fine_label_names": [f"c{i}".encode() for i in range(100)]})
    train, test = load_dataset("cifar100", tmp_path)
    assert len(train.classes) == 100 and test.labels.tolist() == fine


def test_download_checks_md5_then_unpacks(release, tmp_path: Path, monkeypatch) -> None:
    import dataclasses
    import hashlib
    import tarfile

    from cnnkit.errors import DownloadError

    monkeypatch.setattr("cnnkit.data.locate.user_cache_dir", lambda: tmp_path / "cache")
    monkeypatch.delenv("CNNKIT_DATA", raising=False)
    archive = tmp_path / "served" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(release[0] / "cifar10" / CIFAR10.folder, arcname=CIFAR10.folder)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    served = dataclasses.replace(CIFAR10, url=archive.as_uri(), md5=md5)
    train, _ = load_cifar(served, tmp_path / "data")
    assert len(train) == len(release[1]["train"])
    assert (tmp_path / "data" / "cifar10" / "cifar-10-python.tar.gz").is_file()
    wrong = dataclasses.replace(served, name="cifar10-wrong", md5="0" * 32)
    with pytest.raises(DownloadError, match="checksum mismatch"):
        load_cifar(wrong, tmp_path / "data")
    assert not list((tmp_path / "data" / "cifar10-wrong").glob("*"))
