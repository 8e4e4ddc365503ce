"""``load_run``: a trained model with its record, ready to use.

Every consumer of a trained model (evaluate, predict, export, reports, and later
search and serve) goes through a ``Run``: it prepares images the way the model saw
them in training and computes logits or features in batches, on the best device.

Three kinds of input, one path each:
- ``prepare(images)``: uint8 images as the data set stores them -> the model's input
  (padded or centre-cropped, ``transforms.fit_to_input``);
- ``read_file(path)`` / ``read_files(paths)``: image files
  -> the same, through the one decoder (``data.image_files``) and the record's
  preparation: MNIST's normalisation of a digit (``transforms.digits``), or for photos
  the resize-and-crop that the folder loader applies in training
  (``transforms.resize``); ``read_files`` is the same per file, for a batch;
- ``read_images(images)``: what a user holds (a path, a PIL image, a numpy array, a
  tensor, or a list) -> the same, each through the file path's preparation;
- ``logits(images)`` and ``features(images)`` take either of the above.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from cnnkit.data import ImageSet, load_dataset, load_test_split
from cnnkit.data.download import no_downloads
from cnnkit.data.held import HeldImage, held_pixels
from cnnkit.data.image_files import chw_tensor, read_pixels
from cnnkit.errors import CheckpointError, ConfigError, DataError, ImageError
from cnnkit.models import Classifier
from cnnkit.runs.checkpoint import Checkpoint, build_trained_model, load_checkpoint
from cnnkit.runs.epochs import EpochRecord
from cnnkit.runs.folder import CHECKPOINT_NAME
from cnnkit.runs.novelty import NoveltyDetector, fit_detector, held_out_split
from cnnkit.runs.record import RunRecord
from cnnkit.runtime.device import CPU, Placement, choose_placement
from cnnkit.runtime.inference import (
    EvalStats,
    FusedForInference,
    classification_errors,
    fuse_for_inference,
    predict_features,
    predict_features_and_logits,
    predict_logits,
)
from cnnkit.transforms import fit_to_input
from cnnkit.transforms.digits import MAX_SIDE as DIGIT_SIDE
from cnnkit.transforms.digits import mnist_style
from cnnkit.transforms.resize import decode_side, fit_size

BATCH_SIZE = 256  # LeNet-5 infers 2.5x as fast in batches of 256 as of 1,000


@dataclass(frozen=True)
class FileImages:
    """What ``Run.read_files`` read: ``images[i]`` is the file at ``read[i]``."""

    images: torch.Tensor  # uint8 (N, C, H, W) at the training images' size
    read: list[int]  # positions in the list of paths of the files read
    problems: list[str]  # one ImageError message per file that could not be read


@dataclass(frozen=True)
class HeldImages:
    """What ``Run.read_images`` read: ``images[i]`` is called ``names[i]``."""

    images: torch.Tensor  # uint8 (N, C, H, W) at the training images' size
    names: list[str]  # each image's path, or its place in what was given ("image 2")
    single: bool  # one image was given, not a list or a batch


@dataclass(frozen=True)
class Run:
    checkpoint: Checkpoint
    model: Classifier  # in eval mode, on placement.device
    placement: Placement = CPU

    @property
    def record(self) -> RunRecord:
        return self.checkpoint.record

    @property
    def path(self) -> Path:
        return self.checkpoint.path

    @property
    def classes(self) -> list[str]:
        return list(self.record.classes)

    @property
    def history(self) -> list[EpochRecord]:
        """The epochs the checkpoint holds, as the trainer recorded them."""
        return list(self.checkpoint.history)

    def prepare(self, images: torch.Tensor, crop: bool = True) -> torch.Tensor:
        """uint8 (N, C, H, W) images at the stored size -> the model's input size;
        ``crop=False`` keeps larger images whole (for ten-crop testing)."""
        return fit_to_input(images, self.record.input_size, crop)

    def read_file(self, path: Path | BinaryIO, name: str | None = None) -> torch.Tensor:
        """One image file (a path, or an open binary file called ``name``) as uint8
        (C, H, W) at the size the training images had, prepared as they were."""
        return chw_tensor(self._read_pixels(path, name))

    def read_files(self, paths: Sequence[Path]) -> "FileImages":
        """Image files as ``read_file`` reads each, as one uint8 (N, C, H, W) tensor
        of those that could be read, and the problems of those that could not."""
        pixels, read, problems = [], [], []
        for position, path in enumerate(paths):
            try:
                pixels.append(self._read_pixels(path))
                read.append(position)
            except ImageError as error:
                problems.append(str(error))
        if not pixels:
            shape = (0, self.record.in_channels, *self.record.image_size)
            return FileImages(torch.empty(shape, dtype=torch.uint8), read, problems)
        images = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).contiguous()
        return FileImages(images, read, problems)

    def read_images(self, images: HeldImage | Sequence[HeldImage]) -> "HeldImages":
        """What a user holds (a path, a PIL image, an array, a tensor, a batch or a list
        of them: ``data.held``) as uint8 (N, C, H, W) at the training images' size,
        prepared as ``read_file`` prepares a file; the first that cannot be read raises
        its ``ImageError``."""
        held = held_pixels(images, self.record.in_channels, self._least_side)
        prepared = np.stack([self._prepared(pixels) for pixels in held.pixels])
        tensor = torch.from_numpy(prepared).permute(0, 3, 1, 2).contiguous()
        return HeldImages(tensor, held.names, held.single)

    def _read_pixels(self, path: Path | BinaryIO, name: str | None = None) -> np.ndarray:
        """The one file-to-pixels path: uint8 (H, W, C), prepared."""
        pixels = read_pixels(path, self.record.in_channels, name, self._least_side)
        return self._prepared(pixels)

    @property
    def _least_side(self) -> int:
        """How small a large image may be read before ``_prepared``: what its steps need."""
        if self.record.preparation == "digit":
            return DIGIT_SIDE
        return decode_side(self.record.image_size)

    def _prepared(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 (H, W, C) pixels as the training images were prepared."""
        if self.record.preparation == "digit":
            return mnist_style(pixels[:, :, 0])[:, :, None]
        if pixels.shape[:2] == tuple(self.record.image_size):
            return pixels  # what fit_size returns for an image at its size, without torch
        return fit_size(chw_tensor(pixels), self.record.image_size).permute(1, 2, 0).numpy()

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """float32 logits (N, K) on the CPU of uint8 images (stored or prepared size)."""
        return self._infer(predict_logits, images)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """float32 penultimate-layer features (N, D) on the CPU (``forward_features``)."""
        return self._infer(predict_features, images)

    @cached_property
    def fused(self) -> FusedForInference:
        """The model with its batch normalisation folded, for ``features_and_logits``;
        made on first use (a DataLoader worker forked after it shares it)."""
        return fuse_for_inference(self.model)

    @cached_property
    def novelty(self) -> NoveltyDetector:
        """The out-of-distribution detector of this run's logits (``runs.novelty``),
        fitted on first use on some of its training images (read again from its data
        set); the data set's ``CnnkitError`` when they are not at hand, a ``DataError``
        for sets too large to read whole (ImageNet, streamed folders)."""
        config = self.checkpoint.config
        if self.record.dataset.startswith("imagenet:") or (config is not None and config.stream):
            raise DataError(f"{self.record.dataset} is too large to read for a novelty score")
        with no_downloads("the novelty score"):
            train, _ = load_dataset(self.record.dataset, config.data_dir if config else None)
        # A run that held out the last training images as its test set: never those.
        usable = len(train) - (config.holdout if config is not None else 0)
        fit, held = held_out_split(usable)
        logits = self.logits(train.images[torch.cat([fit, held])])
        return fit_detector(
            logits[: len(fit)], train.labels[fit], logits[len(fit) :], self.record.num_classes
        )

    def features_and_logits(
        self, images: torch.Tensor, batch_size: int = BATCH_SIZE
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 features (N, D) and logits (N, K) on the CPU of uint8 images (stored or
        prepared size), from one pass of the fused model: what search embeds."""
        batch = self.prepare(images).to(self.placement.device)
        features, logits = predict_features_and_logits(
            self.fused,
            batch,
            mean=self.record.mean,
            std=self.record.std,
            batch_size=batch_size,
            placement=self.placement,
        )
        return features.cpu(), logits.cpu()

    def _infer(self, infer: Callable[..., torch.Tensor], images: torch.Tensor) -> torch.Tensor:
        batch = self.prepare(images).to(self.placement.device)
        record = self.record
        return infer(
            self.model,
            batch,
            mean=record.mean,
            std=record.std,
            batch_size=BATCH_SIZE,
            placement=self.placement,
        ).cpu()

    def test_set(
        self, dataset: str | None = None, data_dir: Path | None = None, limit: int | None = None
    ) -> ImageSet:
        """The first ``limit`` test images of ``dataset`` (the run's own by default),
        checked to have the classes and channels the model was trained on."""
        name = dataset or self.record.dataset
        test_set = load_test_split(name, data_dir)
        test_set = test_set.subset(limit or len(test_set))
        if tuple(test_set.classes) != self.record.classes:
            raise CheckpointError(
                f"{self.path}: trained on {self.record.dataset}'s {self.record.num_classes} "
                f"classes ({', '.join(self.record.classes[:5])}, ...); {name} has "
                f"{len(test_set.classes)} ({', '.join(test_set.classes[:5])}, ...)"
            )
        if test_set.image_shape[0] != self.record.in_channels:
            raise ConfigError(
                f"{self.path}: the model takes {self.record.in_channels}-channel images; "
                f"{name}'s have {test_set.image_shape[0]}"
            )
        return test_set

    def evaluate(self, test_set: ImageSet, tta: str = "none") -> EvalStats:
        """Errors and confusion on ``test_set``; ``tta="ten-crop"`` averages the softmax
        over ten crops of the uncropped images."""
        images = self.prepare(test_set.images, crop=tta == "none").to(self.placement.device)
        return classification_errors(
            self.model,
            images,
            test_set.labels.to(self.placement.device),
            mean=self.record.mean,
            std=self.record.std,
            num_classes=self.record.num_classes,
            batch_size=BATCH_SIZE,
            tta=tta,
            placement=self.placement,
        )


def load_run(path: Path, device: str = "auto", local_rank: int = 0) -> Run:
    """The trained model of the checkpoint at ``path`` (a ``checkpoint.pt`` or the run
    folder that holds one) in eval mode on ``device`` (``auto``: the best there is;
    a CUDA GPU: the ``local_rank``-th, for one of several processes on a machine)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    checkpoint = load_checkpoint(path)
    placement = choose_placement(device, "fp32", local_rank)
    model = placement.prepare(build_trained_model(checkpoint))
    return Run(checkpoint, model.eval(), placement)
