"""Streamed folder sets (``data.stream``, ``cnnkit train --stream``) on real JPEGs."""

import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnnkit.config import Recipe, TrainOptions
from cnnkit.data.folder import load_folder
from cnnkit.data.stream import open_stream, stream_loaders
from cnnkit.errors import ConfigError, SkippedImagesWarning
from cnnkit.runs import EpochRecord
from cnnkit.transforms.augment import build_augment
from tests.helpers import run_cli, trained


@pytest.fixture(scope="module")
def large_tree(real_image_tree: Path, tmp_path_factory) -> Path:
    """Four classes of the real tree upscaled to 120x90, past the in-memory size limit
    (64 px) for small images, so the workers rescale and crop them."""
    root = tmp_path_factory.mktemp("large")
    classes = sorted(p.name for p in (real_image_tree / "train").iterdir())[:4]
    for path in sorted(real_image_tree.rglob("*.*")):
        folder = root / path.parts[-3] / path.parts[-2]
        if folder.name in classes:
            folder.mkdir(parents=True, exist_ok=True)
            Image.open(path).resize((120, 90), Image.BICUBIC).save(folder / path.name)
    return root


def first_batches(root: Path, workers: int, epoch: int) -> tuple[list[torch.Tensor], tuple]:
    """An epoch's three first uint8 batches for a 24-pixel model, and the batch steps left."""
    data = open_stream(f"folder:{root}", workers=workers)
    augment = build_augment("crop,flip,pca", data.sample.images, 24, 10, seed=1)
    stream = stream_loaders(
        data, augment, 24, batch_size=8, steps=3, eval_batch_size=50, seed=1, pin_memory=False
    )
    return [images for images, _ in stream.train_batches(epoch)], stream.augment.steps


@pytest.mark.parametrize(
    ("tree_name", "shape", "batch_steps"),
    [
        ("real_image_tree", (8, 3, 32, 32), ("crop", "flip", "pca")),  # all on the batch
        ("large_tree", (8, 3, 24, 24), ("pca",)),  # crop and flip done in the workers
    ],
)
def test_same_seed_same_batches_whatever_the_workers(
    tree_name: str, shape: tuple, batch_steps: tuple, request
) -> None:
    root = request.getfixturevalue(tree_name)
    in_workers, steps = first_batches(root, workers=2, epoch=1)
    in_process, _ = first_batches(root, workers=0, epoch=1)
    assert steps == batch_steps and len(in_workers) == 3 and in_workers[0].shape == shape
    assert all(torch.equal(a, b) for a, b in zip(in_workers, in_process, strict=True))
    assert not torch.equal(first_batches(root, workers=0, epoch=2)[0][0], in_workers[0])


def test_streamed_pixels_are_those_in_memory(real_image_tree: Path) -> None:
    _, test_set = load_folder(real_image_tree, cache=False)
    data = open_stream(f"folder:{real_image_tree}", workers=0)
    stream = stream_loaders(
        data, None, 32, batch_size=8, steps=1, eval_batch_size=30, seed=0, pin_memory=False
    )
    streamed = torch.cat([images for images, _ in stream.test_batches()])

    def in_some_order(images: torch.Tensor) -> torch.Tensor:
        keys = images.flatten(1).double() @ torch.linspace(0, 1, images[0].numel()).double()
        return images[keys.argsort()]

    assert torch.equal(in_some_order(streamed), in_some_order(test_set.images))


def test_cli_trains_through_a_corrupt_jpeg_and_warns_once(real_image_tree: Path, tmp_path) -> None:
    tree = Path(shutil.copytree(real_image_tree, tmp_path / "tree"))
    victims = sorted((tree / "train").rglob("*.jpg"))[5:7]
    victims[0].write_bytes(victims[0].read_bytes()[:40])  # cut off in its header
    victims[1].write_bytes(b"not an image at all")
    args = ["--dataset", f"folder:{tree}", "--stream", "--workers", "2", "--epochs", "3"]
    more = ["--batch-size", "20", "--augment", "crop,flip", "--no-progress", "--no-report"]
    result = run_cli("train", "lenet5-modern", *args, *more, "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warned) == 1 and "skipped 2 unreadable image(s)" in warned[0]
    assert all(victim.name in warned[0] for victim in victims)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert records[-1]["train_loss"] < records[0]["train_loss"]


def test_resumed_stream_ends_like_an_uninterrupted_one(real_image_tree: Path, tmp_path) -> None:
    def options(out: str, resume: bool = False) -> TrainOptions:
        recipe = Recipe(epochs=2, batch_size=25, lr=0.05, augment="crop,flip")
        return TrainOptions(
            "lenet5-modern", f"folder:{real_image_tree}", recipe=recipe, seed=2,
            out=tmp_path / out, resume=resume, stream=True, workers=2, report=False,
        )  # fmt: skip

    class Interrupted(Exception):
        pass

    def stop(record: EpochRecord) -> None:
        raise Interrupted

    whole = trained(options("whole"))
    with pytest.raises(Interrupted):
        trained(options("parts"), on_epoch=stop)
    resumed = trained(options("parts", resume=True))
    assert [r.train_loss for r in resumed.history] == [r.train_loss for r in whole.history]
    assert torch.equal(resumed.final.confusion, whole.final.confusion)


def test_empty_folder_is_one_error_line(tmp_path) -> None:
    for split in ("train", "test"):
        (tmp_path / "empty" / split / "cat").mkdir(parents=True)
    args = ["--dataset", f"folder:{tmp_path / 'empty'}", "--stream", "--out", str(tmp_path / "r")]
    result = run_cli("train", *args, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "class folder has no" in result.stderr
    with pytest.raises(ConfigError, match="--stream reads folder:PATH"):
        open_stream("mnist")


def test_unreadable_images_are_dropped_and_named_once(real_image_tree: Path, tmp_path) -> None:
    tree = Path(shutil.copytree(real_image_tree, tmp_path / "tree"))
    victims = sorted((tree / "train").rglob("*.jpg"))[:3]
    for path in victims:
        path.write_bytes(b"\xff\xd8\xff garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkippedImagesWarning)  # the sample does not warn
        data = open_stream(f"folder:{tree}", workers=0)
    assert len(data.sample) == len(data.train.files) - 3
    stream = stream_loaders(
        data, None, 32, batch_size=50, steps=4, eval_batch_size=50, seed=0, pin_memory=False
    )
    for epoch, expected_warnings in ((1, 1), (2, 0)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SkippedImagesWarning)
            sizes = [len(labels) for _, labels in stream.train_batches(epoch)]
        assert sum(sizes) == len(data.train.files) - 3 and len(sizes) == 4
        named = [
            sum(v.name in str(w.message) for v in victims)
            for w in caught
            if w.category is SkippedImagesWarning
        ]
        assert named == [3] * expected_warnings
