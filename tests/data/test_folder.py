"""Folder and ImageNet-layout readers on real images (CIFAR-10 JPEGs or MNIST digits)."""

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.data import load_dataset
from cnnkit.data.folder import load_folder
from cnnkit.errors import DataError, SkippedImagesWarning
from tests.helpers import require_module


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setattr("cnnkit.data.locate.user_cache_dir", lambda: tmp_path / "cache")
    return tmp_path / "cache"


@pytest.fixture
def tree(real_image_tree: Path, tmp_path: Path) -> Path:
    """A private copy that a test may damage."""
    return Path(shutil.copytree(real_image_tree, tmp_path / "tree"))


def test_reads_tree_like_pil(real_image_tree: Path) -> None:
    train, test = load_dataset(f"folder:{real_image_tree}")
    classes = sorted(p.name for p in (real_image_tree / "train").iterdir())
    assert train.classes == classes and train.images.shape[1:] == (3, 32, 32)
    assert len(train) == sum(1 for _ in (real_image_tree / "train").rglob("*.*"))
    assert len(test) == sum(1 for _ in (real_image_tree / "test").rglob("*.*"))
    first = sorted((real_image_tree / "train" / classes[3]).iterdir())[0]
    pil = torch.from_numpy(np.array(Image.open(first).convert("RGB"))).permute(2, 0, 1)
    # torchvision's and PIL's JPEG decoders may round the IDCT differently.
    difference = (train.images.double() - pil.double()).abs().mean(dim=(1, 2, 3))
    assert difference.min() < 1.5 and train.labels[difference.argmin()] == 3
    # A fixed shuffled order, so that a prefix (--train-limit) holds every class.
    assert len(set(train.labels[:40].tolist())) >= 8


def test_corrupt_jpeg_is_skipped_and_named(tree: Path) -> None:
    victim = sorted((tree / "train").rglob("*.*"))[3]
    victim.write_bytes(victim.read_bytes()[:40])  # a JPEG cut off in its header
    (tree / "train" / victim.parent.name / "notes.jpg").write_bytes(b"not an image at all")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", SkippedImagesWarning)
        train, _ = load_folder(tree)
    (message,) = [str(w.message) for w in caught]
    assert "skipped 2 unreadable image(s)" in message
    assert victim.name in message and "notes.jpg" in message
    assert len(train) == sum(1 for _ in (tree / "train").rglob("*.*")) - 2


def test_empty_class_folder_is_an_error(tree: Path) -> None:
    empty = sorted((tree / "test").iterdir())[2]
    shutil.rmtree(empty)
    empty.mkdir()
    with pytest.raises(DataError, match=f"{empty}: class folder has no"):
        load_folder(tree)


def test_grayscale_pngs_give_one_channel_unless_one_has_colour(tree: Path) -> None:
    for path in list(tree.rglob("*.*")):
        Image.open(path).convert("L").save(path.with_suffix(".png"))
        path.unlink() if path.suffix != ".png" else None
    train, test = load_folder(tree)
    assert train.images.shape[1] == test.images.shape[1] == 1
    coloured = sorted((tree / "test").rglob("*.png"))[0]
    Image.open(coloured).convert("RGB").point(lambda v: v // 2).save(coloured)  # still grey
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(coloured)
    train, test = load_folder(tree)
    assert train.images.shape[1] == 3 and bool((train.images[:, 0] == train.images[:, 1]).all())


def test_cache_is_used_and_invalidated(tree: Path, cache_dir: Path) -> None:
    first, _ = load_folder(tree)
    assert len(list(cache_dir.rglob("*.pt"))) == 1
    again, _ = load_folder(tree)
    assert torch.equal(first.images, again.images)
    changed = sorted((tree / "train").rglob("*.jpg"))[0]
    Image.new("RGB", (32, 32), (255, 0, 0)).save(changed)
    after, _ = load_folder(tree)
    red = after.images.float().mean(dim=(2, 3))  # (N, 3) mean colour per image
    assert int(((red[:, 0] > 240) & (red[:, 1] < 15)).sum()) == 1
    assert len(list(cache_dir.rglob("*.pt"))) == 2


def test_large_images_rescaled_to_256(tree: Path) -> None:
    for path in tree.rglob("*.jpg"):
        Image.open(path).resize((120, 90)).save(path)
    for path in tree.rglob("*.png"):
        Image.open(path).resize((90, 120)).save(path)
    train, test = load_folder(tree, cache=False)
    assert train.images.shape[1:] == test.images.shape[1:] == (3, 256, 256)


def test_imagenet_layout_with_devkit(tree: Path) -> None:
    scipy_io = require_module("scipy.io", "imagenet")
    root = tree.parent / "ilsvrc"
    classes = sorted(p.name for p in (tree / "train").iterdir())
    wnids = [f"n{1000 + i:08d}" for i in range(len(classes))]
    for wnid, name in zip(wnids, classes, strict=True):
        shutil.copytree(tree / "train" / name, root / "train" / wnid)
    # The devkit numbers its synsets in its own order, not the sorted wnid order.
    ids = {wnid: len(wnids) - i for i, wnid in enumerate(wnids)}
    (root / "val").mkdir()
    truth = []
    for k, path in enumerate(sorted((tree / "test").rglob("*.*"))):
        shutil.copy(path, root / "val" / f"ILSVRC2012_val_{k + 1:08d}{path.suffix}")
        truth.append(ids[wnids[classes.index(path.parent.name)]])
    devkit = root / "ILSVRC2012_devkit_t12" / "data"
    devkit.mkdir(parents=True)
    (devkit / "ILSVRC2012_validation_ground_truth.txt").write_text("".join(f"{t}\n" for t in truth))
    synsets = np.array(
        [(ids[w], w, "words") for w in wnids],
        dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O")],
    )
    scipy_io.savemat(devkit / "meta.mat", {"synsets": synsets})
    _, folder_test = load_folder(tree)
    train, val = load_dataset(f"imagenet:{root}")
    assert train.classes == wnids and len(val) == len(truth)
    assert val.labels.tolist() == folder_test.labels.tolist()
